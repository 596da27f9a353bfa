//! The file pipeline of `callqa ingest`: inputs are read and decoded on
//! one thread, claimed in batches on this one, and written and completed
//! on a writer thread. Claims stay on this thread: a batch is claimed,
//! durably, before it is handed over, which is all the protocol asks. At
//! most two batches are in flight.

use std::io::IsTerminal;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::batch::{self, PendingRecord};
use super::decode_thread::{decode_records, DecodedRecord, DECODE_CHUNK};
use super::writer_thread::{write_batches, WriteJob, Writer, WriterResult};
use super::{Counts, IngestOptions, IngestSummary, InputSummary, RecordDecision, RecordOutcome};
use crate::ctr::{DecodeError, RecordDecoder};
use crate::dedup::{ClaimOutcome, Clock as _, DedupStore, SystemClock};
use crate::failpoint::failpoint;
use crate::sinks::{DeadLetterSink, Sink};
use crate::sources::{FirehoseResponse, InputSource, LineBuffers, Position, RecordBytes, RecordReader};

/// Runs the pipeline over inputs, into sinks, against one store.
pub struct IngestPipeline {
    store: Arc<dyn DedupStore>,
    sinks: Vec<Box<dyn Sink>>,
    sink_names: Vec<String>,
    writer: Option<Writer>,
    dead_letters: DeadLetterSink,
    options: IngestOptions,
    decoder: RecordDecoder,
    inputs: Vec<InputSummary>,
    pending: Vec<PendingRecord>,
    contested: Vec<(PendingRecord, i64)>,
    /// Record buffers the writer and the claims are done with, for the reader.
    buffers: Arc<LineBuffers>,
    firehose: Option<(usize, FirehoseResponse)>,
    recovered_batches: u64,
    swept: u64,
    progress: ProgressBar,
    started: Instant,
}

impl IngestPipeline {
    pub fn new(
        store: Arc<dyn DedupStore>,
        sinks: Vec<Box<dyn Sink>>,
        dead_letters: DeadLetterSink,
        options: IngestOptions,
    ) -> Self {
        let progress = if options.progress && std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template("{spinner} {human_pos} records  {per_sec}  {msg}  [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        // Enough for the records in flight: two batches (claimed and being
        // written) and the decoded chunks queued for claiming.
        let buffers = Arc::new(LineBuffers::new(2 * options.batch_size + 8 * DECODE_CHUNK));
        IngestPipeline {
            store,
            sink_names: sinks.iter().map(|s| s.describe()).collect(),
            sinks,
            writer: None,
            dead_letters,
            decoder: RecordDecoder::new(options.fingerprint),
            options,
            inputs: Vec::new(),
            pending: Vec::new(),
            contested: Vec::new(),
            buffers,
            firehose: None,
            recovered_batches: 0,
            swept: 0,
            progress,
            started: Instant::now(),
        }
    }

    /// Settles the batches a crashed run left in progress, then sweeps
    /// expired entries. Must run before the first claim.
    pub async fn recover(&mut self) -> anyhow::Result<()> {
        let (recovered, swept) = super::recover_store(self.store.as_ref(), &self.sinks).await?;
        self.recovered_batches += recovered;
        self.swept = swept;
        Ok(())
    }

    pub async fn run(mut self, sources: &[InputSource]) -> anyhow::Result<IngestSummary> {
        self.recover().await?;
        self.start_writer()?;
        let result = async {
            for source in sources {
                self.ingest_input(source).await?;
            }
            self.flush().await?;
            self.retry_contested().await
        }
        .await;
        // Whatever happened, let the writer finish what it was given: a batch
        // it completes is a batch a rerun need not recover.
        let written = self.stop_writer();
        match (result, written) {
            (Err(err), _) => Err(err),
            (Ok(()), Err(err)) => Err(err),
            (Ok(()), Ok(written)) => self.finish(written).await,
        }
    }

    /// Moves the sinks to a writer thread that writes each claimed batch and
    /// completes it (or, for a Firehose response, leaves completion to the end).
    fn start_writer(&mut self) -> anyhow::Result<()> {
        let (jobs, queue) = sync_channel::<WriteJob>(1);
        let sinks = std::mem::take(&mut self.sinks);
        let store = Arc::clone(&self.store);
        let buffers = Arc::clone(&self.buffers);
        let defer = self.options.firehose_response.is_some();
        let handle = std::thread::Builder::new()
            .name("callqa-writer".into())
            .spawn(move || write_batches(queue, sinks, store, buffers, defer))
            .context("cannot start the writer thread")?;
        self.writer = Some(Writer { jobs, handle });
        Ok(())
    }

    fn stop_writer(&mut self) -> anyhow::Result<WriterResult> {
        let writer = self.writer.take().context("the writer thread was not started")?;
        drop(writer.jobs);
        writer.handle.join().map_err(|_| anyhow::anyhow!("the writer thread panicked"))?
    }

    fn send(&mut self, job: WriteJob) -> anyhow::Result<()> {
        let Some(writer) = self.writer.as_ref() else { anyhow::bail!("the writer thread was not started") };
        if writer.jobs.send(job).is_err() {
            // The writer stopped on an error: report that error.
            let failed = self.stop_writer();
            return Err(failed.err().unwrap_or_else(|| anyhow::anyhow!("the writer thread stopped early")));
        }
        Ok(())
    }

    async fn ingest_input(&mut self, source: &InputSource) -> anyhow::Result<()> {
        let reader = RecordReader::open(source, self.options.max_record_bytes)?.with_buffers(Arc::clone(&self.buffers));
        let input = self.inputs.len();
        let verbose = self.options.verbose;
        self.inputs.push(InputSummary {
            input: source.name(),
            format: reader.format(),
            counts: Counts::default(),
            dropped: verbose.then(Vec::new),
            records: verbose.then(Vec::new),
        });
        if let (Some(records), Some(_)) = (reader.firehose_records(), &self.options.firehose_response) {
            if self.firehose.is_some() {
                anyhow::bail!(
                    "{source} is a second Firehose event, but --firehose-response answers one invocation: \
                     run one `callqa ingest` per event"
                );
            }
            self.firehose = Some((input, FirehoseResponse::for_event(records)));
        }
        // Reading and decoding (a third of the work) run on their own thread,
        // so the next records are decoded while this one claims.
        let (chunks, decoded) = sync_channel::<std::io::Result<Vec<DecodedRecord>>>(4);
        let decoder = self.decoder;
        let decode_thread = std::thread::Builder::new()
            .name("callqa-decode".into())
            .spawn(move || decode_records(reader, decoder, chunks))
            .context("cannot start the decoding thread")?;
        for chunk in decoded {
            let chunk = chunk.with_context(|| format!("cannot read input {source}"))?;
            for DecodedRecord { position, size, result } in chunk {
                let counts = &mut self.inputs[input].counts;
                counts.read += 1;
                counts.bytes += size;
                match result {
                    Ok(record) => {
                        self.pending.push(PendingRecord { input, position, record });
                        if self.pending.len() >= self.options.batch_size {
                            self.flush().await?;
                        }
                    }
                    Err((error, bytes)) => self.dead_letter(input, &position, &error, &bytes)?,
                }
            }
        }
        decode_thread.join().map_err(|_| anyhow::anyhow!("the decoding thread panicked"))?;
        Ok(())
    }

    fn dead_letter(
        &mut self,
        input: usize,
        position: &Position,
        error: &DecodeError,
        bytes: &RecordBytes,
    ) -> anyhow::Result<()> {
        let summary = &mut self.inputs[input];
        summary.counts.dead_lettered += 1;
        self.dead_letters.write(&summary.input, position, error, bytes)?;
        if let Some(records) = summary.records.as_mut() {
            records.push(RecordDecision {
                position: position.clone(),
                fingerprint: None,
                outcome: RecordOutcome::DeadLetter,
                reason: Some(format!("{}: {error}", error.code())),
            });
        }
        // Firehose answers start as ProcessingFailed: nothing to change here.
        Ok(())
    }

    /// Claims, writes and completes the pending batch.
    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        let first_input = pending.iter().map(|p| p.input).min().unwrap_or(0);
        let input_names: Vec<String> = self.inputs[first_input..].iter().map(|summary| summary.input.clone()).collect();
        let claim = batch::claim(self.store.as_ref(), &input_names, first_input, &pending).await?;

        self.dead_letters.sync()?;
        let mut job = WriteJob { token: claim.token, records: Vec::new() };
        let mut done_with = Vec::new();

        for (p, claimed) in pending.drain(..).zip(claim.outcomes) {
            let outcome = RecordOutcome::from(claimed);
            let counts = &mut self.inputs[p.input].counts;
            match claimed {
                ClaimOutcome::Claimed { update } => {
                    counts.unique += 1;
                    counts.updates += update as u64;
                    job.records.push((p.record.day, p.record.line));
                }
                ClaimOutcome::Duplicate => {
                    counts.duplicates += 1;
                    if let Some(dropped) = self.inputs[p.input].dropped.as_mut() {
                        dropped.push(p.record.fingerprint);
                    }
                    done_with.push(p.record.line);
                }
                ClaimOutcome::InProgressElsewhere { lease_until } => {
                    self.contested.push((p, lease_until));
                    continue;
                }
            }
            if let Some((input, response)) = self.firehose.as_mut() {
                if *input == p.input {
                    if let Position::Firehose { index, .. } = &p.position {
                        response.set(*index as usize, outcome.firehose_result());
                    }
                }
            }
            if let Some(records) = self.inputs[p.input].records.as_mut() {
                records.push(RecordDecision {
                    position: p.position,
                    fingerprint: Some(p.record.fingerprint),
                    outcome,
                    reason: None,
                });
            }
        }
        self.buffers.give_back(done_with);
        if !job.records.is_empty() {
            failpoint("after-claim");
            self.send(job)?;
        }
        // The next batch reuses the allocation: a fresh 4,096-record vector
        // per batch is memory the allocator returns and the kernel zeroes again.
        if self.pending.is_empty() {
            self.pending = pending;
        }
        self.show_progress();
        Ok(())
    }

    /// Records another owner was working on: wait for its lease, then claim
    /// again. A live owner that completes in time makes them duplicates.
    async fn retry_contested(&mut self) -> anyhow::Result<()> {
        for _round in 0..3 {
            if self.contested.is_empty() {
                return Ok(());
            }
            let until = self.contested.iter().map(|(_, lease)| *lease).max().unwrap_or(0);
            let now = SystemClock.now_millis();
            if until > now {
                tokio::time::sleep(Duration::from_millis((until - now) as u64 + 50)).await;
            }
            self.pending = std::mem::take(&mut self.contested).into_iter().map(|(p, _)| p).collect();
            self.flush().await?;
        }
        anyhow::ensure!(
            self.contested.is_empty(),
            "{} records are still claimed by another process after three leases; run again later",
            self.contested.len()
        );
        Ok(())
    }

    async fn finish(mut self, written: WriterResult) -> anyhow::Result<IngestSummary> {
        self.sinks = written.sinks;
        self.dead_letters.sync()?;
        if let (Some((_, response)), Some(path)) = (&self.firehose, &self.options.firehose_response) {
            response
                .write_to(path)
                .with_context(|| format!("cannot write the Firehose response {}", path.display()))?;
        }
        for token in written.deferred {
            self.store.complete_batch(token).await.context("cannot complete a batch in the dedup store")?;
        }
        self.store.close().await.context("cannot close the dedup store")?;
        self.progress.finish_and_clear();

        let mut total = Counts::default();
        for input in &self.inputs {
            total.add(&input.counts);
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        Ok(IngestSummary {
            fingerprint: self.options.fingerprint,
            store: self.store.describe(),
            sinks: self.sink_names,
            inputs: self.inputs,
            total,
            recovered_batches: self.recovered_batches,
            swept: self.swept,
            elapsed_seconds: elapsed,
            records_per_second: total.read as f64 / elapsed.max(1e-9),
            megabytes_per_second: total.bytes as f64 / 1e6 / elapsed.max(1e-9),
        })
    }

    fn show_progress(&self) {
        if self.progress.is_hidden() {
            return;
        }
        let (read, bytes) = self.inputs.iter().fold((0, 0), |(r, b), i| (r + i.counts.read, b + i.counts.bytes));
        self.progress.set_position(read);
        let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
        self.progress.set_message(format!("{:.1} MB/s", bytes as f64 / 1e6 / seconds));
    }
}

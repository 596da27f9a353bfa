//! The ingest pipeline: source → decode → fingerprint → claim → sink → complete.
//!
//! Records are read and decoded one by one, then handled in batches: one
//! claim transaction per batch, one sink write per batch (per partition),
//! one completion per batch. The order of those steps, and what recovery
//! does when a process dies between two of them, is the protocol described
//! in [`crate::dedup`].
//!
//! The sink write (mostly waiting for fsync) and the completion run on a
//! writer thread, so the next batch is read, decoded and claimed while the
//! previous one reaches the disk. Claims stay on the reading thread: a batch
//! is claimed, durably, before it is handed over, which is all the protocol
//! asks. At most two batches are in flight.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::ctr::{ContactRecord, DecodeError, Fingerprint, FingerprintMode, RecordDecoder, UtcDay};
use crate::dedup::{ClaimBatch, ClaimOutcome, ClaimRequest, DedupStore, FencingToken};
use crate::sinks::{DeadLetterSink, Sink, SinkRecord};
use crate::sources::{
    FirehoseResponse, FirehoseResult, InputFormat, InputSource, LineBuffers, Position, RecordBytes, RecordReader,
};

/// What the pipeline does, apart from where records come from and go to.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub fingerprint: FingerprintMode,
    pub batch_size: usize,
    pub max_record_bytes: u64,
    /// Record every record's fingerprint and outcome in the summary.
    pub verbose: bool,
    /// Show a progress bar on stderr (only honoured when it is a terminal).
    pub progress: bool,
    /// Write the Firehose transformation response here.
    pub firehose_response: Option<PathBuf>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            fingerprint: FingerprintMode::Canonical,
            batch_size: 4096,
            max_record_bytes: 1 << 20,
            verbose: false,
            progress: false,
            firehose_response: None,
        }
    }
}

/// How many records went where. `read = unique + duplicates + dead_lettered`;
/// `updates` are the unique records that are newer versions of a known contact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub read: u64,
    pub unique: u64,
    pub duplicates: u64,
    pub updates: u64,
    pub dead_lettered: u64,
    pub bytes: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.read += other.read;
        self.unique += other.unique;
        self.duplicates += other.duplicates;
        self.updates += other.updates;
        self.dead_lettered += other.dead_lettered;
        self.bytes += other.bytes;
    }
}

/// What happened to one record (recorded with `--verbose`).
#[derive(Debug, Clone, Serialize)]
pub struct RecordDecision {
    pub position: Position,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputSummary {
    pub input: String,
    pub format: InputFormat,
    #[serde(flatten)]
    pub counts: Counts,
    /// Fingerprints of the duplicates dropped from this input (`--verbose`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<Vec<Fingerprint>>,
    /// Every record's outcome, in input order (`--verbose`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<Vec<RecordDecision>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    pub fingerprint: FingerprintMode,
    pub store: String,
    pub sinks: Vec<String>,
    pub inputs: Vec<InputSummary>,
    pub total: Counts,
    /// Batches a crashed earlier run left in progress, settled before this run.
    pub recovered_batches: u64,
    /// Store entries past their TTL removed at start.
    pub swept: u64,
    pub elapsed_seconds: f64,
    pub records_per_second: f64,
    pub megabytes_per_second: f64,
}

struct PendingRecord {
    input: usize,
    position: Position,
    record: ContactRecord,
}

/// A claimed batch on its way to the writer thread.
struct WriteJob {
    token: FencingToken,
    records: Vec<(UtcDay, RecordBytes)>,
}

/// What the writer thread hands back when the input is done.
struct WriterResult {
    sinks: Vec<Box<dyn Sink>>,
    deferred: Vec<FencingToken>,
}

struct Writer {
    jobs: SyncSender<WriteJob>,
    handle: JoinHandle<anyhow::Result<WriterResult>>,
}

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
        let (recovered, swept) = recover_store(self.store.as_ref(), &self.sinks).await?;
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
        bytes: &[u8],
    ) -> anyhow::Result<()> {
        let summary = &mut self.inputs[input];
        summary.counts.dead_lettered += 1;
        self.dead_letters.write(&summary.input, position, error, bytes)?;
        if let Some(records) = summary.records.as_mut() {
            records.push(RecordDecision {
                position: position.clone(),
                fingerprint: None,
                outcome: "dead-letter",
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
        let requests: Vec<ClaimRequest<'_>> = pending
            .iter()
            .map(|p| ClaimRequest {
                fingerprint: p.record.fingerprint,
                contact_id: &p.record.contact_id,
                last_update_millis: p.record.last_update_millis,
                day: p.record.day,
                input: (p.input - first_input) as u32,
                position: p.position.ordinal(),
            })
            .collect();
        let claim = self
            .store
            .claim_batch(&ClaimBatch { inputs: &input_names, requests: &requests })
            .await
            .context("cannot claim records in the dedup store")?;
        drop(requests);

        self.dead_letters.sync()?;
        let mut job = WriteJob { token: claim.token, records: Vec::new() };
        let mut done_with = Vec::new();

        for (p, outcome) in pending.drain(..).zip(claim.outcomes) {
            let (name, firehose_result) = match outcome {
                ClaimOutcome::Claimed { update } => {
                    let counts = &mut self.inputs[p.input].counts;
                    counts.unique += 1;
                    counts.updates += update as u64;
                    job.records.push((p.record.day, p.record.line));
                    (if update { "update" } else { "unique" }, FirehoseResult::Ok)
                }
                ClaimOutcome::Duplicate => {
                    self.inputs[p.input].counts.duplicates += 1;
                    if let Some(dropped) = self.inputs[p.input].dropped.as_mut() {
                        dropped.push(p.record.fingerprint);
                    }
                    done_with.push(p.record.line);
                    ("duplicate", FirehoseResult::Dropped)
                }
                ClaimOutcome::InProgressElsewhere { lease_until } => {
                    self.contested.push((p, lease_until));
                    continue;
                }
            };
            if let Some((input, response)) = self.firehose.as_mut() {
                if *input == p.input {
                    if let Position::Firehose { index, .. } = &p.position {
                        response.set(*index as usize, firehose_result);
                    }
                }
            }
            if let Some(records) = self.inputs[p.input].records.as_mut() {
                records.push(RecordDecision {
                    position: p.position,
                    fingerprint: Some(p.record.fingerprint),
                    outcome: name,
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
            let now = crate::dedup::SystemClock.now_millis();
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

/// Settles the batches a crashed run left in progress against `sinks`, then
/// sweeps expired entries; returns (batches settled, entries swept). Every
/// long-lived user of a store (`callqa ingest`, `callqa serve`) runs this
/// before its first claim.
pub async fn recover_store(store: &dyn DedupStore, sinks: &[Box<dyn Sink>]) -> anyhow::Result<(u64, u64)> {
    let stale = store.stale_batches().await.context("cannot list unfinished batches in the dedup store")?;
    let mut recovered = 0;
    for batch in stale {
        // A record is durable when every sink that can tell has its file.
        let mut durable = batch.days.clone();
        let mut any_can_tell = false;
        for sink in sinks {
            let days = sink.durable_days(batch.token, &batch.days)?;
            any_can_tell |= !days.is_empty();
            durable.retain(|day| days.contains(day));
        }
        if !any_can_tell {
            durable.clear();
        }
        store.settle_batch(batch.token, &durable).await.context("cannot settle an unfinished batch")?;
        recovered += 1;
    }
    let swept = store.sweep().await.context("cannot sweep expired entries from the dedup store")?;
    Ok((recovered, swept))
}

use crate::dedup::Clock as _;

/// A record as the decoding thread hands it over: decoded, or the reason it
/// cannot be used together with its bytes for the dead letters.
struct DecodedRecord {
    position: Position,
    size: u64,
    result: Result<ContactRecord, (DecodeError, RecordBytes)>,
}

/// Records per hand-over from the decoding thread: large enough that the
/// channel costs nothing per record, small enough to keep both threads busy.
const DECODE_CHUNK: usize = 256;

/// The decoding thread: reads one input and decodes its records, in order.
/// Stops early when the pipeline hangs up (it failed and returned).
fn decode_records(
    mut reader: RecordReader,
    decoder: RecordDecoder,
    chunks: SyncSender<std::io::Result<Vec<DecodedRecord>>>,
) {
    let mut chunk = Vec::with_capacity(DECODE_CHUNK);
    loop {
        match reader.next_record() {
            Ok(Some(raw)) => {
                let size = raw.bytes.len() as u64;
                let result = match raw.rejected {
                    Some(error) => Err((error, raw.bytes)),
                    None => decoder.decode_owned(raw.bytes, raw.delivery),
                };
                chunk.push(DecodedRecord { position: raw.position, size, result });
                if chunk.len() == DECODE_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(DECODE_CHUNK));
                    if chunks.send(Ok(full)).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => {
                if !chunk.is_empty() {
                    let _ = chunks.send(Ok(chunk));
                }
                return;
            }
            Err(error) => {
                // What was read before the error is still handled.
                let _ = chunks.send(Ok(chunk));
                let _ = chunks.send(Err(error));
                return;
            }
        }
    }
}

/// The writer thread: each batch to every sink, then its completion.
fn write_batches(
    queue: Receiver<WriteJob>,
    mut sinks: Vec<Box<dyn Sink>>,
    store: Arc<dyn DedupStore>,
    buffers: Arc<LineBuffers>,
    defer_completion: bool,
) -> anyhow::Result<WriterResult> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut deferred = Vec::new();
    for job in queue {
        let records: Vec<SinkRecord<'_>> =
            job.records.iter().map(|(day, line)| SinkRecord { day: *day, line }).collect();
        for sink in &mut sinks {
            if let Err(err) = sink.write_batch(job.token, &records) {
                // Best effort: the claims would also be recovered on the next run.
                let _ = runtime.block_on(store.release_batch(job.token));
                return Err(err.context(format!("cannot write batch {} to {}", job.token.0, sink.describe())));
            }
        }
        drop(records);
        buffers.give_back(job.records.into_iter().map(|(_, line)| line));
        failpoint("after-sink-write");
        if defer_completion {
            // Completing before the Firehose response exists would turn a
            // record Firehose never got an answer for into a duplicate on its retry.
            deferred.push(job.token);
        } else {
            runtime.block_on(store.complete_batch(job.token)).context("cannot complete a batch in the dedup store")?;
            failpoint("after-complete");
        }
    }
    for sink in &mut sinks {
        sink.finish()?;
    }
    Ok(WriterResult { sinks, deferred })
}

/// Test hook for crash tests: with `CALLQA_FAILPOINT=<stage>:<n>` the process
/// kills itself with SIGKILL the n-th time it reaches `<stage>`
/// (`after-claim`, `before-rename`, `between-renames`, `after-sink-write`,
/// `after-complete`). Unset, it costs one load per batch.
pub fn failpoint(stage: &str) {
    static CONFIG: OnceLock<Option<(String, u64)>> = OnceLock::new();
    static HITS: AtomicU64 = AtomicU64::new(0);
    let config = CONFIG.get_or_init(|| {
        let spec = std::env::var("CALLQA_FAILPOINT").ok()?;
        let (name, count) = spec.split_once(':')?;
        Some((name.to_string(), count.parse().ok()?))
    });
    if let Some((name, count)) = config {
        if name == stage && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *count {
            #[cfg(unix)]
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            std::process::abort();
        }
    }
}

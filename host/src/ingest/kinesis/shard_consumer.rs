use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_sdk_kinesis::primitives::DateTime;
use aws_sdk_kinesis::types::ShardIteratorType;
use tokio::sync::Mutex;

use super::shard_progress::StreamProgress;
use crate::aws::{brief, error_code};
use crate::ctr::{DecodeError, Delivery, RecordDecoder};
use crate::dedup::{ClaimOutcome, Clock as _, DedupStore, SystemClock};
use crate::failpoint::failpoint;
use crate::ingest::batch::{self, PendingRecord};
use crate::sinks::{DeadLetterSink, Sink, SinkRecord};
use crate::sources::kinesis::{Checkpoint, Lease, LeaseChange, LeaseTable};
use crate::sources::{Position, RecordBytes};

/// A lease this host holds, shared by the shard's consumer (checkpoints) and
/// the scheduler (renewals): both raise the counter, so both go through the
/// one lock, and whichever finds the lease taken marks it lost.
pub struct HeldLease {
    pub lease: Mutex<Lease>,
    /// Taken by another host: stop emitting this shard's records.
    pub lost: AtomicBool,
    /// The scheduler wants the shard given up (shutdown, or rebalancing).
    pub stop: AtomicBool,
}

impl HeldLease {
    pub fn new(lease: Lease) -> Arc<HeldLease> {
        Arc::new(HeldLease { lease: Mutex::new(lease), lost: AtomicBool::new(false), stop: AtomicBool::new(false) })
    }

    fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Applies `change` to the lease; false (and the lease marked lost)
    /// when another host holds it now.
    pub async fn advance(&self, table: &LeaseTable, change: LeaseChange) -> anyhow::Result<bool> {
        let mut lease = self.lease.lock().await;
        if self.lost() || lease.owner.is_none() {
            return Ok(false);
        }
        let kept = table.advance(&mut lease, change).await?;
        if !kept {
            self.lost.store(true, Ordering::SeqCst);
        }
        Ok(kept)
    }
}

/// How a shard consumer reads.
#[derive(Debug, Clone)]
pub struct ConsumerSettings {
    /// Records per `GetRecords`, and so at most per claim batch.
    pub batch_size: usize,
    /// Keep reading at the tip of the shard (`--follow`, `serve`); without
    /// it, stop once caught up.
    pub follow: bool,
    pub max_record_bytes: u64,
    /// Between reads that found nothing, as KCL's `idleTimeBetweenReads`.
    pub idle: Duration,
    /// Attempts at one batch before the shard is given up (follow: forever).
    pub attempts: u32,
}

/// Reads one shard under its lease: get records, claim, write, complete,
/// checkpoint, until the shard ends, the reader catches up (without
/// `follow`) or the lease is lost.
pub struct ShardConsumer {
    pub kinesis: aws_sdk_kinesis::Client,
    pub table: LeaseTable,
    pub held: Arc<HeldLease>,
    pub stream: String,
    pub shard_id: String,
    pub store: Arc<dyn DedupStore>,
    pub sink: Arc<std::sync::Mutex<Box<dyn Sink>>>,
    pub dead_letters: Arc<std::sync::Mutex<DeadLetterSink>>,
    pub decoder: RecordDecoder,
    pub settings: ConsumerSettings,
    pub progress: StreamProgress,
    pub on_stored: Option<super::scheduler::StoredHook>,
}

/// How a consumer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerEnd {
    /// A closed shard read to its end: its children may start.
    ShardEnd,
    /// Nothing more to read now (without `follow`); the lease was given back.
    CaughtUp,
    /// Another host took the lease, or the scheduler asked the shard back.
    LeaseGone,
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((200u64 << attempt.min(7)).min(10_000))
}

impl ShardConsumer {
    fn input(&self) -> String {
        format!("kinesis://{}/{}", self.stream, self.shard_id)
    }

    pub async fn run(self) -> anyhow::Result<ConsumerEnd> {
        let input = self.input();
        // What a dead owner of this shard left in progress is settled first:
        // its records either reached the sink (duplicates now) or are
        // claimed again below.
        let recovered =
            self.settle().await.with_context(|| format!("{input}: cannot settle the shard's unfinished batches"))?;
        if recovered > 0 {
            tracing::info!(shard = %self.shard_id, batches = recovered, "settled batches a previous owner left unfinished");
        }
        let checkpoint = self.held.lease.lock().await.checkpoint.clone();
        tracing::info!(stream = %self.stream, shard = %self.shard_id, %checkpoint, at_ms = SystemClock.now_millis(), "shard started");
        let mut iterator = self.iterator(&checkpoint).await?;
        let mut last_sequence: Option<String> = match &checkpoint {
            Checkpoint::After(sequence) => Some(sequence.clone()),
            _ => None,
        };
        let mut throttled = 0u32;
        loop {
            if self.held.lost() || self.held.stop.load(Ordering::SeqCst) {
                return self.leave().await;
            }
            let read = self
                .kinesis
                .get_records()
                .shard_iterator(&iterator)
                .limit(self.settings.batch_size as i32)
                .send()
                .await;
            let output = match read {
                Ok(output) => {
                    throttled = 0;
                    output
                }
                Err(err) if error_code(&err) == Some("ProvisionedThroughputExceededException") => {
                    // The shard's read limit (5 reads, 2 MB a second) is
                    // shared with every other consumer of the stream.
                    throttled += 1;
                    tokio::time::sleep(backoff(throttled)).await;
                    continue;
                }
                Err(err) if error_code(&err) == Some("ExpiredIteratorException") => {
                    let resume = last_sequence.clone().map(Checkpoint::After).unwrap_or(checkpoint.clone());
                    iterator = self.iterator(&resume).await?;
                    continue;
                }
                Err(err) => anyhow::bail!("{input}: cannot read records: {}", brief(&err)),
            };
            let behind = output.millis_behind_latest().unwrap_or(0);
            self.progress.update(&self.shard_id, |p| p.millis_behind = behind);
            if let Some(last) = output.records().last() {
                let last = last.sequence_number().to_string();
                if !self.process(output.records()).await? {
                    return self.leave().await;
                }
                let change = LeaseChange { checkpoint: Some(Checkpoint::After(last.clone())), ..Default::default() };
                if !self.held.advance(&self.table, change).await? {
                    return self.leave().await;
                }
                last_sequence = Some(last);
            }
            match output.next_shard_iterator() {
                None => {
                    let change =
                        LeaseChange { checkpoint: Some(Checkpoint::ShardEnd), release: true, ..Default::default() };
                    if !self.held.advance(&self.table, change).await? {
                        return self.leave().await;
                    }
                    self.progress.update(&self.shard_id, |p| {
                        p.finished = true;
                        p.held = false;
                    });
                    tracing::info!(stream = %self.stream, shard = %self.shard_id, at_ms = SystemClock.now_millis(), "shard finished (SHARD_END)");
                    return Ok(ConsumerEnd::ShardEnd);
                }
                Some(next) => iterator = next.to_string(),
            }
            if output.records().is_empty() && behind == 0 {
                if !self.settings.follow {
                    let now = SystemClock.now_millis();
                    let change = LeaseChange { caught_up_at: Some(now), release: true, ..Default::default() };
                    self.held.advance(&self.table, change).await?;
                    self.progress.update(&self.shard_id, |p| p.held = false);
                    return Ok(ConsumerEnd::CaughtUp);
                }
                tokio::time::sleep(self.settings.idle).await;
            }
        }
    }

    /// Gives the lease back when asked to stop (another host took it, or a
    /// shutdown): a lost lease is not ours to write.
    async fn leave(&self) -> anyhow::Result<ConsumerEnd> {
        if !self.held.lost() {
            self.held.advance(&self.table, LeaseChange { release: true, ..Default::default() }).await?;
        }
        self.progress.update(&self.shard_id, |p| p.held = false);
        tracing::info!(stream = %self.stream, shard = %self.shard_id, lost = self.held.lost(), "shard left");
        Ok(ConsumerEnd::LeaseGone)
    }

    async fn iterator(&self, from: &Checkpoint) -> anyhow::Result<String> {
        let mut request = self.kinesis.get_shard_iterator().stream_name(&self.stream).shard_id(&self.shard_id);
        request = match from {
            Checkpoint::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            Checkpoint::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            Checkpoint::AtTimestamp(millis) => {
                request.shard_iterator_type(ShardIteratorType::AtTimestamp).timestamp(DateTime::from_millis(*millis))
            }
            Checkpoint::After(sequence) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).starting_sequence_number(sequence)
            }
            Checkpoint::ShardEnd => anyhow::bail!("shard {} is already read to its end", self.shard_id),
        };
        let mut throttled = 0;
        loop {
            match request.clone().send().await {
                Ok(output) => {
                    return output
                        .shard_iterator
                        .with_context(|| format!("{}: no iterator for shard {}", self.stream, self.shard_id))
                }
                Err(err) if error_code(&err) == Some("ProvisionedThroughputExceededException") => {
                    throttled += 1;
                    tokio::time::sleep(backoff(throttled)).await;
                }
                Err(err) => {
                    anyhow::bail!(
                        "{}: cannot start reading shard {} from {from}: {}",
                        self.stream,
                        self.shard_id,
                        brief(&err)
                    )
                }
            }
        }
    }

    /// Settles the batches this shard's owners left in progress against the
    /// sink (after their lease: nothing else proves an owner is gone).
    async fn settle(&self) -> anyhow::Result<u64> {
        let sink = Arc::clone(&self.sink);
        crate::ingest::settle_stale_batches(self.store.as_ref(), move |token, days| {
            // Blocking, briefly: recovery is rare and asks one question a day.
            tokio::task::block_in_place(|| sink.lock().unwrap_or_else(|p| p.into_inner()).durable_days(token, days))
        })
        .await
    }

    /// One read's records through the claim protocol, retried with backoff
    /// when the store or the sink fails. False when the lease was lost
    /// before the batch could be written (its claims are given back).
    async fn process(&self, records: &[aws_sdk_kinesis::types::Record]) -> anyhow::Result<bool> {
        let input = self.input();
        let mut pending = Vec::with_capacity(records.len());
        let mut rejected = Vec::new();
        let mut bytes = 0;
        for record in records {
            let data = record.data().as_ref();
            bytes += data.len() as u64;
            let position = Position::Kinesis { sequence_number: record.sequence_number().to_string() };
            if data.len() as u64 > self.settings.max_record_bytes {
                let error = DecodeError::Oversized { size: data.len() as u64, max: self.settings.max_record_bytes };
                rejected.push((position, error, RecordBytes::cut(data)));
                continue;
            }
            match self.decoder.decode_owned(RecordBytes::Owned(data.to_vec()), Delivery::FirehoseRecord) {
                Ok(record) => pending.push(PendingRecord { input: 0, position, record }),
                Err((error, bytes)) => rejected.push((position, error, bytes)),
            }
        }
        if !rejected.is_empty() {
            let dead_letters = Arc::clone(&self.dead_letters);
            let input = input.clone();
            let count = rejected.len() as u64;
            tokio::task::spawn_blocking(move || {
                let mut letters = dead_letters.lock().unwrap_or_else(|p| p.into_inner());
                for (position, error, bytes) in &rejected {
                    letters.write(&input, position, error, bytes)?;
                }
                letters.sync()
            })
            .await
            .context("the dead-letter task failed")?
            .context("cannot write the dead letters")?;
            self.progress.update(&self.shard_id, |p| p.counts.dead_lettered += count);
        }
        self.progress.update(&self.shard_id, |p| {
            p.counts.read += records.len() as u64;
            p.counts.bytes += bytes;
        });

        let mut attempt = 0;
        loop {
            match self.store_batch(&input, &mut pending).await {
                Ok(kept) => return Ok(kept),
                Err(err) if self.settings.follow || attempt + 1 < self.settings.attempts => {
                    attempt += 1;
                    tracing::warn!(shard = %self.shard_id, attempt, "cannot store a batch, retrying: {err:#}");
                    tokio::time::sleep(backoff(attempt + 2)).await;
                    if self.held.lost() || self.held.stop.load(Ordering::SeqCst) {
                        return Ok(false);
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Claims, writes and completes `pending` (emptying it), waiting out
    /// records another owner holds.
    async fn store_batch(&self, input: &str, pending: &mut Vec<PendingRecord>) -> anyhow::Result<bool> {
        let inputs = [input.to_string()];
        let mut waited = 0;
        while !pending.is_empty() {
            let claim = batch::claim(self.store.as_ref(), &inputs, 0, pending).await?;
            let mut lines = Vec::new();
            let mut contested = Vec::new();
            let mut lease_until = 0;
            let (mut unique, mut updates, mut duplicates) = (0, 0, 0);
            for (record, outcome) in std::mem::take(pending).into_iter().zip(&claim.outcomes) {
                match *outcome {
                    ClaimOutcome::Claimed { update } => {
                        unique += 1;
                        updates += update as u64;
                        lines.push((record.record.day, record.record.line));
                    }
                    ClaimOutcome::Duplicate => duplicates += 1,
                    ClaimOutcome::InProgressElsewhere { lease_until: until } => {
                        lease_until = lease_until.max(until);
                        contested.push(record);
                    }
                }
            }
            if !lines.is_empty() {
                // Fencing: a host that lost the shard writes nothing more of
                // it; the claims go back so the new owner takes them at once.
                if self.held.lost() {
                    batch::release(self.store.as_ref(), claim.token).await;
                    return Ok(false);
                }
                let sink = Arc::clone(&self.sink);
                let token = claim.token;
                let (written, lines) = tokio::task::spawn_blocking(move || {
                    let records: Vec<SinkRecord<'_>> =
                        lines.iter().map(|(day, line)| SinkRecord { day: *day, line }).collect();
                    let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                    let written = batch::write(std::slice::from_mut(&mut *sink), token, &records);
                    (written, lines)
                })
                .await
                .context("the sink task failed")?;
                if let Err(err) = written {
                    batch::release(self.store.as_ref(), claim.token).await;
                    // The contested records go round again with the rest.
                    return Err(err);
                }
                failpoint("after-sink-write");
                batch::complete(self.store.as_ref(), claim.token).await?;
                failpoint("after-complete");
                if let Some(on_stored) = &self.on_stored {
                    on_stored(lines.into_iter().map(|(_, line)| line.to_vec()).collect()).await;
                }
            }
            self.progress.update(&self.shard_id, |p| {
                p.counts.unique += unique;
                p.counts.updates += updates;
                p.counts.duplicates += duplicates;
            });
            if contested.is_empty() {
                break;
            }
            // Another owner is storing these (often this shard's previous
            // owner, between its claim and its completion): wait for its
            // lease, settle what it left if it died, and claim again.
            waited += 1;
            anyhow::ensure!(
                waited <= 5,
                "{input}: {} records are still claimed by another owner after five leases",
                contested.len()
            );
            let wait = (lease_until - SystemClock.now_millis()).clamp(100, 60_000);
            tokio::time::sleep(Duration::from_millis(wait as u64 + 50)).await;
            self.settle().await?;
            *pending = contested;
        }
        Ok(true)
    }
}

//! Ingestion for a service: the steps of `callqa ingest`
//! (`crate::ingest::batch`: claim → sink → complete, see `crate::dedup`),
//! one request's records at a time, answering only once they are durable.
//!
//! Batches are handled one after another: the sink writes under the batch's
//! fencing token and the embedded store admits one writer, so ordering them
//! costs little and keeps the protocol exactly the one the CLI runs.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use serde::Serialize;
use tokio::sync::Mutex;

use super::metrics::Metrics;
use crate::ctr::{DecodeError, RecordDecoder};
use crate::dedup::{ClaimOutcome, DedupStore};
use crate::ingest::batch::{self, PendingRecord};
pub use crate::ingest::RecordOutcome;
use crate::sinks::{DeadLetterSink, Sink, SinkRecord};
use crate::sources::{Position, RawRecord, RecordBytes};

#[derive(Clone, Debug, Serialize)]
pub struct RecordResult {
    pub index: usize,
    pub outcome: RecordOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub struct IngestReport {
    /// One per input record, in input order.
    pub results: Vec<RecordResult>,
    /// The stored records (unique and updates), for real-time QA.
    pub stored: Vec<Vec<u8>>,
}

impl IngestReport {
    pub fn count(&self, outcome: RecordOutcome) -> usize {
        self.results.iter().filter(|r| r.outcome == outcome).count()
    }
}

struct Writers {
    sink: Box<dyn Sink>,
    dead_letters: DeadLetterSink,
}

pub struct Ingestor {
    store: Arc<dyn DedupStore>,
    decoder: RecordDecoder,
    writers: Mutex<Writers>,
    metrics: Arc<Metrics>,
    /// When the store is next swept: a server runs for days, and the embedded
    /// store keeps its claims in memory until a sweep forgets expired ones.
    next_sweep: std::sync::Mutex<std::time::Instant>,
}

/// How often a long-running server sweeps expired claims.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl Ingestor {
    /// Settles what a crashed earlier run left in progress, then is ready.
    pub async fn open(
        store: Arc<dyn DedupStore>,
        sink: Box<dyn Sink>,
        dead_letter: Option<&Path>,
        decoder: RecordDecoder,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let sinks = vec![sink];
        let (recovered, swept) = crate::ingest::recover_store(store.as_ref(), &sinks).await?;
        if recovered > 0 || swept > 0 {
            tracing::info!(recovered, swept, "dedup store: settled unfinished batches, swept expired entries");
        }
        let sink = sinks.into_iter().next().context("no sink")?;
        let dead_letters = DeadLetterSink::open(dead_letter)?;
        Ok(Ingestor {
            store,
            decoder,
            writers: Mutex::new(Writers { sink, dead_letters }),
            metrics,
            next_sweep: std::sync::Mutex::new(std::time::Instant::now() + SWEEP_EVERY),
        })
    }

    pub fn describe_store(&self) -> String {
        self.store.describe()
    }

    /// Dedups and stores `records` (named `input` in claims and dead
    /// letters). `Ok` means every stored record is durable in the sink and
    /// completed in the store; `Err` means nothing can be promised and the
    /// sender should retry (claims of a failed write are released).
    pub async fn ingest(&self, input: &str, records: Vec<RawRecord>) -> anyhow::Result<IngestReport> {
        let mut results: Vec<RecordResult> = Vec::with_capacity(records.len());
        let mut decoded = Vec::new();
        let mut rejected: Vec<(Position, DecodeError, RecordBytes)> = Vec::new();
        for (index, raw) in records.into_iter().enumerate() {
            self.metrics.records_read.inc();
            let outcome = match raw.rejected {
                Some(error) => Err((error, raw.bytes)),
                None => self.decoder.decode_owned(raw.bytes, raw.delivery),
            };
            match outcome {
                Ok(record) => {
                    results.push(RecordResult {
                        index,
                        outcome: RecordOutcome::Retry,
                        contact_id: Some(record.contact_id.clone()),
                        fingerprint: Some(record.fingerprint.to_hex()),
                        reason: None,
                    });
                    decoded.push((index, PendingRecord { input: 0, position: raw.position, record }));
                }
                Err((error, bytes)) => {
                    results.push(RecordResult {
                        index,
                        outcome: RecordOutcome::DeadLetter,
                        contact_id: None,
                        fingerprint: None,
                        reason: Some(format!("{}: {error}", error.code())),
                    });
                    rejected.push((raw.position, error, bytes));
                }
            }
        }

        let mut writers = self.writers.lock().await;
        if !rejected.is_empty() {
            tokio::task::block_in_place(|| -> anyhow::Result<()> {
                for (position, error, bytes) in &rejected {
                    writers.dead_letters.write(input, position, error, bytes)?;
                }
                writers.dead_letters.sync()
            })
            .context("cannot write the dead letters")?;
            self.metrics.records_dead_lettered.inc_by(rejected.len() as u64);
        }
        if decoded.is_empty() {
            return Ok(IngestReport { results, stored: Vec::new() });
        }

        let inputs = [input.to_string()];
        let (indices, pending): (Vec<usize>, Vec<PendingRecord>) = decoded.into_iter().unzip();
        let started = Instant::now();
        let claim = batch::claim(self.store.as_ref(), &inputs, 0, &pending).await?;
        self.metrics.record_claim(started.elapsed());

        for (index, outcome) in indices.iter().zip(&claim.outcomes) {
            let result = &mut results[*index];
            result.outcome = RecordOutcome::from(*outcome);
            if let ClaimOutcome::InProgressElsewhere { lease_until } = outcome {
                result.reason =
                    Some(format!("another host is storing this record (its claim runs until {lease_until} ms)"));
            }
        }
        let stored: Vec<(crate::ctr::UtcDay, RecordBytes)> = pending
            .into_iter()
            .zip(&claim.outcomes)
            .filter(|(_, o)| matches!(o, ClaimOutcome::Claimed { .. }))
            .map(|(p, _)| (p.record.day, p.record.line))
            .collect();
        // As in `callqa ingest`: a batch that claimed nothing has nothing to write or complete.
        if !stored.is_empty() {
            let records: Vec<SinkRecord<'_>> =
                stored.iter().map(|(day, line)| SinkRecord { day: *day, line }).collect();
            let written = tokio::task::block_in_place(|| {
                batch::write(std::slice::from_mut(&mut writers.sink), claim.token, &records)
            });
            if let Err(err) = written {
                batch::release(self.store.as_ref(), claim.token).await;
                return Err(err);
            }
            batch::complete(self.store.as_ref(), claim.token).await?;
        }
        drop(writers);

        for result in &results {
            match result.outcome {
                RecordOutcome::Unique => {
                    self.metrics.records_unique.inc();
                }
                RecordOutcome::Update => {
                    self.metrics.records_unique.inc();
                    self.metrics.records_update.inc();
                }
                RecordOutcome::Duplicate => {
                    self.metrics.records_duplicate.inc();
                }
                RecordOutcome::DeadLetter | RecordOutcome::Retry => {}
            }
        }
        self.sweep_when_due().await;
        Ok(IngestReport { results, stored: stored.into_iter().map(|(_, line)| line.into_vec()).collect() })
    }

    async fn sweep_when_due(&self) {
        {
            let mut next = self.next_sweep.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = std::time::Instant::now();
            if now < *next {
                return;
            }
            *next = now + SWEEP_EVERY;
        }
        // A failed sweep only delays forgetting; the next one catches up.
        match self.store.sweep().await {
            Ok(swept) => tracing::info!(swept, "dedup store: swept expired entries"),
            Err(err) => tracing::warn!("dedup store: sweep failed, retrying in an hour: {err}"),
        }
    }

    pub async fn close(&self) -> anyhow::Result<()> {
        let mut writers = self.writers.lock().await;
        tokio::task::block_in_place(|| writers.sink.finish())?;
        self.store.close().await.context("cannot close the dedup store")
    }
}

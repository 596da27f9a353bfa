//! What an ingest run reports: counts per input and in total, and with
//! `--verbose` every record's outcome.

use serde::Serialize;

use super::RecordOutcome;
use crate::ctr::{Fingerprint, FingerprintMode};
use crate::sources::{InputFormat, Position};

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
    pub(crate) fn add(&mut self, other: &Counts) {
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
    pub outcome: RecordOutcome,
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

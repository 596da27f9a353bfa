use serde::Serialize;

use crate::dedup::ClaimOutcome;
use crate::sources::FirehoseResult;

/// What happened to one record: the one vocabulary of `callqa ingest`'s
/// summary, `callqa serve`'s answers and the Firehose responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordOutcome {
    /// Stored: first time seen.
    Unique,
    /// Stored: a newer version of a known contact.
    Update,
    /// Dropped: seen within the TTL.
    Duplicate,
    /// Unusable; written to the dead letters.
    DeadLetter,
    /// Another process holds the claim: neither stored nor dropped; send
    /// it again later (`callqa ingest` waits for the lease and claims again).
    Retry,
}

impl RecordOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordOutcome::Unique => "unique",
            RecordOutcome::Update => "update",
            RecordOutcome::Duplicate => "duplicate",
            RecordOutcome::DeadLetter => "dead-letter",
            RecordOutcome::Retry => "retry",
        }
    }

    /// Stored in the sink by this request or run.
    pub fn is_stored(self) -> bool {
        matches!(self, RecordOutcome::Unique | RecordOutcome::Update)
    }

    /// The answer a Firehose transformation expects for the record. A record
    /// without a decision is never reported as dropped.
    pub fn firehose_result(self) -> FirehoseResult {
        match self {
            RecordOutcome::Unique | RecordOutcome::Update => FirehoseResult::Ok,
            RecordOutcome::Duplicate => FirehoseResult::Dropped,
            RecordOutcome::DeadLetter | RecordOutcome::Retry => FirehoseResult::ProcessingFailed,
        }
    }
}

impl From<ClaimOutcome> for RecordOutcome {
    fn from(outcome: ClaimOutcome) -> Self {
        match outcome {
            ClaimOutcome::Claimed { update: false } => RecordOutcome::Unique,
            ClaimOutcome::Claimed { update: true } => RecordOutcome::Update,
            ClaimOutcome::Duplicate => RecordOutcome::Duplicate,
            ClaimOutcome::InProgressElsewhere { .. } => RecordOutcome::Retry,
        }
    }
}

impl std::fmt::Display for RecordOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

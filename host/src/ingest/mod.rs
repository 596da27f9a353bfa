//! Ingestion: source → decode → fingerprint → claim → sink → complete.
//!
//! Records are read and decoded one by one, then handled in batches: one
//! claim transaction per batch, one sink write per batch (per partition),
//! one completion per batch. The order of those steps, and what recovery
//! does when a process dies between two of them, is the protocol described
//! in [`crate::dedup`]; [`batch`] holds the steps, which `callqa ingest`
//! ([`IngestPipeline`]) and `callqa serve` (one request at a time) share.

pub mod batch;
mod decode_thread;
pub mod kinesis;
mod options;
mod pipeline;
mod record_outcome;
mod recovery;
mod summary;
mod writer_thread;

pub use options::IngestOptions;
pub use pipeline::IngestPipeline;
pub use record_outcome::RecordOutcome;
pub use recovery::{recover_store, settle_stale_batches};
pub use summary::{Counts, IngestSummary, InputSummary, RecordDecision};

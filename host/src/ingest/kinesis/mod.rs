//! Contact records from a Kinesis data stream (where Amazon Connect streams
//! CTRs), read by one host or shared by many through the stream's shards, the
//! way the Kinesis Client Library (KCL) shares them:
//!
//! - **Leases.** Each shard has a lease in a DynamoDB table
//!   ([`LeaseTable`](crate::sources::kinesis::LeaseTable)); one host holds it at a time and raises its counter
//!   every renewal. A host that sees a lease's counter stand still for the
//!   failover time takes it; hosts balance the shards among those alive,
//!   taking one lease at a time from the busiest ([`Scheduler`]).
//! - **Checkpoints.** A shard's checkpoint (its last sequence number) is
//!   written only after every record up to it is in the sink and completed
//!   in the dedup store, so a new owner resumes from the checkpoint and
//!   replays at most the batch in flight, which the claims turn into
//!   duplicates.
//! - **The claim protocol, unchanged.** Records go through decode →
//!   fingerprint → claim → sink → complete like every other source
//!   (`crate::ingest::batch`). A shard's batches are claimed under the
//!   shard's identity, not the host's, so whoever takes the lease settles
//!   what a dead owner left in progress (against a sink every host sees:
//!   S3; with a local directory only the same host can).
//! - **Fencing.** Every lease write is conditioned on the counter last seen:
//!   a host whose lease was taken fails its next renewal or checkpoint and
//!   stops emitting that shard's records, giving back a batch it had claimed
//!   and not yet written.
//! - **Resharding.** A shard split or merged from others is read only once
//!   its parents' checkpoints are at `SHARD_END`, so a contact's versions
//!   stay in order across a reshard.
//! - **Throttling and expiry.** `ProvisionedThroughputExceeded` backs off
//!   exponentially; an expired iterator is fetched again from the last
//!   checkpoint; a closed shard is read to its end and marked `SHARD_END`.

mod scheduler;
mod shard_consumer;
mod shard_progress;

pub use scheduler::{KinesisOptions, KinesisSummary, Scheduler, SinkSetup, StoredHook};
pub use shard_progress::{ShardProgress, StreamProgress};

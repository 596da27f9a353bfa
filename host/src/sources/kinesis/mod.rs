//! Contact records from a Kinesis data stream (where Amazon Connect streams
//! CTRs), read by one host or shared by many through the stream's shards, the
//! way the Kinesis Client Library (KCL) shares them:
//!
//! - **Leases.** Each shard has a lease in a DynamoDB table
//!   ([`LeaseTable`]); one host holds it at a time and raises its counter
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

mod kinesis_producer;
mod lease;
mod lease_table;
mod scheduler;
mod shard_consumer;
mod shard_progress;

pub use kinesis_producer::{KinesisProducer, PutSummary};
pub use lease::{Checkpoint, Lease, StartPosition};
pub use lease_table::{LeaseChange, LeaseTable};
pub use scheduler::{KinesisOptions, KinesisSummary, Scheduler, SinkSetup, StoredHook};
pub use shard_progress::{ShardProgress, StreamProgress};

/// A Kinesis client configured the standard AWS way
/// (`AWS_ENDPOINT_URL_KINESIS` for another endpoint, such as kinesalite).
pub async fn kinesis_client() -> aws_sdk_kinesis::Client {
    aws_sdk_kinesis::Client::new(&crate::aws::sdk_config().await)
}

/// `kinesis://STREAM`: the stream's name. `None` when `spec` is not a
/// Kinesis URL; an error when it is one that cannot be used.
pub fn parse_stream(spec: &str) -> Option<anyhow::Result<String>> {
    let name = spec.strip_prefix("kinesis://")?.trim_end_matches('/');
    let valid = (1..=128).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    Some(if valid {
        Ok(name.to_string())
    } else {
        Err(anyhow::anyhow!(
            "{spec}: a Kinesis stream name has 1 to 128 characters among a-z, A-Z, 0-9, _, - and .; \
             expected kinesis://STREAM"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stream_urls() {
        assert_eq!(parse_stream("kinesis://connect-ctr").unwrap().unwrap(), "connect-ctr");
        assert!(parse_stream("connect-ctr").is_none());
        assert!(parse_stream("kinesis://").unwrap().is_err());
        assert!(parse_stream("kinesis://a b").unwrap().is_err());
    }
}

//! Kinesis Data Streams, where Amazon Connect streams contact records: the
//! client, the shard leases and their DynamoDB table (KCL's layout), and a
//! producer for `callqa replay`. Reading a stream under leases is a driver
//! of the claim protocol and lives in `crate::ingest::kinesis`.

mod kinesis_producer;
mod lease;
mod lease_table;

pub use kinesis_producer::{KinesisProducer, PutSummary};
pub use lease::{Checkpoint, Lease, StartPosition};
pub use lease_table::{LeaseChange, LeaseTable};

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

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use serde::Serialize;

use crate::aws::brief;

/// `PutRecords` takes at most 500 entries and 5 MiB a call.
const ENTRIES_PER_CALL: usize = 500;
const BYTES_PER_CALL: usize = 5 << 20;
/// Rounds of re-sending the entries a call failed (throttled shards,
/// internal failures) before the replay gives up on them.
const ATTEMPTS: u32 = 8;

/// What a replay put on the stream.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PutSummary {
    pub records: u64,
    pub bytes: u64,
    /// Entries sent again after a call failed them.
    pub retried: u64,
    pub calls: u64,
}

/// Puts records on a stream the way Amazon Connect does: one contact record
/// a Kinesis record, partitioned by ContactId so a contact's versions stay
/// in order on one shard.
pub struct KinesisProducer {
    client: aws_sdk_kinesis::Client,
    stream: String,
    summary: PutSummary,
}

impl KinesisProducer {
    pub async fn connect(stream: &str) -> KinesisProducer {
        KinesisProducer {
            client: super::kinesis_client().await,
            stream: stream.to_string(),
            summary: PutSummary::default(),
        }
    }

    pub fn summary(&self) -> PutSummary {
        self.summary
    }

    /// Puts `(partition key, data)` records, in calls of at most 500 entries
    /// and 5 MiB, re-sending each call's failed entries with backoff.
    pub async fn put(&mut self, records: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        let mut call = Vec::new();
        let mut size = 0;
        for (key, data) in records {
            let entry_size = key.len() + data.len();
            if !call.is_empty() && (call.len() == ENTRIES_PER_CALL || size + entry_size > BYTES_PER_CALL) {
                self.put_call(std::mem::take(&mut call)).await?;
                size = 0;
            }
            size += entry_size;
            call.push((key, data));
        }
        if !call.is_empty() {
            self.put_call(call).await?;
        }
        Ok(())
    }

    async fn put_call(&mut self, mut entries: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        for attempt in 0..ATTEMPTS {
            let request: Vec<PutRecordsRequestEntry> = entries
                .iter()
                .map(|(key, data)| {
                    PutRecordsRequestEntry::builder().partition_key(key).data(Blob::new(data.clone())).build()
                })
                .collect::<Result<_, _>>()?;
            self.summary.calls += 1;
            let output = self.client.put_records().stream_name(&self.stream).set_records(Some(request)).send().await;
            let output = match output {
                Ok(output) => output,
                Err(err) if crate::aws::error_code(&err) == Some("ProvisionedThroughputExceededException") => {
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    continue;
                }
                Err(err) => anyhow::bail!("cannot put records on stream {}: {}", self.stream, brief(&err)),
            };
            // Entries fail one by one (a hot shard, an internal error); the
            // answer lists one result per entry, in order.
            let mut failed = Vec::new();
            for (entry, result) in entries.into_iter().zip(output.records()) {
                if result.error_code().is_some() {
                    failed.push(entry);
                } else {
                    self.summary.records += 1;
                    self.summary.bytes += entry.1.len() as u64;
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            self.summary.retried += failed.len() as u64;
            entries = failed;
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        anyhow::bail!(
            "{} records were still refused by stream {} after {ATTEMPTS} attempts (is the stream over its write limit?)",
            entries.len(),
            self.stream
        )
    }
}

//! The Kinesis Data Firehose data-transformation contract: the event a
//! transformation Lambda receives and the response it must return.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// `{"invocationId": …, "deliveryStreamArn": …, "region": …, "records": [{"recordId": …, "data": <base64>, …}]}`
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseEvent {
    #[serde(default)]
    pub invocation_id: Option<String>,
    #[serde(default)]
    pub delivery_stream_arn: Option<String>,
    pub records: Vec<FirehoseRecord>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseRecord {
    pub record_id: String,
    pub data: String,
}

impl FirehoseEvent {
    /// A document is taken for a Firehose event when it has a `records`
    /// array and either an `invocationId` or records carrying a `recordId`;
    /// no contact record has a top-level `records` field.
    pub fn looks_like(value: &serde_json::Value) -> bool {
        let Some(records) = value.get("records").and_then(|r| r.as_array()) else { return false };
        value.get("invocationId").is_some() || records.first().is_some_and(|r| r.get("recordId").is_some())
    }
}

/// The result Firehose expects for each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FirehoseResult {
    /// Transformed (here: passed through unchanged) and to be delivered.
    Ok,
    /// Deliberately left out: a duplicate.
    Dropped,
    /// Could not be used; Firehose sends it to its processing-failed prefix.
    ProcessingFailed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseResponseRecord {
    pub record_id: String,
    pub result: FirehoseResult,
    /// The record's data, base64, as received.
    pub data: String,
}

/// `{"records": [{"recordId": …, "result": "Ok"|"Dropped"|"ProcessingFailed", "data": …}]}`,
/// one entry per input record, in input order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FirehoseResponse {
    pub records: Vec<FirehoseResponseRecord>,
}

impl FirehoseResponse {
    /// Starts a response answering every record of `event` with
    /// `ProcessingFailed`, so a record the pipeline never decides on is
    /// retried by Firehose rather than silently lost.
    pub fn for_event(records: &[FirehoseRecord]) -> Self {
        FirehoseResponse {
            records: records
                .iter()
                .map(|record| FirehoseResponseRecord {
                    record_id: record.record_id.clone(),
                    result: FirehoseResult::ProcessingFailed,
                    data: record.data.clone(),
                })
                .collect(),
        }
    }

    pub fn set(&mut self, index: usize, result: FirehoseResult) {
        if let Some(record) = self.records.get_mut(index) {
            record.result = result;
        }
    }

    /// Writes the response atomically: a reader never sees half of it.
    pub fn write_to(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(self)?;
        crate::atomic_write::write_atomically(path, &bytes)
    }
}

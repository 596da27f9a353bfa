use std::fmt;

use super::RecordBytes;
use crate::ctr::{DecodeError, Delivery};

/// Where in its input a record was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// 1-based line number in NDJSON.
    Line(u64),
    /// 0-based index in a JSON array.
    Index(u64),
    /// 0-based index in a Firehose event's `records`, with its `recordId`.
    Firehose { index: u64, record_id: String },
    /// The input is one record.
    Document,
    /// A Kinesis Data Streams record (the input names the stream and shard).
    Kinesis { sequence_number: String },
}

impl Position {
    /// The position as one number, for the claim's source identity.
    pub fn ordinal(&self) -> u64 {
        match self {
            Position::Line(n) | Position::Index(n) | Position::Firehose { index: n, .. } => *n,
            Position::Document => 0,
            // Sequence numbers outgrow 64 bits; their low digits still
            // increase within a shard, which is all a claim's source needs.
            Position::Kinesis { sequence_number } => {
                sequence_number[sequence_number.len().saturating_sub(18)..].parse().unwrap_or(0)
            }
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Index(n) => write!(f, "element {n}"),
            Position::Firehose { index, record_id } => write!(f, "record {index} (recordId {record_id})"),
            Position::Document => f.write_str("document"),
            Position::Kinesis { sequence_number } => write!(f, "sequence number {sequence_number}"),
        }
    }
}

impl serde::Serialize for Position {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match self {
            Position::Line(n) => map.serialize_entry("line", n)?,
            Position::Index(n) => map.serialize_entry("index", n)?,
            Position::Firehose { index, record_id } => {
                map.serialize_entry("index", index)?;
                map.serialize_entry("recordId", record_id)?;
            }
            Position::Document => map.serialize_entry("document", &true)?,
            Position::Kinesis { sequence_number } => map.serialize_entry("sequenceNumber", sequence_number)?,
        }
        map.end()
    }
}

/// A record as cut out of its input, before decoding. `rejected` is set when
/// the source already knows it cannot be used (bad base64, oversized).
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub position: Position,
    pub bytes: RecordBytes,
    pub delivery: Delivery,
    pub rejected: Option<DecodeError>,
}

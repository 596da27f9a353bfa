//! Where records come from: files, directories (recursively), stdin, and the
//! formats found in them (JSON array, NDJSON, one object, Firehose
//! data-transformation events). Gzip-compressed inputs are read transparently.
//! And a Kinesis data stream, read shard by shard under leases ([`kinesis`]).

mod firehose;
mod input_source;
pub mod kinesis;
mod line_buffers;
mod raw_record;
mod record_bytes;
mod record_reader;

pub use firehose::{FirehoseEvent, FirehoseRecord, FirehoseResponse, FirehoseResult};
pub use input_source::{expand_inputs, InputSource};
pub use line_buffers::LineBuffers;
pub use raw_record::{Position, RawRecord};
pub use record_bytes::RecordBytes;
pub use record_reader::{InputFormat, RecordReader};

//! Where unique records go: a directory of Hive-style partitions, the same
//! layout in S3, or stdout;
//! and where unusable records go: the dead letters.

mod dead_letter_sink;
mod directory_sink;
mod s3_sink;
mod sink_url;
mod stdout_sink;

pub use dead_letter_sink::DeadLetterSink;
pub use directory_sink::DirectorySink;
pub use s3_sink::{list_record_objects, read_record_object, s3_client, S3Location, S3Sink};
pub use sink_url::SinkUrl;
pub use stdout_sink::StdoutSink;

use crate::ctr::UtcDay;
use crate::dedup::FencingToken;

/// One unique record on its way to a sink.
#[derive(Debug, Clone, Copy)]
pub struct SinkRecord<'a> {
    pub day: UtcDay,
    /// One compact JSON line, without the newline.
    pub line: &'a [u8],
}

/// A destination for unique records, written batch by batch under the
/// batch's fencing token (see the protocol in `dedup`).
pub trait Sink: Send {
    fn describe(&self) -> String;

    /// Writes a batch. When this returns, the records are durable, and
    /// writing the same token again replaces rather than adds.
    fn write_batch(&mut self, token: FencingToken, records: &[SinkRecord<'_>]) -> anyhow::Result<()>;

    /// Of the partitions a stale batch was writing, those whose output is
    /// complete in this sink. A sink that cannot tell (stdout) answers none,
    /// so after a crash its records are written again: at least once.
    fn durable_days(&self, token: FencingToken, days: &[UtcDay]) -> anyhow::Result<Vec<UtcDay>>;

    /// Flushes whatever is buffered.
    fn finish(&mut self) -> anyhow::Result<()> {
        Ok(())
    }
}

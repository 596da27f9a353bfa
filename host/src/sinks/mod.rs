//! Where unique records go: a directory of Hive-style partitions, or stdout;
//! and where unusable records go: the dead letters.

mod dead_letter_sink;
mod directory_sink;
mod stdout_sink;

use std::io::Write;
use std::path::Path;

use anyhow::Context;

pub use dead_letter_sink::DeadLetterSink;
pub use directory_sink::DirectorySink;
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

/// Writes `bytes` to `path` through a hidden temporary file in the same
/// directory: written, fsynced, renamed, and the directory fsynced, so the
/// file is either absent or complete, even across a crash or power loss.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?;
    let temp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let mut file = std::fs::File::create(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
    file.write_all(bytes).and_then(|_| file.sync_all()).with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("cannot rename {} to {}", temp.display(), path.display()))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))?;
    Ok(())
}

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IoSlice, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::write::GzEncoder;

use super::{Sink, SinkRecord};
use crate::atomic_write::sync_dir;
use crate::ctr::UtcDay;
use crate::dedup::FencingToken;
use crate::failpoint::failpoint;

/// The gzip encoder's output buffer. Large enough that writes cost few
/// syscalls, small enough to stay in the allocator's reused pages: a 1 MiB
/// buffer per file was handed back to the kernel and zeroed again every batch.
const WRITE_BUFFER: usize = 64 << 10;

/// Writes each line and its newline straight from the records with
/// `writev`, rather than copying them into a buffer for `write`.
fn write_lines(file: &mut File, lines: &[&[u8]]) -> std::io::Result<()> {
    // Two slices per line, within the kernel's 1,024 per call.
    const LINES_PER_CALL: usize = 512;
    for group in lines.chunks(LINES_PER_CALL) {
        let mut slices: Vec<IoSlice<'_>> =
            group.iter().flat_map(|line| [IoSlice::new(line), IoSlice::new(b"\n")]).collect();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match file.write_vectored(rest) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(written) => IoSlice::advance_slices(&mut rest, written),
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

/// Unique records as NDJSON files, partitioned Hive-style by the contact's
/// UTC initiation day: `DIR/year=YYYY/month=MM/day=DD/part-<store>-<token>.ndjson[.gz]`.
/// Athena, DuckDB and Spark read the tree as it is (they skip the hidden
/// temporary files).
pub struct DirectorySink {
    root: PathBuf,
    store_id: String,
    gzip: bool,
}

impl DirectorySink {
    /// Opens the directory and removes temporary files this store's crashed
    /// runs left behind (the store's lock means no live writer owns them).
    pub fn open(root: &Path, store_id: &str, gzip: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root).with_context(|| format!("cannot create output directory {}", root.display()))?;
        let prefix = format!(".part-{store_id}-");
        for entry in walkdir::WalkDir::new(root).into_iter().filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy();
            if entry.file_type().is_file() && name.starts_with(&prefix) && name.ends_with(".tmp") {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("cannot remove stale temporary file {}", entry.path().display()))?;
            }
        }
        Ok(DirectorySink { root: root.to_path_buf(), store_id: store_id.to_string(), gzip })
    }

    fn file_name(&self, token: FencingToken) -> String {
        let extension = if self.gzip { "ndjson.gz" } else { "ndjson" };
        format!("part-{}-{:012}.{extension}", self.store_id, token.0)
    }

    /// Creates the partition directory, fsyncing the parents of what it
    /// created so the new entries survive a power loss.
    fn partition_dir(&self, day: UtcDay) -> anyhow::Result<PathBuf> {
        let dir = self.root.join(day.hive_path());
        if !dir.is_dir() {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let mut parent = dir.parent();
            while let Some(p) = parent {
                sync_dir(p)?;
                if p == self.root {
                    break;
                }
                parent = p.parent();
            }
        }
        Ok(dir)
    }

    fn write_file(&self, temp: &Path, lines: &[&[u8]]) -> anyhow::Result<()> {
        let file = File::create(temp).with_context(|| format!("cannot create {}", temp.display()))?;
        let write = |out: &mut dyn Write| -> std::io::Result<()> {
            for line in lines {
                out.write_all(line)?;
                out.write_all(b"\n")?;
            }
            Ok(())
        };
        let file = if self.gzip {
            let mut encoder = GzEncoder::new(BufWriter::with_capacity(WRITE_BUFFER, file), flate2::Compression::fast());
            write(&mut encoder)
                .and_then(|_| encoder.finish())
                .and_then(|buffered| buffered.into_inner().map_err(|e| e.into_error()))
        } else {
            let mut file = file;
            write_lines(&mut file, lines).map(|_| file)
        }
        .with_context(|| format!("cannot write {}", temp.display()))?;
        file.sync_all().with_context(|| format!("cannot sync {}", temp.display()))
    }
}

impl Sink for DirectorySink {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn write_batch(&mut self, token: FencingToken, records: &[SinkRecord<'_>]) -> anyhow::Result<()> {
        let mut by_day: BTreeMap<UtcDay, Vec<&[u8]>> = BTreeMap::new();
        for record in records {
            by_day.entry(record.day).or_default().push(record.line);
        }
        let name = self.file_name(token);
        let mut staged = Vec::with_capacity(by_day.len());
        for (day, lines) in &by_day {
            let dir = self.partition_dir(*day)?;
            let temp = dir.join(format!(".{name}.tmp"));
            self.write_file(&temp, lines)?;
            staged.push((dir, temp));
        }
        failpoint("before-rename");
        for (index, (dir, temp)) in staged.iter().enumerate() {
            let target = dir.join(&name);
            std::fs::rename(temp, &target)
                .with_context(|| format!("cannot rename {} to {}", temp.display(), target.display()))?;
            sync_dir(dir)?;
            if index + 1 < staged.len() {
                failpoint("between-renames");
            }
        }
        Ok(())
    }

    fn durable_days(&self, token: FencingToken, days: &[UtcDay]) -> anyhow::Result<Vec<UtcDay>> {
        let name = self.file_name(token);
        Ok(days.iter().copied().filter(|day| self.root.join(day.hive_path()).join(&name).is_file()).collect())
    }
}

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use serde::Serialize;

use crate::ctr::DecodeError;
use crate::sources::Position;

/// How much of a rejected record is kept in its dead letter.
const SAMPLE_BYTES: usize = 4096;

/// Every record that cannot be used, one JSON line each:
/// `{"input", "position", "reason", "detail", "size", "record" | "record_base64", "truncated"}`.
/// Appends to the file, so reruns never erase earlier dead letters. Without a
/// file, each dead letter is reported on stderr instead: never silently dropped.
pub struct DeadLetterSink {
    file: Option<(PathBuf, BufWriter<File>)>,
    written: u64,
    dirty: bool,
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    input: &'a str,
    position: &'a Position,
    reason: &'static str,
    detail: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_base64: Option<String>,
    truncated: bool,
}

impl DeadLetterSink {
    pub fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let file = match path {
            None => None,
            Some(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
                }
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open dead-letter file {}", path.display()))?;
                Some((path.to_path_buf(), BufWriter::new(file)))
            }
        };
        Ok(DeadLetterSink { file, written: 0, dirty: false })
    }

    pub fn write(&mut self, input: &str, position: &Position, error: &DecodeError, bytes: &[u8]) -> anyhow::Result<()> {
        self.written += 1;
        self.dirty = true;
        let Some((path, out)) = self.file.as_mut() else {
            eprintln!("dead letter: {input} {position}: {} ({error})", error.code());
            return Ok(());
        };
        let sample = &bytes[..bytes.len().min(SAMPLE_BYTES)];
        // Cutting may split a UTF-8 sequence; keep the valid prefix as text.
        let text = match std::str::from_utf8(sample) {
            Ok(text) => Some(text),
            Err(err) if err.error_len().is_none() && std::str::from_utf8(bytes).is_ok() => {
                Some(std::str::from_utf8(&sample[..err.valid_up_to()]).unwrap_or_default())
            }
            Err(_) => None,
        };
        let letter = DeadLetter {
            input,
            position,
            reason: error.code(),
            detail: error.to_string(),
            size: match error {
                DecodeError::Oversized { size, .. } => *size,
                _ => bytes.len() as u64,
            },
            record: text,
            record_base64: text.is_none().then(|| base64::engine::general_purpose::STANDARD.encode(sample)),
            truncated: sample.len() < bytes.len() || matches!(error, DecodeError::Oversized { .. }),
        };
        serde_json::to_writer(&mut *out, &letter).with_context(|| format!("cannot write {}", path.display()))?;
        out.write_all(b"\n").with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and fsyncs, so dead letters are on disk before the batch that
    /// read them is completed.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        if let Some((path, out)) = self.file.as_mut() {
            out.flush().with_context(|| format!("cannot write {}", path.display()))?;
            out.get_ref().sync_data().with_context(|| format!("cannot sync {}", path.display()))?;
        }
        self.dirty = false;
        Ok(())
    }
}

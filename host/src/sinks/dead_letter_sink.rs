use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ctr::DecodeError;
use crate::sources::{Position, RecordBytes};

/// The most of a record a dead letter quotes: its text up to this many bytes
/// once written as a JSON string (escapes included), or this many characters
/// of base64 when it is not UTF-8.
pub const EXCERPT_BYTES: usize = 1024;

/// The most a dead letter (or a summary of the ones not written) takes,
/// newline included: every field is bounded (the excerpt, and the input
/// name, recordId and detail cut to [`FIELD_BYTES`] each).
pub const MAX_LETTER_BYTES: usize = 2048;

/// Dead letters take at most `BUDGET_PER_BYTE` bytes per byte of rejected
/// record (each counted with one byte for its separator) plus
/// [`BUDGET_SLACK`] between two syncs.
pub const BUDGET_PER_BYTE: u64 = 2;

/// See [`BUDGET_PER_BYTE`]: room for a few dozen letters of tiny records.
pub const BUDGET_SLACK: u64 = 16 * 1024;

/// The most an input name, a recordId or a detail takes in a letter.
const FIELD_BYTES: usize = 256;

/// Every record that cannot be used, one JSON line each:
/// `{"input", "position", "reason", "detail", "size", "sha256", "record" | "record_base64", "truncated"}`.
/// `size` and `sha256` are the whole record's length and SHA-256 (hex);
/// `record` quotes its beginning, at most [`EXCERPT_BYTES`] once escaped
/// (`record_base64` instead when it is not UTF-8), and `truncated` says the
/// quote is not all of it. Appends to the file, so reruns never erase
/// earlier dead letters. Without a file, each dead letter is reported on
/// stderr instead: never silently dropped.
///
/// Bounded: a letter takes at most [`MAX_LETTER_BYTES`], and between two
/// syncs (one request in `serve`, one batch in `ingest`) the letters take at
/// most 2 bytes per rejected byte plus 16 KiB (the budget). A letter that
/// would exceed the budget is not written but counted, and at the sync one
/// summary per input lists what was not written:
/// `{"input", "position", "last_position", "reason": "suppressed", "detail", "count", "size", "reasons"}`
/// (first and last position, how many, their total length, how many of each
/// reason). So between two syncs, rejected input of N bytes grows the file
/// by at most 2·(N + 1) + 16 KiB + 2 KiB per input with a summary (the +1
/// for a last record without its separator), whatever the input: without
/// the budget, each one-byte line of junk took a 180-byte letter (90 times
/// the input), and escaped control characters six times their bytes.
///
/// Budgeted rather than merged: the first letters of a batch, and any whose
/// record is large enough to pay for it, are written in full, so the records
/// someone will want to look at keep their own letter.
pub struct DeadLetterSink {
    file: Option<(PathBuf, BufWriter<File>)>,
    written: u64,
    dirty: bool,
    budget: Budget,
    /// The letter being written, reused.
    line: Vec<u8>,
}

/// What the letters since the last sync took, and what they were allowed.
#[derive(Default)]
struct Budget {
    /// Bytes of rejected records, one more each for its separator.
    rejected: u64,
    used: u64,
    skipped: Vec<Skipped>,
}

impl Budget {
    fn allows(&self, letter: usize) -> bool {
        self.used + letter as u64 <= self.rejected.saturating_mul(BUDGET_PER_BYTE).saturating_add(BUDGET_SLACK)
    }
}

/// The letters of one input not written since the last sync.
struct Skipped {
    input: String,
    first: Position,
    last: Position,
    count: u64,
    bytes: u64,
    reasons: BTreeMap<&'static str, u64>,
}

/// What a dead letter can know of a rejected record: the bytes at hand, and
/// when these are only its beginning, the whole record's length and SHA-256.
pub trait RejectedBytes {
    fn head(&self) -> &[u8];
    fn whole(&self) -> Option<(u64, [u8; 32])>;
}

impl RejectedBytes for [u8] {
    fn head(&self) -> &[u8] {
        self
    }

    fn whole(&self) -> Option<(u64, [u8; 32])> {
        None
    }
}

impl RejectedBytes for Vec<u8> {
    fn head(&self) -> &[u8] {
        self
    }

    fn whole(&self) -> Option<(u64, [u8; 32])> {
        None
    }
}

impl RejectedBytes for RecordBytes {
    fn head(&self) -> &[u8] {
        self
    }

    fn whole(&self) -> Option<(u64, [u8; 32])> {
        RecordBytes::whole(self)
    }
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    input: &'a str,
    position: &'a Position,
    reason: &'static str,
    detail: &'a str,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_base64: Option<String>,
    truncated: bool,
}

#[derive(Serialize)]
struct Summary<'a> {
    input: &'a str,
    position: &'a Position,
    last_position: &'a Position,
    reason: &'static str,
    detail: String,
    count: u64,
    size: u64,
    reasons: &'a BTreeMap<&'static str, u64>,
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
        Ok(DeadLetterSink { file, written: 0, dirty: false, budget: Budget::default(), line: Vec::new() })
    }

    /// Records one unusable record: `bytes` are all of it, or its beginning
    /// with the whole one's length and digest ([`RecordBytes::Cut`]).
    pub fn write<B: RejectedBytes + ?Sized>(
        &mut self,
        input: &str,
        position: &Position,
        error: &DecodeError,
        bytes: &B,
    ) -> anyhow::Result<()> {
        self.written += 1;
        self.dirty = true;
        let head = bytes.head();
        let (size, sha256) = match (bytes.whole(), error) {
            (Some((size, digest)), _) => (size, Some(digest)),
            // Only the beginning reached us, without a digest of the rest.
            (None, DecodeError::Oversized { size, .. }) if *size != head.len() as u64 => (*size, None),
            (None, _) => (head.len() as u64, Some(Sha256::digest(head).into())),
        };
        self.budget.rejected = self.budget.rejected.saturating_add(size.saturating_add(1));
        self.line.clear();
        match &self.file {
            None => {
                let _ = writeln!(self.line, "dead letter: {input} {position}: {} ({error})", error.code());
            }
            Some(_) => {
                let detail = error.to_string();
                let (record, record_base64, quoted) = excerpt(head, size);
                let letter = DeadLetter {
                    input: clip(input, FIELD_BYTES),
                    position: &clip_position(position),
                    reason: error.code(),
                    detail: clip(&detail, FIELD_BYTES),
                    size,
                    sha256: sha256.map(hex::encode),
                    record,
                    record_base64,
                    truncated: (quoted as u64) < size,
                };
                serde_json::to_writer(&mut self.line, &letter).context("cannot write a dead letter")?;
                self.line.push(b'\n');
                debug_assert!(self.line.len() <= MAX_LETTER_BYTES, "{}", String::from_utf8_lossy(&self.line));
            }
        }
        if self.budget.allows(self.line.len()) {
            self.budget.used += self.line.len() as u64;
            return self.emit();
        }
        let skipped = match self.budget.skipped.iter_mut().position(|s| s.input == input) {
            Some(at) => &mut self.budget.skipped[at],
            None => {
                self.budget.skipped.push(Skipped {
                    input: input.to_string(),
                    first: position.clone(),
                    last: position.clone(),
                    count: 0,
                    bytes: 0,
                    reasons: BTreeMap::new(),
                });
                self.budget.skipped.last_mut().expect("just pushed")
            }
        };
        skipped.last = position.clone();
        skipped.count += 1;
        skipped.bytes = skipped.bytes.saturating_add(size);
        *skipped.reasons.entry(error.code()).or_default() += 1;
        Ok(())
    }

    /// Writes `self.line` where dead letters go.
    fn emit(&mut self) -> anyhow::Result<()> {
        match self.file.as_mut() {
            Some((path, out)) => out.write_all(&self.line).with_context(|| format!("cannot write {}", path.display())),
            None => {
                let _ = std::io::stderr().write_all(&self.line);
                Ok(())
            }
        }
    }

    /// Writes one summary per input of the letters the budget kept back.
    fn write_summaries(&mut self) -> anyhow::Result<()> {
        for skipped in std::mem::take(&mut self.budget.skipped) {
            let reasons = skipped.reasons.iter().map(|(r, n)| format!("{r} {n}")).collect::<Vec<_>>().join(", ");
            let detail = format!(
                "{} more rejected records ({reasons}), {} bytes in all, are not listed one by one: their dead \
                 letters would have taken more than {BUDGET_PER_BYTE} bytes per byte rejected",
                skipped.count, skipped.bytes
            );
            self.line.clear();
            if self.file.is_some() {
                let summary = Summary {
                    input: clip(&skipped.input, FIELD_BYTES),
                    position: &clip_position(&skipped.first),
                    last_position: &clip_position(&skipped.last),
                    reason: "suppressed",
                    detail,
                    count: skipped.count,
                    size: skipped.bytes,
                    reasons: &skipped.reasons,
                };
                serde_json::to_writer(&mut self.line, &summary).context("cannot write a dead letter")?;
                self.line.push(b'\n');
            } else {
                let _ = writeln!(
                    self.line,
                    "dead letter: {} {} to {}: {detail}",
                    skipped.input, skipped.first, skipped.last
                );
            }
            self.emit()?;
        }
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Flushes and fsyncs, so dead letters are on disk before the batch that
    /// read them is completed. Starts the budget afresh.
    pub fn sync(&mut self) -> anyhow::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.write_summaries()?;
        self.budget = Budget::default();
        if let Some((path, out)) = self.file.as_mut() {
            out.flush().with_context(|| format!("cannot write {}", path.display()))?;
            out.get_ref().sync_data().with_context(|| format!("cannot sync {}", path.display()))?;
        }
        self.dirty = false;
        Ok(())
    }
}

/// The quote of a record of `size` bytes whose beginning is `head`: as text
/// when it is UTF-8 (a character cut at the end of `head` aside), else as
/// base64; and how many of its bytes the quote holds.
fn excerpt(head: &[u8], size: u64) -> (Option<&str>, Option<String>, usize) {
    let text = match std::str::from_utf8(head) {
        Ok(text) => Some(text),
        Err(err) if err.error_len().is_none() && (head.len() as u64) < size => {
            std::str::from_utf8(&head[..err.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    match text {
        Some(text) => {
            let quoted = clip(text, EXCERPT_BYTES);
            (Some(quoted), None, quoted.len())
        }
        None => {
            // Four base64 characters for three bytes.
            let quoted = &head[..head.len().min(EXCERPT_BYTES / 4 * 3)];
            (None, Some(base64::engine::general_purpose::STANDARD.encode(quoted)), quoted.len())
        }
    }
}

/// The longest beginning of `text` whose JSON string form (quotes and
/// escapes included) takes at most `max` bytes.
fn clip(text: &str, max: usize) -> &str {
    let mut used = 2;
    for (at, c) in text.char_indices() {
        used += match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used > max {
            return &text[..at];
        }
    }
    text
}

/// The position with its recordId (which a client chooses) cut to size.
fn clip_position(position: &Position) -> Position {
    match position {
        Position::Firehose { index, record_id } if record_id.len() > FIELD_BYTES / 2 => {
            Position::Firehose { index: *index, record_id: clip(record_id, FIELD_BYTES / 2).to_string() }
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn a_letter_quotes_the_beginning_and_identifies_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.ndjson");
        let mut sink = DeadLetterSink::open(Some(&path)).unwrap();
        let record = format!("{{\"ContactId\": \"c\", \"Pad\": \"{}\"}}", "\u{1}".repeat(50_000));
        let oversized = DecodeError::Oversized { size: record.len() as u64, max: 1000 };
        let malformed = DecodeError::MalformedJson("expected value".into());
        sink.write("in.ndjson", &Position::Line(1), &oversized, &RecordBytes::cut(record.as_bytes())).unwrap();
        sink.write("in.ndjson", &Position::Line(2), &malformed, b"{\"a\": \xff}".as_slice()).unwrap();
        sink.write("in.ndjson", &Position::Line(3), &malformed, b"{\"a\":".as_slice()).unwrap();
        let long_id = "r".repeat(100_000);
        let firehose = Position::Firehose { index: 0, record_id: long_id.clone() };
        sink.write(&"i".repeat(100_000), &firehose, &malformed, b"{".as_slice()).unwrap();
        sink.sync().unwrap();

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().all(|l| l.len() < MAX_LETTER_BYTES), "{text}");
        let dead = letters(&path);
        assert_eq!(dead.len(), 4);
        assert_eq!(dead[0]["size"], record.len());
        assert_eq!(dead[0]["sha256"], hex::encode(Sha256::digest(&record)));
        assert_eq!(dead[0]["truncated"], true);
        let quoted = dead[0]["record"].as_str().unwrap();
        assert!(record.starts_with(quoted) && serde_json::to_string(quoted).unwrap().len() <= EXCERPT_BYTES);
        assert_eq!(dead[1]["record_base64"], "eyJhIjog/30=");
        assert_eq!(dead[1]["sha256"], hex::encode(Sha256::digest(b"{\"a\": \xff}")));
        assert_eq!(dead[2]["record"], "{\"a\":");
        assert_eq!(dead[2]["truncated"], false);
        assert_eq!(dead[2]["size"], 5);
        assert!(long_id.starts_with(dead[3]["position"]["recordId"].as_str().unwrap()));
        assert!(dead[3]["input"].as_str().unwrap().len() < FIELD_BYTES);
    }

    /// Junk of N bytes in one-byte lines (the worst case: the most records
    /// per byte) grows the file by at most 2·N + 18 KiB, and what is not
    /// written one by one is counted in a summary.
    #[test]
    fn junk_grows_the_file_within_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.ndjson");
        let mut sink = DeadLetterSink::open(Some(&path)).unwrap();
        let lines = 100_000u64;
        let malformed = DecodeError::MalformedJson("expected value at line 1 column 1".into());
        let not_object = DecodeError::NotAnObject("a number");
        for line in 1..=lines {
            let (error, bytes) = if line % 2 == 0 { (&malformed, b"x") } else { (&not_object, b"1") };
            sink.write("junk.ndjson", &Position::Line(line), error, bytes.as_slice()).unwrap();
        }
        sink.sync().unwrap();
        let input_bytes = 2 * lines;
        let grown = std::fs::metadata(&path).unwrap().len();
        assert!(grown <= 2 * input_bytes + 18 * 1024, "{grown} bytes of dead letters for {input_bytes} of junk");

        let dead = letters(&path);
        let summary = dead.last().unwrap();
        assert_eq!(summary["reason"], "suppressed");
        let listed = dead.len() as u64 - 1;
        assert_eq!(summary["count"].as_u64().unwrap() + listed, lines);
        assert_eq!(
            summary["reasons"]["malformed-json"].as_u64().unwrap()
                + summary["reasons"]["not-an-object"].as_u64().unwrap(),
            lines - listed
        );
        assert_eq!(summary["last_position"], serde_json::json!({"line": lines}));
        assert_eq!(sink.written(), lines);

        // The budget starts afresh at each sync.
        sink.write("next.ndjson", &Position::Line(1), &malformed, b"x".as_slice()).unwrap();
        sink.sync().unwrap();
        assert_eq!(letters(&path).last().unwrap()["input"], "next.ndjson");
    }

    #[test]
    fn clipping_counts_escapes_and_keeps_whole_characters() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcd", 5), "abc");
        assert_eq!(clip("a\"b", 5), "a\"");
        assert_eq!(clip("\u{1}\u{1}", 9), "\u{1}");
        assert_eq!(clip("é", 3), "");
        assert_eq!(clip("é", 4), "é");
    }
}

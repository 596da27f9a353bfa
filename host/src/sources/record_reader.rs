use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use memmap2::Mmap;
use serde_json::value::RawValue;

use super::{FirehoseEvent, FirehoseRecord, InputSource, LineBuffers, Position, RawRecord, RecordBytes};
use crate::ctr::{DecodeError, Delivery};

/// What an input turned out to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    JsonArray,
    Ndjson,
    Object,
    FirehoseEvent,
    Empty,
}

impl std::fmt::Display for InputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputFormat::JsonArray => "JSON array",
            InputFormat::Ndjson => "NDJSON",
            InputFormat::Object => "single object",
            InputFormat::FirehoseEvent => "Firehose transformation event",
            InputFormat::Empty => "empty",
        })
    }
}

/// Reads the records of one input, detecting its format from its content.
///
/// NDJSON is streamed line by line, so inputs larger than memory work; a JSON
/// array, a single object and a Firehose event are documents and are read
/// whole (Firehose caps an invocation at 6 MB). A plain file is read through
/// a memory map, and its NDJSON records are ranges of it ([`RecordBytes`]).
pub struct RecordReader {
    format: InputFormat,
    lines: Option<LineSource>,
    queued: VecDeque<RawRecord>,
    firehose: Option<Vec<FirehoseRecord>>,
    max_record_bytes: u64,
    /// Where NDJSON lines are read into: buffers handed back by the rest of
    /// the pipeline ([`LineBuffers`]), taken a chunk at a time into `spare`.
    buffers: Option<Arc<LineBuffers>>,
    spare: Vec<Vec<u8>>,
}

/// Buffers taken from the shared stock at a time.
const BUFFERS_PER_TAKE: usize = 256;

struct LineSource {
    reader: Reader,
    line_no: u64,
}

/// An input as the format detection and the line reader see it.
enum Reader {
    Mapped(MappedFile),
    Buffered(Box<dyn BufRead + Send>),
}

/// A plain file, mapped read-only, and how far it has been read.
///
/// The map covers the file's length when it was opened: lines appended later
/// are not read (as with a file read to its end at that moment), and a file
/// truncated by another process while it is read makes the kernel stop this
/// one with SIGBUS. Pipe such a file in on stdin (`-`), which is never mapped.
struct MappedFile {
    map: Arc<Mmap>,
    at: usize,
}

impl MappedFile {
    /// Maps `file` when it is a non-empty regular file the kernel will map.
    fn open(file: &File) -> Option<MappedFile> {
        let metadata = file.metadata().ok()?;
        if !metadata.is_file() || metadata.len() == 0 {
            return None;
        }
        // SAFETY: the map is read-only and private; the one hazard, another
        // process truncating the file while it is read, is documented above.
        let map = unsafe { Mmap::map(file) }.ok()?;
        // Read ahead of the reader when the file is not in the page cache yet.
        let _ = map.advise(memmap2::Advice::Sequential);
        Some(MappedFile { map: Arc::new(map), at: 0 })
    }

    /// The range of the next line, without its `\n`.
    fn next_line(&mut self) -> Option<std::ops::Range<usize>> {
        let rest = &self.map[self.at..];
        if rest.is_empty() {
            return None;
        }
        let start = self.at;
        let (end, next) = match memchr::memchr(b'\n', rest) {
            Some(at) => (start + at, start + at + 1),
            None => (self.map.len(), self.map.len()),
        };
        self.at = next;
        Some(start..end)
    }
}

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Reader::Mapped(file) => {
                let n = (&file.map[file.at..]).read(buf)?;
                file.at += n;
                Ok(n)
            }
            Reader::Buffered(reader) => reader.read(buf),
        }
    }
}

impl BufRead for Reader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self {
            Reader::Mapped(file) => Ok(&file.map[file.at..]),
            Reader::Buffered(reader) => reader.fill_buf(),
        }
    }

    fn consume(&mut self, amount: usize) {
        match self {
            Reader::Mapped(file) => file.at = (file.at + amount).min(file.map.len()),
            Reader::Buffered(reader) => reader.consume(amount),
        }
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl RecordReader {
    pub fn open(source: &InputSource, max_record_bytes: u64) -> anyhow::Result<Self> {
        let mut reader = match source {
            InputSource::Stdin => Reader::Buffered(Box::new(BufReader::with_capacity(256 * 1024, io::stdin()))),
            InputSource::File(path) => {
                let file = File::open(path).with_context(|| format!("cannot open input {}", path.display()))?;
                match MappedFile::open(&file) {
                    Some(mapped) => Reader::Mapped(mapped),
                    None => Reader::Buffered(Box::new(BufReader::with_capacity(256 * 1024, file))),
                }
            }
        };
        let head = reader.fill_buf().with_context(|| format!("cannot read input {source}"))?;
        if head.starts_with(&GZIP_MAGIC) {
            let decoder = flate2::bufread::MultiGzDecoder::new(reader);
            reader = Reader::Buffered(Box::new(BufReader::with_capacity(256 * 1024, decoder)));
        }
        // The extension settles what content alone cannot: a one-line `.ndjson`
        // file is one line of NDJSON, not a single-object document.
        let named_ndjson = match source {
            InputSource::File(path) => {
                let name = path.to_string_lossy();
                let name = name.strip_suffix(".gz").unwrap_or(&name);
                name.ends_with(".ndjson") || name.ends_with(".jsonl")
            }
            InputSource::Stdin => false,
        };
        Self::detect(reader, max_record_bytes, named_ndjson).with_context(|| format!("cannot read input {source}"))
    }

    pub fn from_reader(reader: Box<dyn BufRead + Send>, max_record_bytes: u64, named_ndjson: bool) -> io::Result<Self> {
        Self::detect(Reader::Buffered(reader), max_record_bytes, named_ndjson)
    }

    fn detect(mut reader: Reader, max_record_bytes: u64, named_ndjson: bool) -> io::Result<Self> {
        let mut this = RecordReader {
            format: InputFormat::Empty,
            lines: None,
            queued: VecDeque::new(),
            firehose: None,
            max_record_bytes,
            buffers: None,
            spare: Vec::new(),
        };
        let skipped_lines = skip_whitespace(&mut reader)?;
        let first = reader.fill_buf()?.first().copied();
        match first {
            None => {}
            Some(_) if named_ndjson => {
                this.format = InputFormat::Ndjson;
                this.lines = Some(LineSource { reader, line_no: skipped_lines });
            }
            Some(b'[') => {
                let mut whole = Vec::new();
                reader.read_to_end(&mut whole)?;
                this.format = InputFormat::JsonArray;
                this.read_array(&whole);
            }
            Some(b'{') => {
                let mut first_line = Vec::new();
                reader.read_until(b'\n', &mut first_line)?;
                this.read_object_or_lines(reader, first_line, skipped_lines)?;
            }
            Some(_) => {
                this.format = InputFormat::Ndjson;
                this.lines = Some(LineSource { reader, line_no: skipped_lines });
            }
        }
        Ok(this)
    }

    /// Reads NDJSON lines into buffers from `buffers` (which the pipeline
    /// refills with the buffers of records it is done with) rather than into
    /// new allocations.
    pub fn with_buffers(mut self, buffers: Arc<LineBuffers>) -> Self {
        self.buffers = Some(buffers);
        self
    }

    pub fn format(&self) -> InputFormat {
        self.format
    }

    /// The records of a Firehose event, for its transformation response.
    pub fn firehose_records(&self) -> Option<&[FirehoseRecord]> {
        self.firehose.as_deref()
    }

    /// The next record, or `None` at the end of the input.
    pub fn next_record(&mut self) -> io::Result<Option<RawRecord>> {
        if let Some(record) = self.queued.pop_front() {
            return Ok(Some(record));
        }
        let Some(lines) = self.lines.as_mut() else { return Ok(None) };
        loop {
            lines.line_no += 1;
            let line_no = lines.line_no;
            let (bytes, size) = match &mut lines.reader {
                Reader::Mapped(file) => {
                    let Some(range) = file.next_line() else { return Ok(None) };
                    let size = range.len();
                    let kept = if size as u64 > self.max_record_bytes { DEAD_LETTER_SAMPLE.min(size) } else { size };
                    (RecordBytes::Mapped { map: file.map.clone(), range: range.start..range.start + kept }, size as u64)
                }
                Reader::Buffered(reader) => {
                    if self.spare.is_empty() {
                        if let Some(buffers) = &self.buffers {
                            buffers.take(BUFFERS_PER_TAKE, &mut self.spare);
                        }
                    }
                    let buffer = self.spare.pop().unwrap_or_default();
                    let Some((bytes, size)) = read_line_capped(reader, self.max_record_bytes, buffer)? else {
                        return Ok(None);
                    };
                    (RecordBytes::Owned(bytes), size)
                }
            };
            if bytes.iter().all(u8::is_ascii_whitespace) && size == bytes.len() as u64 {
                if let Some(mut buffer) = bytes.into_buffer() {
                    buffer.clear();
                    self.spare.push(buffer);
                }
                continue;
            }
            let rejected =
                (size > self.max_record_bytes).then_some(DecodeError::Oversized { size, max: self.max_record_bytes });
            let bytes = match bytes.last() {
                Some(b'\r') if rejected.is_none() => {
                    let len = bytes.len();
                    bytes.narrow(0..len - 1)
                }
                _ => bytes,
            };
            return Ok(Some(RawRecord {
                position: Position::Line(line_no),
                bytes,
                delivery: Delivery::Line,
                rejected,
            }));
        }
    }

    fn read_array(&mut self, whole: &[u8]) {
        match serde_json::from_slice::<Vec<&RawValue>>(whole) {
            Ok(elements) => {
                for (index, element) in elements.into_iter().enumerate() {
                    let bytes = element.get().as_bytes();
                    let record = self.capped(Position::Index(index as u64), bytes, Delivery::ArrayElement);
                    self.queued.push_back(record);
                }
            }
            Err(err) => self.queued.push_back(whole_document_error(whole, self.max_record_bytes, err)),
        }
    }

    fn read_object_or_lines(&mut self, mut reader: Reader, first_line: Vec<u8>, skipped_lines: u64) -> io::Result<()> {
        let first_trimmed = first_line.trim_ascii();
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(first_trimmed) {
            if FirehoseEvent::looks_like(&value) {
                let mut rest = Vec::new();
                reader.read_to_end(&mut rest)?;
                let mut whole = first_line;
                whole.extend_from_slice(&rest);
                self.read_firehose(&whole);
                return Ok(());
            }
            let trailing_lines = skip_whitespace(&mut reader)?;
            if reader.fill_buf()?.is_empty() {
                self.format = InputFormat::Object;
                let record = self.capped(Position::Document, first_trimmed, Delivery::Document);
                self.queued.push_back(record);
            } else {
                self.format = InputFormat::Ndjson;
                let line_no = skipped_lines + 1;
                let mut bytes = first_line.clone();
                trim_line_ending(&mut bytes);
                self.queued.push_back(self.capped(Position::Line(line_no), &bytes, Delivery::Line));
                self.lines = Some(LineSource { reader, line_no: line_no + trailing_lines });
            }
            return Ok(());
        }
        if first_trimmed.ends_with(b"}") {
            // A complete-looking one-line object that does not parse: one bad
            // line of NDJSON, dead-lettered on its own.
            self.format = InputFormat::Ndjson;
            let reader = Reader::Buffered(Box::new(io::Cursor::new(first_line).chain(reader)));
            self.lines = Some(LineSource { reader, line_no: skipped_lines });
            return Ok(());
        }
        // A document spread over several lines: a pretty-printed object or event.
        let mut whole = first_line;
        reader.read_to_end(&mut whole)?;
        match serde_json::from_slice::<serde_json::Value>(&whole) {
            Ok(value) if FirehoseEvent::looks_like(&value) => self.read_firehose(&whole),
            Err(_) if looks_like_ndjson(&whole) => {
                self.format = InputFormat::Ndjson;
                let reader = Reader::Buffered(Box::new(io::Cursor::new(whole)));
                self.lines = Some(LineSource { reader, line_no: skipped_lines });
            }
            Ok(_) => {
                self.format = InputFormat::Object;
                let record = self.capped(Position::Document, whole.trim_ascii(), Delivery::Document);
                self.queued.push_back(record);
            }
            Err(err) => {
                self.format = InputFormat::Object;
                self.queued.push_back(whole_document_error(&whole, self.max_record_bytes, err));
            }
        }
        Ok(())
    }

    fn read_firehose(&mut self, whole: &[u8]) {
        self.format = InputFormat::FirehoseEvent;
        let event: FirehoseEvent = match serde_json::from_slice(whole) {
            Ok(event) => event,
            Err(err) => {
                self.queued.push_back(whole_document_error(whole, u64::MAX, err));
                return;
            }
        };
        let engine = base64::engine::general_purpose::STANDARD;
        for (index, record) in event.records.iter().enumerate() {
            let position = Position::Firehose { index: index as u64, record_id: record.record_id.clone() };
            let decoded_size = (record.data.len() as u64 / 4) * 3;
            let raw = if decoded_size > self.max_record_bytes.saturating_add(3) {
                RawRecord {
                    position,
                    bytes: Vec::new().into(),
                    delivery: Delivery::FirehoseRecord,
                    rejected: Some(DecodeError::Oversized { size: decoded_size, max: self.max_record_bytes }),
                }
            } else {
                match engine.decode(record.data.as_bytes()) {
                    Ok(bytes) => self.capped(position, &bytes, Delivery::FirehoseRecord),
                    Err(err) => RawRecord {
                        position,
                        bytes: record.data.as_bytes().to_vec().into(),
                        delivery: Delivery::FirehoseRecord,
                        rejected: Some(DecodeError::BadBase64(err.to_string())),
                    },
                }
            };
            self.queued.push_back(raw);
        }
        self.firehose = Some(event.records);
    }

    fn capped(&self, position: Position, bytes: &[u8], delivery: Delivery) -> RawRecord {
        let size = bytes.len() as u64;
        if size > self.max_record_bytes {
            RawRecord {
                position,
                bytes: bytes[..DEAD_LETTER_SAMPLE.min(bytes.len())].to_vec().into(),
                delivery,
                rejected: Some(DecodeError::Oversized { size, max: self.max_record_bytes }),
            }
        } else {
            RawRecord { position, bytes: bytes.to_vec().into(), delivery, rejected: None }
        }
    }
}

/// How much of an oversized record is kept for its dead letter.
const DEAD_LETTER_SAMPLE: usize = 4096;

fn whole_document_error(whole: &[u8], max: u64, err: serde_json::Error) -> RawRecord {
    let rejected = match std::str::from_utf8(whole) {
        Err(utf8) => DecodeError::InvalidUtf8 { valid_up_to: utf8.valid_up_to() },
        Ok(_) if whole.len() as u64 > max => DecodeError::Oversized { size: whole.len() as u64, max },
        Ok(_) => DecodeError::MalformedJson(err.to_string()),
    };
    RawRecord {
        position: Position::Document,
        bytes: whole[..DEAD_LETTER_SAMPLE.min(whole.len())].to_vec().into(),
        delivery: Delivery::Document,
        rejected: Some(rejected),
    }
}

/// True when some line after the first is a complete one-line object: the
/// input is NDJSON whose first line is broken, not a broken document.
fn looks_like_ndjson(whole: &[u8]) -> bool {
    whole.split(|b| *b == b'\n').skip(1).any(|line| {
        let line = line.trim_ascii();
        line.starts_with(b"{") && line.ends_with(b"}") && serde_json::from_slice::<&RawValue>(line).is_ok()
    })
}

fn trim_line_ending(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

/// Skips whitespace (and a UTF-8 byte order mark at the start); returns how
/// many line breaks were skipped, so line numbers stay right.
fn skip_whitespace(reader: &mut Reader) -> io::Result<u64> {
    let mut newlines = 0;
    let mut at_start = true;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(newlines);
        }
        let mut skip = 0;
        if at_start && buf.starts_with(&[0xef, 0xbb, 0xbf]) {
            skip = 3;
        }
        at_start = false;
        while skip < buf.len() && buf[skip].is_ascii_whitespace() {
            newlines += (buf[skip] == b'\n') as u64;
            skip += 1;
        }
        let done = skip < buf.len();
        reader.consume(skip);
        if done {
            return Ok(newlines);
        }
    }
}

/// Reads one line without its `\n` into `line` (empty), keeping at most
/// `max + 1` bytes of it in memory; returns the bytes kept and the line's
/// full length.
fn read_line_capped(
    reader: &mut Box<dyn BufRead + Send>,
    max: u64,
    mut line: Vec<u8>,
) -> io::Result<Option<(Vec<u8>, u64)>> {
    let keep = usize::try_from(max).unwrap_or(usize::MAX).saturating_add(1);
    let mut size: u64 = 0;
    let mut any = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(any.then_some((line, size)));
        }
        any = true;
        let (chunk, found) = match memchr::memchr(b'\n', buf) {
            Some(at) => (&buf[..at], true),
            None => (buf, false),
        };
        let room = keep.saturating_sub(line.len());
        if line.is_empty() {
            // One allocation for a line the buffer holds whole.
            line.reserve_exact(room.min(chunk.len()));
        }
        line.extend_from_slice(&chunk[..room.min(chunk.len())]);
        size += chunk.len() as u64;
        let used = chunk.len() + found as usize;
        reader.consume(used);
        if found {
            if size > max {
                line.truncate(DEAD_LETTER_SAMPLE);
            }
            return Ok(Some((line, size)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &[u8]) -> (InputFormat, Vec<RawRecord>) {
        let mut reader = RecordReader::from_reader(Box::new(io::Cursor::new(text.to_vec())), 1000, false).unwrap();
        let mut records = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            records.push(record);
        }
        (reader.format(), records)
    }

    #[test]
    fn detects_each_format() {
        assert_eq!(read(b"").0, InputFormat::Empty);
        assert_eq!(read(b"  \n[{\"a\":1}, {\"b\":2}]").0, InputFormat::JsonArray);
        assert_eq!(read(b"[{\"a\":1}, {\"b\":2}]").1.len(), 2);
        let (format, records) = read(b"{\"a\":1}\n\n{\"b\":2}\r\n");
        assert_eq!(format, InputFormat::Ndjson);
        assert_eq!(
            records.iter().map(|r| r.position.clone()).collect::<Vec<_>>(),
            vec![Position::Line(1), Position::Line(3)]
        );
        assert_eq!(&*records[1].bytes, b"{\"b\":2}");
        let (format, records) = read(b"{\n  \"a\": 1\n}\n");
        assert_eq!(format, InputFormat::Object);
        assert_eq!(&*records[0].bytes, b"{\n  \"a\": 1\n}");
        assert_eq!(read(b"{\"a\":1}\n").0, InputFormat::Object);
        let event = br#"{"invocationId":"i","records":[{"recordId":"r1","data":"eyJhIjoxfQ=="},{"recordId":"r2","data":"!!"}]}"#;
        let (format, records) = read(event);
        assert_eq!(format, InputFormat::FirehoseEvent);
        assert_eq!(&*records[0].bytes, b"{\"a\":1}");
        assert_eq!(records[1].rejected.as_ref().unwrap().code(), "bad-base64");
    }

    #[test]
    fn a_broken_first_line_is_still_ndjson() {
        let (format, records) = read(b"{\"a\":1,}\n{\"b\":2}\n");
        assert_eq!(format, InputFormat::Ndjson);
        assert_eq!(records.len(), 2);
        let (format, records) = read(b"{\"a\":1,\n{\"b\":2}\n");
        assert_eq!(format, InputFormat::Ndjson);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn oversized_lines_are_cut_and_flagged() {
        let mut text = vec![b'{'; 5000];
        text.extend_from_slice(b"\n{\"a\":1}\n");
        let (_, records) = read(&text);
        assert_eq!(records[0].rejected, Some(DecodeError::Oversized { size: 5000, max: 1000 }));
        assert_eq!(&*records[1].bytes, b"{\"a\":1}");
    }

    /// A plain file is read through a memory map: the records must be the
    /// ones the buffered reader finds in the same bytes.
    #[test]
    fn a_mapped_file_reads_as_the_same_records() {
        let mut oversized = vec![b'{'; 5000];
        oversized.extend_from_slice(b"\n{\"a\":1}\n");
        let texts: [&[u8]; 8] = [
            b"{\"a\":1}\n\n{\"b\":2}\r\n",
            b"{\"a\":1}\n{\"b\":2}",
            b"\n  \n{\"a\":1}\n   \n{\"b\":2}\n\n",
            &oversized,
            b"{\"a\":1,}\n{\"b\":2}\n",
            b"\xef\xbb\xbf{\"a\":1}\n{\"b\":\"\xff\"}\n",
            b"[{\"a\":1}, {\"b\":2}]",
            b"{\n  \"a\": 1\n}\n",
        ];
        let dir = tempfile::tempdir().unwrap();
        for (n, text) in texts.into_iter().enumerate() {
            let path = dir.path().join(format!("input-{n}"));
            std::fs::write(&path, text).unwrap();
            let mut reader = RecordReader::open(&InputSource::File(path), 1000).unwrap();
            let mut mapped = Vec::new();
            while let Some(record) = reader.next_record().unwrap() {
                mapped.push(record);
            }
            let (format, buffered) = read(text);
            assert_eq!(reader.format(), format, "input {n}");
            assert_eq!(mapped.len(), buffered.len(), "input {n}");
            for (m, b) in mapped.iter().zip(&buffered) {
                assert_eq!((&m.position, &m.rejected), (&b.position, &b.rejected), "input {n}");
                if m.rejected.is_none() {
                    assert_eq!(&*m.bytes, &*b.bytes, "input {n}");
                }
            }
            // The first line is read (and copied) to detect the format.
            if n < 3 {
                assert!(
                    mapped[1..].iter().all(|r| matches!(r.bytes, RecordBytes::Mapped { .. })),
                    "input {n} was not mapped"
                );
            }
        }
    }
}

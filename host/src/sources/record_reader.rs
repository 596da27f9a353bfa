use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::sync::Arc;

use anyhow::Context;
use base64::Engine;
use memmap2::Mmap;
use serde_json::value::RawValue;

use super::record_bytes::ExcerptBuilder;
use super::{FirehoseEvent, FirehoseRecord, InputSource, LineBuffers, Position, RawRecord, RecordBytes};
use crate::ctr::{DecodeError, Delivery};

/// What an input turned out to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    JsonArray,
    Ndjson,
    Object,
    /// Objects one after another with no delimiter, or only whitespace
    /// (`{…}{…}`): Firehose's S3 delivery of records that carry no newline.
    ConcatenatedJson,
    FirehoseEvent,
    Empty,
}

impl std::fmt::Display for InputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InputFormat::JsonArray => "JSON array",
            InputFormat::Ndjson => "NDJSON",
            InputFormat::Object => "single object",
            InputFormat::ConcatenatedJson => "concatenated JSON",
            InputFormat::FirehoseEvent => "Firehose transformation event",
            InputFormat::Empty => "empty",
        })
    }
}

/// Reads the records of one input, detecting its format from its content.
///
/// NDJSON is streamed line by line and a JSON array element by element, so
/// inputs larger than memory work: what is held at a time is the read buffer
/// and one record of at most `--max-record-bytes` (a longer one is kept as
/// its first [`EXCERPT_KEPT`](super::record_bytes::EXCERPT_KEPT) bytes, its
/// length and its SHA-256, and dead-lettered). A single object and a Firehose event are documents
/// and are read whole (Firehose caps an invocation at 6 MB). A plain file's
/// NDJSON is read through a memory map, and its records are ranges of it
/// ([`RecordBytes`]); an array is read through a buffer instead, as every
/// page of a map that has been read counts in the process's resident memory
/// until it is unmapped (an array's elements are copied out anyway).
///
/// Concatenated objects (`{…}{…}`, with or without whitespace between) are
/// recognised when the first line, or the first document, holds a second
/// object right after the first; they are streamed one object at a time
/// like an array's elements, each its own record. An input whose first line
/// is one object is NDJSON, and a later line holding several objects is one
/// malformed line: ordinary NDJSON is never scanned for object boundaries.
pub struct RecordReader {
    format: InputFormat,
    lines: Option<LineSource>,
    array: Option<ArraySource>,
    objects: Option<ObjectSource>,
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

/// A JSON array being read one element at a time.
struct ArraySource {
    reader: Reader,
    /// The index of the next element.
    index: u64,
    at: ArrayAt,
}

/// Concatenated objects being read one at a time.
struct ObjectSource {
    reader: Reader,
    /// The index of the next object.
    index: u64,
}

/// Where the array reader stands, between elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArrayAt {
    /// Just after the opening `[`.
    Open,
    AfterComma,
    AfterElement,
    /// Just after the closing `]`: only whitespace may follow.
    Closed,
    /// Nothing more to read.
    End,
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
    /// Kept to read the rest through a buffer instead ([`Reader::unmapped`]).
    file: File,
}

impl MappedFile {
    /// Maps `file` when it is a non-empty regular file the kernel will map;
    /// gives it back otherwise.
    fn open(file: File) -> Result<MappedFile, File> {
        let Ok(metadata) = file.metadata() else { return Err(file) };
        if !metadata.is_file() || metadata.len() == 0 {
            return Err(file);
        }
        // SAFETY: the map is read-only and private; the one hazard, another
        // process truncating the file while it is read, is documented above.
        let Ok(map) = (unsafe { Mmap::map(&file) }) else { return Err(file) };
        // Read ahead of the reader when the file is not in the page cache yet.
        let _ = map.advise(memmap2::Advice::Sequential);
        Ok(MappedFile { map: Arc::new(map), at: 0, file })
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

/// The read buffer of inputs that are not mapped.
const READ_BUFFER: usize = 256 * 1024;

impl Reader {
    /// The same input from where it stands, read through a buffer rather
    /// than a map.
    fn unmapped(self) -> io::Result<Reader> {
        match self {
            Reader::Mapped(MappedFile { at, mut file, .. }) => {
                file.seek(io::SeekFrom::Start(at as u64))?;
                Ok(Reader::Buffered(Box::new(BufReader::with_capacity(READ_BUFFER, file))))
            }
            buffered => Ok(buffered),
        }
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
            InputSource::Stdin => Reader::Buffered(Box::new(BufReader::with_capacity(READ_BUFFER, io::stdin()))),
            InputSource::File(path) => {
                let file = File::open(path).with_context(|| format!("cannot open input {}", path.display()))?;
                match MappedFile::open(file) {
                    Ok(mapped) => Reader::Mapped(mapped),
                    Err(file) => Reader::Buffered(Box::new(BufReader::with_capacity(READ_BUFFER, file))),
                }
            }
        };
        let head = reader.fill_buf().with_context(|| format!("cannot read input {source}"))?;
        if head.starts_with(&GZIP_MAGIC) {
            let decoder = flate2::bufread::MultiGzDecoder::new(reader);
            reader = Reader::Buffered(Box::new(BufReader::with_capacity(READ_BUFFER, decoder)));
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
            array: None,
            objects: None,
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
            // A `.ndjson` name is no promise: Firehose names its S3 objects
            // after the stream's settings, not after what the records hold.
            Some(b'{') if named_ndjson && first_line_holds_concatenated_objects(&mut reader)? => {
                this.read_concatenated(reader.unmapped()?);
            }
            Some(_) if named_ndjson => {
                this.format = InputFormat::Ndjson;
                this.lines = Some(LineSource { reader, line_no: skipped_lines });
            }
            Some(b'[') => {
                reader.consume(1);
                this.format = InputFormat::JsonArray;
                this.array = Some(ArraySource { reader: reader.unmapped()?, index: 0, at: ArrayAt::Open });
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
        if self.array.is_some() {
            return self.next_element();
        }
        if self.objects.is_some() {
            return self.next_object();
        }
        let Some(lines) = self.lines.as_mut() else { return Ok(None) };
        loop {
            lines.line_no += 1;
            let line_no = lines.line_no;
            let (bytes, size) = match &mut lines.reader {
                Reader::Mapped(file) => {
                    let Some(range) = file.next_line() else { return Ok(None) };
                    let size = range.len() as u64;
                    if size > self.max_record_bytes {
                        (RecordBytes::cut(&file.map[range]), size)
                    } else {
                        (RecordBytes::Mapped { map: file.map.clone(), range }, size)
                    }
                }
                Reader::Buffered(reader) => {
                    let buffer = take_buffer(&mut self.spare, self.buffers.as_deref());
                    let mut line = Capture::new(buffer, self.max_record_bytes);
                    if !read_line(reader, &mut line)? {
                        self.spare.push(line.kept);
                        return Ok(None);
                    }
                    let (bytes, size, emptied) = line.finish();
                    self.spare.extend(emptied);
                    (bytes, size)
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

    /// The next element of the array, or a dead letter for what is wrong
    /// with the array around it.
    ///
    /// An element's bytes are exactly what a full parse would give it (from
    /// its first byte to its last, no surrounding whitespace): the elements
    /// are found by following strings and brackets, and each is then judged
    /// on its own by the decoder, so one malformed element is one dead letter
    /// and the others are read. A break in the array itself (a missing `,`,
    /// content after the closing `]`, an input that ends before it) is one
    /// dead letter at the next index; after a missing `,` the rest of the
    /// input is that dead letter, as nothing after it can be trusted to be
    /// where an element starts.
    fn next_element(&mut self) -> io::Result<Option<RawRecord>> {
        let max = self.max_record_bytes;
        loop {
            let Some(array) = self.array.as_mut() else { return Ok(None) };
            let next = skip_json_whitespace(&mut array.reader)?;
            let position = Position::Index(array.index);
            let failed = |detail: String| RawRecord {
                position: position.clone(),
                bytes: RecordBytes::Owned(Vec::new()),
                delivery: Delivery::ArrayElement,
                rejected: Some(DecodeError::MalformedJson(detail)),
            };
            match (array.at, next) {
                (ArrayAt::End, _) => return Ok(None),
                (ArrayAt::Closed, None) => array.at = ArrayAt::End,
                (ArrayAt::Closed, Some(_)) => {
                    array.at = ArrayAt::End;
                    let rest = read_rest(&mut array.reader)?;
                    return Ok(Some(RawRecord {
                        bytes: rest,
                        ..failed("content after the array's closing `]`".to_string())
                    }));
                }
                (_, None) => {
                    array.at = ArrayAt::End;
                    return Ok(Some(failed("the input ends before the array's closing `]`".to_string())));
                }
                (ArrayAt::Open, Some(b']')) => {
                    array.reader.consume(1);
                    array.at = ArrayAt::Closed;
                }
                (ArrayAt::AfterComma, Some(b']')) => {
                    array.reader.consume(1);
                    array.at = ArrayAt::Closed;
                    return Ok(Some(failed("a `,` with no element after it before the closing `]`".to_string())));
                }
                (ArrayAt::AfterElement, Some(b',')) => {
                    array.reader.consume(1);
                    array.at = ArrayAt::AfterComma;
                }
                (ArrayAt::AfterElement, Some(b']')) => {
                    array.reader.consume(1);
                    array.at = ArrayAt::Closed;
                }
                (ArrayAt::AfterElement, Some(found)) => {
                    array.at = ArrayAt::End;
                    let detail = format!(
                        "expected `,` or `]` after element {}, found {}; the rest of the input is not read",
                        array.index.saturating_sub(1),
                        describe_byte(found)
                    );
                    let rest = read_rest(&mut array.reader)?;
                    return Ok(Some(RawRecord { bytes: rest, ..failed(detail) }));
                }
                (ArrayAt::Open | ArrayAt::AfterComma, Some(_)) => {
                    array.index += 1;
                    let buffer = take_buffer(&mut self.spare, self.buffers.as_deref());
                    let mut element = Capture::new(buffer, max);
                    let complete = read_element(&mut array.reader, &mut element)?;
                    array.at = if complete { ArrayAt::AfterElement } else { ArrayAt::End };
                    let (bytes, size, emptied) = element.finish();
                    self.spare.extend(emptied);
                    let rejected = if size > max {
                        Some(DecodeError::Oversized { size, max })
                    } else if !complete {
                        Some(DecodeError::MalformedJson(format!(
                            "the input ends inside element {}, before the array is closed",
                            array.index - 1
                        )))
                    } else {
                        None
                    };
                    return Ok(Some(RawRecord { position, bytes, delivery: Delivery::ArrayElement, rejected }));
                }
            }
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
        if holds_concatenated_objects(first_trimmed) {
            let reader = Reader::Buffered(Box::new(io::Cursor::new(first_line).chain(reader.unmapped()?)));
            self.read_concatenated(reader);
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
            // Pretty-printed objects one after another (`jq .` output): a
            // structural boundary says more than a line that happens to be a
            // whole object, so this is asked first.
            Err(_) if holds_concatenated_objects(&whole) => {
                self.read_concatenated(Reader::Buffered(Box::new(io::Cursor::new(whole))));
            }
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

    fn read_concatenated(&mut self, reader: Reader) {
        self.format = InputFormat::ConcatenatedJson;
        self.objects = Some(ObjectSource { reader, index: 0 });
    }

    /// The next of the concatenated objects, or a dead letter for what
    /// stands between two of them.
    ///
    /// An object's bytes are exactly its own, from its `{` to its `}` (the
    /// `raw` fingerprint hashes them), found by following strings and
    /// brackets; whether they are valid JSON is for the decoder to say, so a
    /// malformed object is one dead letter and the objects after it are
    /// read. An object cut short (a `{` where no value can begin: Firehose
    /// went on with the next record) ends there and is dead-lettered; bytes
    /// that are not an object are one dead letter up to the next `{`. Only
    /// an object cut short inside a string takes the rest of the input with
    /// it, as nothing after it can be told from its text.
    fn next_object(&mut self) -> io::Result<Option<RawRecord>> {
        let max = self.max_record_bytes;
        let Some(objects) = self.objects.as_mut() else { return Ok(None) };
        let Some(next) = skip_json_whitespace(&mut objects.reader)? else { return Ok(None) };
        let index = objects.index;
        objects.index += 1;
        let buffer = take_buffer(&mut self.spare, self.buffers.as_deref());
        let mut object = Capture::new(buffer, max);
        let problem = if next == b'{' {
            match read_object(&mut objects.reader, &mut object)? {
                Some(ObjectEnd::Closed) => None,
                Some(ObjectEnd::CutShort) => {
                    Some(format!("object {index} is cut short: object {} begins before it is closed", index + 1))
                }
                None => Some(format!("the input ends inside object {index}, before it is closed")),
            }
        } else {
            skip_to_next_object(&mut objects.reader, &mut object)?;
            Some(format!(
                "expected `{{` to begin object {index}, found {}; skipped to the next `{{`",
                describe_byte(next)
            ))
        };
        let (bytes, size, emptied) = object.finish();
        self.spare.extend(emptied);
        let rejected = if size > max {
            Some(DecodeError::Oversized { size, max })
        } else {
            problem.map(DecodeError::MalformedJson)
        };
        // Delivered as a line: hashed as delivered, and kept as it is when
        // it is already one line.
        Ok(Some(RawRecord { position: Position::Index(index), bytes, delivery: Delivery::Line, rejected }))
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
                // Decoded a piece at a time, so the dead letter has its
                // digest without the whole decoded record in memory.
                let mut excerpt = ExcerptBuilder::default();
                let mut decoder = base64::read::DecoderReader::new(record.data.as_bytes(), &engine);
                match io::copy(&mut decoder, &mut excerpt) {
                    Ok(size) => RawRecord {
                        position,
                        bytes: excerpt.finish(),
                        delivery: Delivery::FirehoseRecord,
                        rejected: Some(DecodeError::Oversized { size, max: self.max_record_bytes }),
                    },
                    Err(err) => RawRecord {
                        position,
                        bytes: RecordBytes::cut(record.data.as_bytes()),
                        delivery: Delivery::FirehoseRecord,
                        rejected: Some(DecodeError::BadBase64(err.to_string())),
                    },
                }
            } else {
                match engine.decode(record.data.as_bytes()) {
                    Ok(bytes) => self.capped(position, &bytes, Delivery::FirehoseRecord),
                    Err(err) => RawRecord {
                        position,
                        bytes: RecordBytes::cut(record.data.as_bytes()),
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
                bytes: RecordBytes::cut(bytes),
                delivery,
                rejected: Some(DecodeError::Oversized { size, max: self.max_record_bytes }),
            }
        } else {
            RawRecord { position, bytes: bytes.to_vec().into(), delivery, rejected: None }
        }
    }
}

fn whole_document_error(whole: &[u8], max: u64, err: serde_json::Error) -> RawRecord {
    let rejected = match std::str::from_utf8(whole) {
        Err(utf8) => DecodeError::InvalidUtf8 { valid_up_to: utf8.valid_up_to() },
        Ok(_) if whole.len() as u64 > max => DecodeError::Oversized { size: whole.len() as u64, max },
        Ok(_) => DecodeError::MalformedJson(err.to_string()),
    };
    RawRecord {
        position: Position::Document,
        bytes: RecordBytes::cut(whole),
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

/// An empty buffer for the next record: one handed back by the pipeline
/// when there is one.
fn take_buffer(spare: &mut Vec<Vec<u8>>, buffers: Option<&LineBuffers>) -> Vec<u8> {
    if spare.is_empty() {
        if let Some(buffers) = buffers {
            buffers.take(BUFFERS_PER_TAKE, spare);
        }
    }
    spare.pop().unwrap_or_default()
}

/// One record's bytes as they are read: kept while they fit in `max`, then
/// only hashed, with their head ([`ExcerptBuilder`]). Whatever the record's
/// length, this holds at most `max` bytes.
struct Capture {
    kept: Vec<u8>,
    cut: Option<ExcerptBuilder>,
    max: usize,
}

impl Capture {
    fn new(mut buffer: Vec<u8>, max: u64) -> Self {
        buffer.clear();
        Capture { kept: buffer, cut: None, max: usize::try_from(max).unwrap_or(usize::MAX) }
    }

    fn push(&mut self, piece: &[u8]) {
        if let Some(cut) = &mut self.cut {
            cut.update(piece);
        } else if self.kept.len() + piece.len() > self.max {
            let mut cut = ExcerptBuilder::default();
            cut.update(&self.kept);
            cut.update(piece);
            self.kept.clear();
            self.cut = Some(cut);
        } else {
            if self.kept.is_empty() {
                // One allocation for a record the read buffer holds whole.
                self.kept.reserve_exact(piece.len());
            }
            self.kept.extend_from_slice(piece);
        }
    }

    /// The record (its excerpt when over `max`), its length, and the buffer
    /// when it was not used for the record.
    fn finish(self) -> (RecordBytes, u64, Option<Vec<u8>>) {
        match self.cut {
            Some(cut) => {
                let size = cut.size();
                (cut.finish(), size, Some(self.kept))
            }
            None => {
                let size = self.kept.len() as u64;
                (RecordBytes::Owned(self.kept), size, None)
            }
        }
    }
}

impl io::Write for ExcerptBuilder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads one line without its `\n` into `line`; false at the end of the input.
fn read_line(reader: &mut Box<dyn BufRead + Send>, line: &mut Capture) -> io::Result<bool> {
    let mut any = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(any);
        }
        any = true;
        let (chunk, found) = match memchr::memchr(b'\n', buf) {
            Some(at) => (&buf[..at], true),
            None => (buf, false),
        };
        line.push(chunk);
        let used = chunk.len() + found as usize;
        reader.consume(used);
        if found {
            return Ok(true);
        }
    }
}

fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// Skips JSON whitespace; the next byte, `None` at the end of the input.
fn skip_json_whitespace(reader: &mut Reader) -> io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        match buf.iter().position(|b| !is_json_whitespace(*b)) {
            Some(at) => {
                let next = buf[at];
                reader.consume(at);
                return Ok(Some(next));
            }
            None => {
                let all = buf.len();
                reader.consume(all);
            }
        }
    }
}

/// Reads one array element, from its first byte (not whitespace) to its
/// last, into `element`; false when the input ends inside it.
///
/// The element ends where a full parse would end it: after the bracket that
/// closes its first one, after the quote that closes a string, before the
/// `,`, `]` or whitespace that follows a bare number or literal. Brackets
/// inside strings do not count. Whether the bytes are valid JSON is for the
/// decoder to say.
fn read_element(reader: &mut Reader, element: &mut Capture) -> io::Result<bool> {
    let mut depth: u64 = 0;
    let mut in_string = false;
    let mut escaped = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        let mut end = None;
        let mut i = 0;
        while i < buf.len() {
            if in_string {
                if escaped {
                    escaped = false;
                    i += 1;
                    continue;
                }
                // Strings are most of a contact record: jump to what ends one.
                match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                    None => {
                        i = buf.len();
                        continue;
                    }
                    Some(at) => i += at,
                }
                if buf[i] == b'\\' {
                    escaped = true;
                } else {
                    in_string = false;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                i += 1;
                continue;
            }
            match buf[i] {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b']' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + 1);
                        break;
                    }
                }
                b',' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                byte if depth == 0 && is_json_whitespace(byte) => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let used = end.unwrap_or(buf.len());
        element.push(&buf[..used]);
        reader.consume(used);
        if end.is_some() {
            return Ok(true);
        }
    }
}

/// How one of the concatenated objects ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ObjectEnd {
    /// At the bracket that closes its `{`.
    Closed,
    /// Before a `{` where no value can begin (after a value rather than
    /// after `:`, `,` or `[`): the object was cut short and the next one
    /// begins there. Valid JSON never has such a `{`, so no whole object is
    /// ever split.
    CutShort,
}

/// Follows one object through strings and brackets to where it ends; fed
/// the input a buffer at a time, from the object's `{` on.
#[derive(Default)]
struct ObjectScan {
    depth: u64,
    in_string: bool,
    escaped: bool,
    /// The last byte outside strings that was not whitespace.
    last: u8,
}

impl ObjectScan {
    /// Where in `buf` the object ends (past its last byte) and how; `None`
    /// when it goes on past `buf`.
    fn feed(&mut self, buf: &[u8]) -> Option<(usize, ObjectEnd)> {
        let mut i = 0;
        while i < buf.len() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    i += 1;
                    continue;
                }
                // Strings are most of a contact record: jump to what ends one.
                i += memchr::memchr2(b'"', b'\\', &buf[i..])?;
                if buf[i] == b'\\' {
                    self.escaped = true;
                } else {
                    self.in_string = false;
                }
                i += 1;
                continue;
            }
            let byte = buf[i];
            match byte {
                b'"' => self.in_string = true,
                b'{' if self.depth > 0 && !matches!(self.last, b':' | b',' | b'[') => {
                    return Some((i, ObjectEnd::CutShort));
                }
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.depth == 0 {
                        return Some((i + 1, ObjectEnd::Closed));
                    }
                }
                _ => {}
            }
            if !is_json_whitespace(byte) {
                self.last = byte;
            }
            i += 1;
        }
        None
    }
}

/// Reads one of the concatenated objects, from its `{`, into `object`;
/// `None` when the input ends inside it.
fn read_object(reader: &mut Reader, object: &mut Capture) -> io::Result<Option<ObjectEnd>> {
    let mut scan = ObjectScan::default();
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        let found = scan.feed(buf);
        let used = found.map_or(buf.len(), |(end, _)| end);
        object.push(&buf[..used]);
        reader.consume(used);
        if let Some((_, end)) = found {
            return Ok(Some(end));
        }
    }
}

/// Reads what stands between two objects into `rest`, up to the next `{`.
fn skip_to_next_object(reader: &mut Reader, rest: &mut Capture) -> io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let (used, found) = match memchr::memchr(b'{', buf) {
            Some(at) => (at, true),
            None => (buf.len(), false),
        };
        rest.push(&buf[..used]);
        reader.consume(used);
        if found {
            return Ok(());
        }
    }
}

/// True when `bytes`, which begin with `{`, hold a whole object followed by
/// nothing but whitespace and the `{` of another.
fn holds_concatenated_objects(bytes: &[u8]) -> bool {
    match ObjectScan::default().feed(bytes) {
        Some((end, ObjectEnd::Closed)) => bytes[end..].iter().find(|b| !is_json_whitespace(**b)) == Some(&b'{'),
        _ => false,
    }
}

/// [`holds_concatenated_objects`] for the first line of what `reader` holds,
/// without consuming it. Through a buffer only what is buffered is looked
/// at: an object longer than that is taken for NDJSON.
fn first_line_holds_concatenated_objects(reader: &mut Reader) -> io::Result<bool> {
    let buf = reader.fill_buf()?;
    let line = &buf[..memchr::memchr(b'\n', buf).unwrap_or(buf.len())];
    Ok(holds_concatenated_objects(line))
}

/// The rest of the input, for a dead letter: its excerpt, length and digest.
fn read_rest(reader: &mut Reader) -> io::Result<RecordBytes> {
    let mut rest = ExcerptBuilder::default();
    io::copy(reader, &mut rest)?;
    Ok(rest.finish())
}

fn describe_byte(byte: u8) -> String {
    if byte.is_ascii_graphic() {
        format!("`{}`", byte as char)
    } else {
        format!("byte 0x{byte:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::record_bytes::EXCERPT_KEPT;
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

    fn read_with_max(text: &[u8], max: u64) -> Vec<RawRecord> {
        let mut reader = RecordReader::from_reader(Box::new(io::Cursor::new(text.to_vec())), max, false).unwrap();
        std::iter::from_fn(|| reader.next_record().unwrap()).collect()
    }

    fn summary(records: &[RawRecord]) -> Vec<(Position, String, Option<&'static str>)> {
        records
            .iter()
            .map(|r| {
                (
                    r.position.clone(),
                    String::from_utf8_lossy(&r.bytes).into_owned(),
                    r.rejected.as_ref().map(|e| e.code()),
                )
            })
            .collect()
    }

    /// The elements must be the bytes a full parse gives them, as the `raw`
    /// fingerprint of an array element depends on them.
    #[test]
    fn array_elements_are_the_bytes_a_full_parse_finds() {
        let text = br#" [ {"a" : "]}\"[{,"} ,{"b":[1,{"c":"d"}]}
            ,  "x\"y"  ,12.5e3,true , null,[],{} ]  "#;
        let parsed: Vec<&RawValue> = serde_json::from_slice(text).unwrap();
        let expected: Vec<&[u8]> = parsed.iter().map(|v| v.get().as_bytes()).collect();
        // Read through a buffer too small for most elements, and a large one.
        for capacity in [1, 3, 7, 8192] {
            let cursor = io::Cursor::new(text.to_vec());
            let reader = Box::new(BufReader::with_capacity(capacity, cursor));
            let mut reader = RecordReader::from_reader(reader, 1000, false).unwrap();
            assert_eq!(reader.format(), InputFormat::JsonArray);
            let records: Vec<RawRecord> = std::iter::from_fn(|| reader.next_record().unwrap()).collect();
            let got: Vec<&[u8]> = records.iter().map(|r| &*r.bytes).collect();
            assert_eq!(got, expected, "buffer of {capacity}");
            assert!(records.iter().all(|r| r.rejected.is_none() && r.delivery == Delivery::ArrayElement));
            let positions: Vec<Position> = records.iter().map(|r| r.position.clone()).collect();
            assert_eq!(positions, (0..expected.len() as u64).map(Position::Index).collect::<Vec<_>>());
        }
        assert!(read(b"[]").1.is_empty());
        assert!(read(b" [ \n ] \n").1.is_empty());
    }

    #[test]
    fn an_oversized_element_is_cut_with_its_length_and_digest() {
        let big = format!("{{\"ContactId\":\"c\",\"Pad\":\"{}\"}}", "x".repeat(20_000));
        let text = format!("[{big},{{\"a\":1}}]");
        let records = read_with_max(text.as_bytes(), 1000);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].rejected, Some(DecodeError::Oversized { size: big.len() as u64, max: 1000 }));
        assert_eq!(&*records[0].bytes, &big.as_bytes()[..EXCERPT_KEPT]);
        let digest: [u8; 32] = sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), &big)).into();
        assert_eq!(records[0].bytes.whole(), Some((big.len() as u64, digest)));
        assert_eq!(&*records[1].bytes, b"{\"a\":1}");
        assert!(records[1].rejected.is_none());
    }

    /// Each element is judged alone: a bad one is one dead letter, and a
    /// break in the array is one dead letter at the next index.
    #[test]
    fn a_broken_array_costs_only_what_is_broken() {
        let index = |n| Position::Index(n);
        let s = |t: &str| t.to_string();
        // A malformed element reaches the decoder, which dead-letters it.
        assert_eq!(
            summary(&read_with_max(br#"[{"a":1,},{"b":2}]"#, 1000)),
            vec![(index(0), s(r#"{"a":1,}"#), None), (index(1), s(r#"{"b":2}"#), None)]
        );
        // A missing comma: the rest of the input is one dead letter.
        assert_eq!(
            summary(&read_with_max(br#"[{"a":1} {"b":2}, {"c":3}]"#, 1000)),
            vec![(index(0), s(r#"{"a":1}"#), None), (index(1), s(r#"{"b":2}, {"c":3}]"#), Some("malformed-json"))]
        );
        // Content after the closing bracket.
        assert_eq!(
            summary(&read_with_max(b"[{\"a\":1}]\n{\"b\":2}\n", 1000)),
            vec![(index(0), s(r#"{"a":1}"#), None), (index(1), s("{\"b\":2}\n"), Some("malformed-json"))]
        );
        // A trailing comma.
        assert_eq!(
            summary(&read_with_max(br#"[{"a":1},]"#, 1000)),
            vec![(index(0), s(r#"{"a":1}"#), None), (index(1), s(""), Some("malformed-json"))]
        );
        // Cut short: inside an element, and between elements.
        assert_eq!(
            summary(&read_with_max(br#"[{"a":1},{"b":"#, 1000)),
            vec![(index(0), s(r#"{"a":1}"#), None), (index(1), s(r#"{"b":"#), Some("malformed-json"))]
        );
        assert_eq!(
            summary(&read_with_max(br#"[{"a":1},"#, 1000)),
            vec![(index(0), s(r#"{"a":1}"#), None), (index(1), s(""), Some("malformed-json"))]
        );
        assert_eq!(summary(&read_with_max(b"[", 1000)), vec![(index(0), s(""), Some("malformed-json"))]);
    }

    /// The objects must be the bytes serde_json finds for them, as the `raw`
    /// fingerprint of each depends on them; whatever the read buffer.
    #[test]
    fn concatenated_objects_are_each_their_own_record() {
        let text = br#"{"a":"}{\"{","b":[{"c":"\\"}]}{"d":1} {"e":{}}
{"f":"x\"}{"}	{"g":[]}"#;
        let expected: Vec<&[u8]> = serde_json::Deserializer::from_slice(text)
            .into_iter::<&RawValue>()
            .map(|v| v.unwrap().get().as_bytes())
            .collect();
        assert_eq!(expected.len(), 5);
        for capacity in [1, 2, 3, 7, 8192] {
            let cursor = io::Cursor::new(text.to_vec());
            let reader = Box::new(BufReader::with_capacity(capacity, cursor));
            let mut reader = RecordReader::from_reader(reader, 1000, false).unwrap();
            assert_eq!(reader.format(), InputFormat::ConcatenatedJson, "buffer of {capacity}");
            let records: Vec<RawRecord> = std::iter::from_fn(|| reader.next_record().unwrap()).collect();
            let got: Vec<&[u8]> = records.iter().map(|r| &*r.bytes).collect();
            assert_eq!(got, expected, "buffer of {capacity}");
            assert!(records.iter().all(|r| r.rejected.is_none() && r.delivery == Delivery::Line));
            let positions: Vec<Position> = records.iter().map(|r| r.position.clone()).collect();
            assert_eq!(positions, (0..5).map(Position::Index).collect::<Vec<_>>());
        }
        assert_eq!(InputFormat::ConcatenatedJson.to_string(), "concatenated JSON");
    }

    #[test]
    fn concatenated_objects_are_found_however_they_are_laid_out() {
        let formats = |text: &[u8]| {
            let (format, records) = read(text);
            (format, records.iter().map(|r| String::from_utf8_lossy(&r.bytes).into_owned()).collect::<Vec<_>>())
        };
        let s = |t: &[&str]| t.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let concatenated = InputFormat::ConcatenatedJson;
        // Several on a line, some lines with one.
        assert_eq!(
            formats(b"{\"a\":1}{\"b\":2}\n{\"c\":3}\n{\"d\":4} {\"e\":5}\n"),
            (concatenated, s(&[r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#, r#"{"d":4}"#, r#"{"e":5}"#]))
        );
        // Pretty-printed, one after another, with and without a newline between.
        assert_eq!(
            formats(b"{\n  \"a\": 1\n}{\n  \"b\": [{\"c\": 2}]\n}\n{\n  \"d\": 3\n}\n"),
            (concatenated, s(&["{\n  \"a\": 1\n}", "{\n  \"b\": [{\"c\": 2}]\n}", "{\n  \"d\": 3\n}"]))
        );
        // What is not concatenated keeps its format.
        assert_eq!(read(b"{\"a\":1}\n{\"b\":2}{\"c\":3}\n").0, InputFormat::Ndjson, "decided by the first line");
        assert_eq!(read(b"{\"a\":1}}\n{\"b\":2}\n").0, InputFormat::Ndjson);
        assert_eq!(read(b"{\"a\":\"}{\"}\n").0, InputFormat::Object, "braces inside a string");
        assert_ne!(read(b"{\"a\":1,\n{\"b\":2}{\"c\":3}\n").0, concatenated, "the first object never closes");
    }

    /// A malformed object is one dead letter (the decoder's, when its
    /// brackets close), and the objects after it are read.
    #[test]
    fn a_broken_concatenated_object_costs_only_itself() {
        let index = |n| Position::Index(n);
        let s = |t: &str| t.to_string();
        assert_eq!(
            summary(&read_with_max(br#"{"a":1}{"b":2,}{"c":3}"#, 1000)),
            vec![
                (index(0), s(r#"{"a":1}"#), None),
                (index(1), s(r#"{"b":2,}"#), None),
                (index(2), s(r#"{"c":3}"#), None)
            ]
        );
        // Cut short after a value: the next object begins where it stops.
        assert_eq!(
            summary(&read_with_max(br#"{"a":1}{"b":{"x":[1]}{"c":3}{"d":"#, 1000)),
            vec![
                (index(0), s(r#"{"a":1}"#), None),
                (index(1), s(r#"{"b":{"x":[1]}"#), Some("malformed-json")),
                (index(2), s(r#"{"c":3}"#), None),
                (index(3), s(r#"{"d":"#), Some("malformed-json")),
            ]
        );
        // Bytes between objects are one dead letter, up to the next `{`.
        assert_eq!(
            summary(&read_with_max(b"{\"a\":1}{\"b\":2},{\"c\":3}\n]x {\"d\":4}", 1000)),
            vec![
                (index(0), s(r#"{"a":1}"#), None),
                (index(1), s(r#"{"b":2}"#), None),
                (index(2), s(","), Some("malformed-json")),
                (index(3), s(r#"{"c":3}"#), None),
                (index(4), s("]x "), Some("malformed-json")),
                (index(5), s(r#"{"d":4}"#), None),
            ]
        );
        let records = read_with_max(b"{\"a\":1}{\"b\":2,}garbage", 1000);
        let RawRecord { rejected: Some(DecodeError::MalformedJson(detail)), .. } = &records[2] else { panic!() };
        assert!(detail.contains("object 2") && detail.contains("found `g`"), "{detail}");
        // An oversized object is cut with its length and digest; the next is read.
        let big = format!("{{\"ContactId\":\"c\",\"Pad\":\"{}\"}}", "x".repeat(20_000));
        let records = read_with_max(format!("{{\"a\":1}}{big}{{\"b\":2}}").as_bytes(), 1000);
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].rejected, Some(DecodeError::Oversized { size: big.len() as u64, max: 1000 }));
        assert_eq!(records[1].bytes.whole().map(|(size, _)| size), Some(big.len() as u64));
        assert_eq!((&*records[2].bytes, &records[2].rejected), (&b"{\"b\":2}"[..], &None));
    }

    /// Gzip, and a `.ndjson` name, change nothing: the content decides.
    #[test]
    fn concatenated_objects_are_read_from_gzip_and_from_files_named_ndjson() {
        use std::io::Write;
        let text = b"{\"a\":1}{\"b\":2} {\"c\":3}";
        let dir = tempfile::tempdir().unwrap();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(text).unwrap();
        let inputs = [("records.json.gz", gzip.finish().unwrap()), ("records.ndjson", text.to_vec())];
        for (name, bytes) in inputs {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let mut reader = RecordReader::open(&InputSource::File(path), 1000).unwrap();
            assert_eq!(reader.format(), InputFormat::ConcatenatedJson, "{name}");
            let records: Vec<RawRecord> = std::iter::from_fn(|| reader.next_record().unwrap()).collect();
            let got: Vec<&[u8]> = records.iter().map(|r| &*r.bytes).collect();
            assert_eq!(got, [&b"{\"a\":1}"[..], b"{\"b\":2}", b"{\"c\":3}"], "{name}");
        }
        // An ordinary `.ndjson` file is still read line by line, mapped.
        let path = dir.path().join("plain.ndjson");
        std::fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        let mut reader = RecordReader::open(&InputSource::File(path), 1000).unwrap();
        assert_eq!(reader.format(), InputFormat::Ndjson);
        assert!(matches!(reader.next_record().unwrap().unwrap().bytes, RecordBytes::Mapped { .. }));
    }

    /// A plain file is read through a memory map: the records must be the
    /// ones the buffered reader finds in the same bytes.
    #[test]
    fn a_mapped_file_reads_as_the_same_records() {
        let mut oversized = vec![b'{'; 5000];
        oversized.extend_from_slice(b"\n{\"a\":1}\n");
        let texts: [&[u8]; 11] = [
            b"{\"a\":1}\n\n{\"b\":2}\r\n",
            b"{\"a\":1}\n{\"b\":2}",
            b"\n  \n{\"a\":1}\n   \n{\"b\":2}\n\n",
            &oversized,
            b"{\"a\":1,}\n{\"b\":2}\n",
            b"\xef\xbb\xbf{\"a\":1}\n{\"b\":\"\xff\"}\n",
            b"[{\"a\":1}, {\"b\":2}]",
            b"{\n  \"a\": 1\n}\n",
            b"[{\"a\":1}, {\"b\":2} {\"c\":3}]",
            b"{\"a\":1}{\"b\":2,}\n{\"c\":3}",
            b"{\n  \"a\": 1\n}\n{\n  \"b\": 2\n}\n",
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

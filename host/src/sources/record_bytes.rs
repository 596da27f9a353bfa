//! A record's bytes: its own buffer, or a range of a mapped input file.
//!
//! NDJSON from a plain file is read through a read-only memory map, and each
//! record is a range of it: the bytes the sink writes are the page cache's
//! own, with no copy into a buffer of ours and no fresh memory per record.
//! On the 2-core VM this project is measured on, fresh memory was the
//! largest single cost of a one-core ingest (the kernel zeroing the ~30 MB
//! of record buffers in flight). Everything else (stdin, gzip, arrays,
//! Firehose events) still arrives in owned buffers.
//!
//! A record over `--max-record-bytes` is never held whole: its reader keeps
//! the head, and the length and SHA-256 of all of it ([`Excerpt`]), so its
//! dead letter can identify it without a copy.

use std::ops::{Deref, Range};
use std::sync::Arc;

use memmap2::Mmap;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub enum RecordBytes {
    Owned(Vec<u8>),
    Mapped {
        map: Arc<Mmap>,
        range: Range<usize>,
    },
    /// The head of a record too large to keep; dereferences to the head.
    Cut(Box<Excerpt>),
}

/// What is kept of a record too large to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excerpt {
    pub head: Vec<u8>,
    /// The length of the whole record.
    pub size: u64,
    /// The SHA-256 of the whole record.
    pub sha256: [u8; 32],
}

/// How much of an oversized record its reader keeps for the dead letter.
pub const EXCERPT_KEPT: usize = 4096;

/// Hashes a record that arrives in pieces, keeping its first
/// [`EXCERPT_KEPT`] bytes: an oversized record costs this much memory
/// whatever its length.
#[derive(Clone, Default)]
pub struct ExcerptBuilder {
    head: Vec<u8>,
    size: u64,
    hash: Sha256,
}

impl ExcerptBuilder {
    pub fn update(&mut self, bytes: &[u8]) {
        let room = EXCERPT_KEPT.saturating_sub(self.head.len());
        self.head.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.size += bytes.len() as u64;
        self.hash.update(bytes);
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The excerpt; the bytes themselves when they all fit in it.
    pub fn finish(self) -> RecordBytes {
        if self.size == self.head.len() as u64 {
            return RecordBytes::Owned(self.head);
        }
        RecordBytes::Cut(Box::new(Excerpt { head: self.head, size: self.size, sha256: self.hash.finalize().into() }))
    }
}

impl RecordBytes {
    /// The excerpt, length and digest of `bytes`, for a record too large to keep.
    pub fn cut(bytes: &[u8]) -> RecordBytes {
        let mut excerpt = ExcerptBuilder::default();
        excerpt.update(bytes);
        excerpt.finish()
    }

    /// The whole record's length and SHA-256 when these bytes are only its
    /// head ([`RecordBytes::Cut`]).
    pub fn whole(&self) -> Option<(u64, [u8; 32])> {
        match self {
            RecordBytes::Cut(excerpt) => Some((excerpt.size, excerpt.sha256)),
            _ => None,
        }
    }

    /// The part `range` (relative to these bytes) of the record, without a copy.
    pub fn narrow(self, range: Range<usize>) -> RecordBytes {
        match self {
            RecordBytes::Owned(mut bytes) => {
                bytes.truncate(range.end);
                bytes.drain(..range.start);
                RecordBytes::Owned(bytes)
            }
            RecordBytes::Mapped { map, range: whole } => {
                assert!(range.end <= whole.len(), "narrowed past the end of the record");
                RecordBytes::Mapped { map, range: whole.start + range.start..whole.start + range.end }
            }
            RecordBytes::Cut(mut excerpt) => {
                excerpt.head.truncate(range.end);
                excerpt.head.drain(..range.start);
                RecordBytes::Cut(excerpt)
            }
        }
    }

    /// The bytes as a vector of their own (a copy only when mapped).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            RecordBytes::Owned(bytes) => bytes,
            mapped @ RecordBytes::Mapped { .. } => mapped.to_vec(),
            RecordBytes::Cut(excerpt) => excerpt.head,
        }
    }

    /// The buffer, to be reused for another record (mapped bytes have none).
    pub fn into_buffer(self) -> Option<Vec<u8>> {
        match self {
            RecordBytes::Owned(bytes) => Some(bytes),
            RecordBytes::Mapped { .. } => None,
            RecordBytes::Cut(excerpt) => Some(excerpt.head),
        }
    }
}

impl Deref for RecordBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            RecordBytes::Owned(bytes) => bytes,
            RecordBytes::Mapped { map, range } => &map[range.clone()],
            RecordBytes::Cut(excerpt) => &excerpt.head,
        }
    }
}

impl From<Vec<u8>> for RecordBytes {
    fn from(bytes: Vec<u8>) -> Self {
        RecordBytes::Owned(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrowing_keeps_the_same_bytes_either_way() {
        let text = b"  {\"ContactId\":\"c\"}\r".to_vec();
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &text).unwrap();
        // SAFETY: a private temporary file nothing else writes to.
        let map = Arc::new(unsafe { Mmap::map(&file) }.unwrap());
        let mapped = RecordBytes::Mapped { map, range: 0..text.len() };
        let owned = RecordBytes::from(text);
        for bytes in [mapped, owned] {
            let line = bytes.narrow(2..19);
            assert_eq!(&*line, b"{\"ContactId\":\"c\"}");
            assert_eq!(&*line.narrow(1..12), b"\"ContactId\"");
        }
    }

    #[test]
    fn a_cut_record_keeps_its_head_and_the_digest_of_all_of_it() {
        let record = vec![b'x'; 3 * EXCERPT_KEPT + 5];
        let mut pieces = ExcerptBuilder::default();
        for piece in record.chunks(1000) {
            pieces.update(piece);
        }
        let (streamed, whole) = (pieces.finish(), RecordBytes::cut(&record));
        for cut in [&streamed, &whole] {
            assert_eq!(cut.len(), EXCERPT_KEPT);
            assert_eq!(cut.whole(), Some((record.len() as u64, Sha256::digest(&record).into())));
        }
        assert_eq!(RecordBytes::from(record).whole(), None);
        assert!(matches!(RecordBytes::cut(b"{}"), RecordBytes::Owned(bytes) if bytes == b"{}"));
    }
}

//! A record's bytes: its own buffer, or a range of a mapped input file.
//!
//! NDJSON from a plain file is read through a read-only memory map, and each
//! record is a range of it: the bytes the sink writes are the page cache's
//! own, with no copy into a buffer of ours and no fresh memory per record.
//! On the 2-core VM this project is measured on, fresh memory was the
//! largest single cost of a one-core ingest (the kernel zeroing the ~30 MB
//! of record buffers in flight). Everything else (stdin, gzip, arrays,
//! Firehose events) still arrives in owned buffers.

use std::ops::{Deref, Range};
use std::sync::Arc;

use memmap2::Mmap;

#[derive(Debug, Clone)]
pub enum RecordBytes {
    Owned(Vec<u8>),
    Mapped { map: Arc<Mmap>, range: Range<usize> },
}

impl RecordBytes {
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
        }
    }

    /// The bytes as a vector of their own (a copy only when mapped).
    pub fn into_vec(self) -> Vec<u8> {
        match self {
            RecordBytes::Owned(bytes) => bytes,
            mapped @ RecordBytes::Mapped { .. } => mapped.to_vec(),
        }
    }

    /// The buffer, to be reused for another record (mapped bytes have none).
    pub fn into_buffer(self) -> Option<Vec<u8>> {
        match self {
            RecordBytes::Owned(bytes) => Some(bytes),
            RecordBytes::Mapped { .. } => None,
        }
    }
}

impl Deref for RecordBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            RecordBytes::Owned(bytes) => bytes,
            RecordBytes::Mapped { map, range } => &map[range.clone()],
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
}

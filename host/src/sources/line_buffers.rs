//! Record buffers that travel round the pipeline instead of being freed.
//!
//! Records of inputs that are not memory-mapped (stdin, gzip) are read into
//! buffers ([`RecordBytes::Owned`]); mapped records have none and pass by.
//! Each record's bytes are read into a buffer on the decoding thread, become
//! its line, and are done with on another thread: the writer's after the
//! sink write, the claiming thread's for a duplicate. Freed there, every
//! buffer is a cross-thread free, which mimalloc settles by handing whole
//! pages back and forth between the threads (5,500 page abandonments on
//! 50,000 records; 900 with the buffers handed back). Handing them back
//! instead keeps the same few thousand buffers in use for the whole run;
//! pinned to one core, key-mode runs went from 0.53–1.06 s to 0.53–0.68 s.

use std::sync::Mutex;

use super::RecordBytes;

/// A bounded stock of empty buffers shared by the threads of one pipeline.
#[derive(Debug)]
pub struct LineBuffers {
    stock: Mutex<Vec<Vec<u8>>>,
    /// Buffers kept at most; the rest are freed.
    keep: usize,
}

/// A buffer larger than this (an outsized record) is freed, not kept: one
/// stray multi-megabyte line should not stay resident for the whole run.
const LARGEST_KEPT: usize = 64 << 10;

impl LineBuffers {
    /// A stock that keeps at most `keep` buffers.
    pub fn new(keep: usize) -> Self {
        LineBuffers { stock: Mutex::new(Vec::new()), keep }
    }

    /// Moves up to `count` empty buffers into `into` (fewer when the stock is
    /// low: the caller allocates the rest). Taken in bulk so the lock is
    /// taken once per chunk of records, not once per record.
    pub fn take(&self, count: usize, into: &mut Vec<Vec<u8>>) {
        let mut stock = self.stock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let from = stock.len().saturating_sub(count);
        into.extend(stock.drain(from..));
    }

    /// Returns the buffers of used records to the stock, emptied (mapped
    /// records have none).
    pub fn give_back(&self, records: impl IntoIterator<Item = RecordBytes>) {
        let mut stock = self.stock.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for mut buffer in records.into_iter().filter_map(RecordBytes::into_buffer) {
            if stock.len() >= self.keep {
                break;
            }
            if buffer.capacity() <= LARGEST_KEPT {
                buffer.clear();
                stock.push(buffer);
            }
        }
    }

    #[cfg(test)]
    fn stocked(&self) -> usize {
        self.stock.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_with_their_capacity() {
        let buffers = LineBuffers::new(8);
        let mut used = Vec::with_capacity(3000);
        used.extend_from_slice(b"{\"ContactId\":\"c\"}");
        buffers.give_back([used.into()]);
        let mut taken = Vec::new();
        buffers.take(4, &mut taken);
        assert_eq!(taken.len(), 1, "only what was given back");
        assert!(taken[0].is_empty());
        assert!(taken[0].capacity() >= 3000);
    }

    #[test]
    fn the_stock_is_bounded_and_large_buffers_are_freed() {
        let buffers = LineBuffers::new(2);
        buffers.give_back([Vec::with_capacity(LARGEST_KEPT + 1).into()]);
        assert_eq!(buffers.stocked(), 0, "an outsized buffer is not kept");
        buffers.give_back((0..5).map(|_| Vec::with_capacity(16).into()));
        assert_eq!(buffers.stocked(), 2);
        let mut taken = Vec::new();
        buffers.take(10, &mut taken);
        assert_eq!((taken.len(), buffers.stocked()), (2, 0));
    }
}

//! Reading and decoding (a third of the work) run on their own thread, so
//! the next records are decoded while the pipeline claims.

use std::sync::mpsc::SyncSender;

use crate::ctr::{ContactRecord, DecodeError, RecordDecoder};
use crate::sources::{Position, RecordBytes, RecordReader};

/// A record as the decoding thread hands it over: decoded, or the reason it
/// cannot be used together with its bytes for the dead letters.
pub(super) struct DecodedRecord {
    pub position: Position,
    pub size: u64,
    pub result: Result<ContactRecord, (DecodeError, RecordBytes)>,
}

/// Records per hand-over from the decoding thread: large enough that the
/// channel costs nothing per record, small enough to keep both threads busy.
pub(super) const DECODE_CHUNK: usize = 256;

/// The decoding thread: reads one input and decodes its records, in order.
/// Stops early when the pipeline hangs up (it failed and returned).
pub(super) fn decode_records(
    mut reader: RecordReader,
    decoder: RecordDecoder,
    chunks: SyncSender<std::io::Result<Vec<DecodedRecord>>>,
) {
    let mut chunk = Vec::with_capacity(DECODE_CHUNK);
    loop {
        match reader.next_record() {
            Ok(Some(raw)) => {
                let size = raw.bytes.len() as u64;
                let result = match raw.rejected {
                    Some(error) => Err((error, raw.bytes)),
                    None => decoder.decode_owned(raw.bytes, raw.delivery),
                };
                chunk.push(DecodedRecord { position: raw.position, size, result });
                if chunk.len() == DECODE_CHUNK {
                    let full = std::mem::replace(&mut chunk, Vec::with_capacity(DECODE_CHUNK));
                    if chunks.send(Ok(full)).is_err() {
                        return;
                    }
                }
            }
            Ok(None) => {
                if !chunk.is_empty() {
                    let _ = chunks.send(Ok(chunk));
                }
                return;
            }
            Err(error) => {
                // What was read before the error is still handled.
                let _ = chunks.send(Ok(chunk));
                let _ = chunks.send(Err(error));
                return;
            }
        }
    }
}

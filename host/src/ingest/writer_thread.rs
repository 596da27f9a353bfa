//! The sink write (mostly waiting for fsync) and the completion run on a
//! writer thread, so the next batch is read, decoded and claimed while the
//! previous one reaches the disk.

use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::batch;
use crate::ctr::UtcDay;
use crate::dedup::{DedupStore, FencingToken};
use crate::failpoint::failpoint;
use crate::sinks::{Sink, SinkRecord};
use crate::sources::{LineBuffers, RecordBytes};

/// A claimed batch on its way to the writer thread.
pub(super) struct WriteJob {
    pub token: FencingToken,
    pub records: Vec<(UtcDay, RecordBytes)>,
}

/// What the writer thread hands back when the input is done.
pub(super) struct WriterResult {
    pub sinks: Vec<Box<dyn Sink>>,
    pub deferred: Vec<FencingToken>,
}

pub(super) struct Writer {
    pub jobs: SyncSender<WriteJob>,
    pub handle: JoinHandle<anyhow::Result<WriterResult>>,
}

/// The writer thread: each batch to every sink, then its completion.
pub(super) fn write_batches(
    queue: Receiver<WriteJob>,
    mut sinks: Vec<Box<dyn Sink>>,
    store: Arc<dyn DedupStore>,
    buffers: Arc<LineBuffers>,
    defer_completion: bool,
) -> anyhow::Result<WriterResult> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut deferred = Vec::new();
    for job in queue {
        let records: Vec<SinkRecord<'_>> =
            job.records.iter().map(|(day, line)| SinkRecord { day: *day, line }).collect();
        if let Err(err) = batch::write(&mut sinks, job.token, &records) {
            runtime.block_on(batch::release(store.as_ref(), job.token));
            return Err(err);
        }
        drop(records);
        buffers.give_back(job.records.into_iter().map(|(_, line)| line));
        failpoint("after-sink-write");
        if defer_completion {
            // Completing before the Firehose response exists would turn a
            // record Firehose never got an answer for into a duplicate on its retry.
            deferred.push(job.token);
        } else {
            runtime.block_on(batch::complete(store.as_ref(), job.token))?;
            failpoint("after-complete");
        }
    }
    for sink in &mut sinks {
        sink.finish()?;
    }
    Ok(WriterResult { sinks, deferred })
}

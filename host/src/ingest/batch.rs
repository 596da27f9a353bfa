//! The steps of the claim protocol for one batch, written once for every
//! driver: `callqa ingest` runs them across its reading and writer threads,
//! `callqa serve` one request at a time. The order is the protocol (see
//! `crate::dedup`): claim durably, then write every claimed record under the
//! batch's token, then complete; when the write fails, release.

use anyhow::Context;

use crate::ctr::ContactRecord;
use crate::dedup::{BatchClaim, ClaimBatch, ClaimRequest, DedupStore, FencingToken};
use crate::sinks::{Sink, SinkRecord};
use crate::sources::Position;

/// A decoded record waiting for its claim.
pub struct PendingRecord {
    /// Index into the driver's inputs.
    pub input: usize,
    pub position: Position,
    pub record: ContactRecord,
}

/// Step 1: claims every record in one atomic write. `inputs` names the
/// inputs the records come from, starting at index `first_input` (the
/// source identity each claim records).
pub async fn claim(
    store: &dyn DedupStore,
    inputs: &[String],
    first_input: usize,
    pending: &[PendingRecord],
) -> anyhow::Result<BatchClaim> {
    let requests: Vec<ClaimRequest<'_>> = pending
        .iter()
        .map(|p| ClaimRequest {
            fingerprint: p.record.fingerprint,
            contact_id: &p.record.contact_id,
            last_update_millis: p.record.last_update_millis,
            day: p.record.day,
            input: (p.input - first_input) as u32,
            position: p.position.ordinal(),
        })
        .collect();
    store
        .claim_batch(&ClaimBatch { inputs, requests: &requests })
        .await
        .context("cannot claim records in the dedup store")
}

/// Step 2: the claimed records to every sink, under the batch's token.
/// Returns once they are durable; a retry of the same token replaces.
pub fn write(sinks: &mut [Box<dyn Sink>], token: FencingToken, records: &[SinkRecord<'_>]) -> anyhow::Result<()> {
    for sink in sinks {
        sink.write_batch(token, records)
            .with_context(|| format!("cannot write batch {} to {}", token.0, sink.describe()))?;
    }
    Ok(())
}

/// Step 3: from now on the batch's records are duplicates.
pub async fn complete(store: &dyn DedupStore, token: FencingToken) -> anyhow::Result<()> {
    store.complete_batch(token).await.context("cannot complete a batch in the dedup store")
}

/// After a failed write: gives the claims back so that a retry claims them
/// at once instead of after the lease. Best effort: if this fails too, the
/// next run's recovery settles the batch against the sink.
pub async fn release(store: &dyn DedupStore, token: FencingToken) {
    if let Err(err) = store.release_batch(token).await {
        tracing::warn!("cannot release batch {} after a failed write (recovery will settle it): {err}", token.0);
    }
}

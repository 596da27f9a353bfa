//! Before the first claim: settle what a crashed run left in progress.

use anyhow::Context;

use crate::ctr::UtcDay;
use crate::dedup::{DedupStore, FencingToken};
use crate::sinks::Sink;

/// Settles the batches a crashed run left in progress against `sinks`, then
/// sweeps expired entries; returns (batches settled, entries swept). Every
/// long-lived user of a store (`callqa ingest`, `callqa serve`) runs this
/// before its first claim.
pub async fn recover_store(store: &dyn DedupStore, sinks: &[Box<dyn Sink>]) -> anyhow::Result<(u64, u64)> {
    let recovered = settle_stale_batches(store, |token, days| {
        // A record is durable when every sink that can tell has its file.
        let mut durable = days.to_vec();
        let mut any_can_tell = false;
        for sink in sinks {
            let found = sink.durable_days(token, days)?;
            any_can_tell |= !found.is_empty();
            durable.retain(|day| found.contains(day));
        }
        if !any_can_tell {
            durable.clear();
        }
        Ok(durable)
    })
    .await?;
    let swept = store.sweep().await.context("cannot sweep expired entries from the dedup store")?;
    Ok((recovered, swept))
}

/// Settles the store's stale batches with the days `durable_days` finds in
/// the sink; returns how many. For drivers that hold their sink behind a
/// lock (the Kinesis shard consumers).
pub async fn settle_stale_batches(
    store: &dyn DedupStore,
    mut durable_days: impl FnMut(FencingToken, &[UtcDay]) -> anyhow::Result<Vec<UtcDay>>,
) -> anyhow::Result<u64> {
    let stale = store.stale_batches().await.context("cannot list unfinished batches in the dedup store")?;
    let mut recovered = 0;
    for batch in stale {
        let durable = durable_days(batch.token, &batch.days)?;
        store.settle_batch(batch.token, &durable).await.context("cannot settle an unfinished batch")?;
        recovered += 1;
    }
    Ok(recovered)
}

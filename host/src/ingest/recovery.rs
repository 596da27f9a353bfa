//! Before the first claim: settle what a crashed run left in progress.

use anyhow::Context;

use crate::dedup::DedupStore;
use crate::sinks::Sink;

/// Settles the batches a crashed run left in progress against `sinks`, then
/// sweeps expired entries; returns (batches settled, entries swept). Every
/// long-lived user of a store (`callqa ingest`, `callqa serve`) runs this
/// before its first claim.
pub async fn recover_store(store: &dyn DedupStore, sinks: &[Box<dyn Sink>]) -> anyhow::Result<(u64, u64)> {
    let stale = store.stale_batches().await.context("cannot list unfinished batches in the dedup store")?;
    let mut recovered = 0;
    for batch in stale {
        // A record is durable when every sink that can tell has its file.
        let mut durable = batch.days.clone();
        let mut any_can_tell = false;
        for sink in sinks {
            let days = sink.durable_days(batch.token, &batch.days)?;
            any_can_tell |= !days.is_empty();
            durable.retain(|day| days.contains(day));
        }
        if !any_can_tell {
            durable.clear();
        }
        store.settle_batch(batch.token, &durable).await.context("cannot settle an unfinished batch")?;
        recovered += 1;
    }
    let swept = store.sweep().await.context("cannot sweep expired entries from the dedup store")?;
    Ok((recovered, swept))
}

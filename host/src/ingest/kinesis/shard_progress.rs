use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use crate::ingest::Counts;

/// What one host did with one shard: the counts of its records, how far
/// behind the stream's tip it last was, and whether it read the shard to
/// its end.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShardProgress {
    pub counts: Counts,
    /// `MillisBehindLatest` of the last read: how far the checkpoint trails
    /// the newest record of the shard.
    pub millis_behind: i64,
    /// Times this host took the shard's lease.
    pub leases_taken: u64,
    pub held: bool,
    /// Read to `SHARD_END` (a closed shard, after a reshard).
    pub finished: bool,
}

/// Every shard's progress on this host, shared by the shard consumers, the
/// scheduler, the summary of `callqa ingest` and the metrics of `callqa serve`.
#[derive(Debug, Clone, Default)]
pub struct StreamProgress {
    shards: Arc<Mutex<BTreeMap<String, ShardProgress>>>,
}

impl StreamProgress {
    pub fn update(&self, shard: &str, change: impl FnOnce(&mut ShardProgress)) {
        change(self.shards.lock().entry(shard.to_string()).or_default());
    }

    pub fn snapshot(&self) -> BTreeMap<String, ShardProgress> {
        self.shards.lock().clone()
    }

    pub fn leases_held(&self) -> usize {
        self.shards.lock().values().filter(|p| p.held).count()
    }
}

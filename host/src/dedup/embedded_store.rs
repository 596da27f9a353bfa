//! The default store: one redb file, exclusively locked by the process that
//! opens it. See the module docs of `dedup` for the protocol it implements,
//! and [`ClaimIndex`] for how claims are kept.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use redb::{Database, DatabaseError, Durability, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::claim_index::{ClaimEntry, ClaimIndex, IndexChanges};
use super::protocol::{judge_claim, BatchStatus, Judgement, OwnerBatch, TakeoverPolicy};
use super::{
    BatchClaim, ClaimBatch, ClaimOutcome, DedupStore, FencingToken, Millis, StaleBatch, StoreError, StoreSettings,
};
use crate::ctr::{Fingerprint, UtcDay};

/// fencing token → the claims and versions the batch wrote (see [`ClaimIndex`]).
const CLAIM_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("claim_log");
/// fencing token → [`BatchEntry`] (JSON: few, small, and readable when debugging).
const BATCHES: TableDefinition<u64, &[u8]> = TableDefinition::new("batches");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Format 1 kept a row per fingerprint and per contact; opening such a store
/// moves them into one log row.
const V1_CLAIMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("claims");
const V1_LATEST: TableDefinition<&str, &[u8]> = TableDefinition::new("latest");

const FORMAT_VERSION: u64 = 2;

/// The embedded, persistent, transactional store (redb).
///
/// redb takes an exclusive file lock, so while this process has the store
/// open no other process can, and any batch still in progress from another
/// session belongs to a process that is gone: it is stale at once, without
/// waiting for its lease.
pub struct EmbeddedStore {
    db: Database,
    path: PathBuf,
    session: u64,
    store_id: String,
    settings: StoreSettings,
    /// Held for a whole claim transaction: claims are judged against it and
    /// logged in the transaction that makes them durable.
    index: Mutex<ClaimIndex>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct BatchEntry {
    /// Stored under its old name: stores written before `BatchStatus` was
    /// shared with the other backends still open.
    #[serde(rename = "state")]
    status: BatchStatus,
    owner: u64,
    claimed_at: Millis,
    lease_until: Millis,
    expires: Millis,
    days: Vec<i32>,
    durable_days: Vec<i32>,
    inputs: Vec<String>,
}

/// The file lock proves a batch of another session belongs to a process
/// that is gone: past its lease, it is taken over.
const TAKEOVER: TakeoverPolicy = TakeoverPolicy::TakeOverExpiredLease;

impl BatchEntry {
    fn owner_view(&self, session: u64) -> OwnerBatch<'_> {
        OwnerBatch {
            status: self.status,
            ours: self.owner == session,
            lease_until: self.lease_until,
            durable_days: &self.durable_days,
        }
    }
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store file, starts a new session and
    /// sweeps expired entries.
    pub fn open(path: &Path, settings: StoreSettings) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|err| StoreError::backend(format!("cannot create directory {}", parent.display()), err))?;
        }
        let db = Database::builder().create(path).map_err(|err| match err {
            DatabaseError::DatabaseAlreadyOpen => StoreError::InUse { path: path.display().to_string() },
            other => StoreError::backend(format!("cannot open {}", path.display()), other),
        })?;
        let context = || format!("cannot start a session on {}", path.display());
        let txn = db.begin_write().map_err(|e| StoreError::backend(context(), e))?;
        let (session, store_id) = {
            let mut meta = txn.open_table(META).map_err(|e| StoreError::backend(context(), e))?;
            let read_u64 = |meta: &redb::Table<&str, &[u8]>, key: &str| -> Result<Option<u64>, StoreError> {
                Ok(meta
                    .get(key)
                    .map_err(|e| StoreError::backend(context(), e))?
                    .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes)))
            };
            let format = read_u64(&meta, "format")?;
            match format {
                None | Some(1) => {
                    meta.insert("format", FORMAT_VERSION.to_le_bytes().as_slice())
                        .map_err(|e| StoreError::backend(context(), e))?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(StoreError::Backend {
                        context: context(),
                        message: format!(
                            "store format {other} was written by a newer callqa (this one reads formats 1 and {FORMAT_VERSION}); \
                             upgrade callqa or pass a different --store"
                        ),
                    })
                }
            }
            let session = read_u64(&meta, "session")?.unwrap_or(0) + 1;
            meta.insert("session", session.to_le_bytes().as_slice()).map_err(|e| StoreError::backend(context(), e))?;
            let existing_id = meta
                .get("store_id")
                .map_err(|e| StoreError::backend(context(), e))?
                .map(|v| String::from_utf8_lossy(v.value()).into_owned());
            let store_id = match existing_id {
                Some(id) => id,
                None => {
                    let id = new_store_id(path);
                    meta.insert("store_id", id.as_bytes()).map_err(|e| StoreError::backend(context(), e))?;
                    id
                }
            };
            if format == Some(1) {
                migrate_v1(&txn).map_err(|e| {
                    StoreError::backend(format!("{} (moving format 1 claims into the claim log)", context()), e)
                })?;
            }
            // Create the other tables so read paths never meet a missing table.
            txn.open_table(CLAIM_LOG).map_err(|e| StoreError::backend(context(), e))?;
            txn.open_table(BATCHES).map_err(|e| StoreError::backend(context(), e))?;
            (session, store_id)
        };
        txn.commit().map_err(|e| StoreError::backend(context(), e))?;

        let index = replay_log(&db)
            .map_err(|e| StoreError::backend(format!("cannot read the claims in {}", path.display()), e))?;
        Ok(EmbeddedStore { db, path: path.to_path_buf(), session, store_id, settings, index: Mutex::new(index) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn now(&self) -> Millis {
        self.settings.clock.now_millis()
    }

    fn ttl_millis(&self) -> Millis {
        self.settings.ttl.as_millis() as Millis
    }

    fn err(&self, action: &str, err: impl std::fmt::Display) -> StoreError {
        StoreError::backend(format!("{} ({action})", self.path.display()), err)
    }

    fn write_txn(&self, durability: Durability, action: &str) -> Result<redb::WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(action, e))?;
        txn.set_durability(durability);
        // No quick repair: saving redb's allocator state with every durable
        // commit cost about 5,700 instructions per record (callgrind; ~9% of
        // a one-core ingest). Without it, the first open after a SIGKILL
        // rebuilds that state by walking the file, which is small here (the
        // claim log of one TTL window): 9 MB after 50,000 records, reopened,
        // repaired and 10,000 more records ingested in 0.12 s.
        txn.set_quick_repair(false);
        Ok(txn)
    }

    /// The claim transaction: judges every request against the index,
    /// updates it, and writes the batch entry and its log row durably.
    fn claim_in_index<'a>(
        &self,
        index: &mut ClaimIndex,
        changes: &mut IndexChanges<'a>,
        batch: &ClaimBatch<'a>,
        now: Millis,
        expires: Millis,
    ) -> Result<(u64, Vec<ClaimOutcome>), StoreError> {
        let err = |e: redb::Error| self.err("claim", e);
        // The claims must be on disk before the sink writes anything they name.
        let txn = self.write_txn(Durability::Immediate, "claim")?;
        let token;
        let mut outcomes = Vec::with_capacity(batch.requests.len());
        {
            let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
            token = meta
                .get("next_token")
                .map_err(|e| err(e.into()))?
                .and_then(|v| v.value().try_into().ok().map(u64::from_le_bytes))
                .unwrap_or(1);
            meta.insert("next_token", (token + 1).to_le_bytes().as_slice()).map_err(|e| err(e.into()))?;
            let mut batches = txn.open_table(BATCHES).map_err(|e| err(e.into()))?;
            let mut known_batches: HashMap<u64, Option<BatchEntry>> = HashMap::new();
            let mut days = BTreeSet::new();

            // Versions first, in input order, so "update" means newer than
            // what came before it; a duplicate's version is never newer than
            // its original's, so it changes nothing there.
            let newer: Vec<bool> = batch
                .requests
                .iter()
                .map(|request| {
                    request.last_update_millis.is_some_and(|version| {
                        index
                            .note_version(changes, request.contact_id.into(), version, expires, now)
                            .is_some_and(|seen| version > seen)
                    })
                })
                .collect();

            // In request order: of two equal fingerprints the earlier one claims.
            for (request, newer) in batch.requests.iter().zip(newer) {
                let entry = ClaimEntry {
                    token,
                    expires,
                    day: request.day.0,
                    input: request.input,
                    position: request.position,
                    update: newer,
                };
                // Claim first and judge what the claim replaced: most records
                // are new, and for them this is the only lookup. A claim that
                // should not have replaced its predecessor puts it back.
                let replaced = index.claim(changes, request.fingerprint, entry);
                // `Ok(Some(inherited update flag))` when the fingerprint is absent.
                let absent: Result<Option<bool>, ClaimOutcome> = match replaced {
                    None => Ok(None),
                    Some(entry) => {
                        let standing = entry.standing();
                        let judgement = match judge_claim(&standing, token, now) {
                            Some(judgement) => judgement,
                            None => {
                                let owner = match known_batches.get(&entry.token) {
                                    Some(known) => known.clone(),
                                    None => {
                                        let loaded =
                                            read_batch(&batches, entry.token).map_err(|e| self.err("claim", e))?;
                                        known_batches.insert(entry.token, loaded.clone());
                                        loaded
                                    }
                                };
                                let owner = owner.as_ref().map(|batch| batch.owner_view(self.session));
                                TAKEOVER.judge_owner(&standing, owner.as_ref(), now)
                            }
                        };
                        match judgement {
                            Judgement::Absent { inherited_update } => Ok(inherited_update),
                            Judgement::Decided(outcome) => Err(outcome),
                        }
                    }
                };
                match absent {
                    Err(outcome) => {
                        outcomes.push(outcome);
                        if let Some(replaced) = replaced {
                            index.restore(request.fingerprint, replaced);
                        }
                    }
                    Ok(inherited) => {
                        days.insert(request.day.0);
                        // A taken-over claim keeps the update flag of the record it replaces.
                        let update = inherited.unwrap_or(newer);
                        outcomes.push(ClaimOutcome::Claimed { update });
                        let entry = ClaimEntry { update, ..entry };
                        if update != newer {
                            index.restore(request.fingerprint, entry);
                        }
                        changes.log_claim(request.fingerprint, entry);
                    }
                }
            }

            if !days.is_empty() {
                let entry = BatchEntry {
                    status: BatchStatus::InProgress,
                    owner: self.session,
                    claimed_at: now,
                    lease_until: now + self.settings.lease.as_millis() as Millis,
                    expires,
                    days: days.into_iter().collect(),
                    durable_days: Vec::new(),
                    inputs: batch.inputs.to_vec(),
                };
                let bytes = serde_json::to_vec(&entry).map_err(|e| self.err("claim", e))?;
                batches.insert(token, bytes.as_slice()).map_err(|e| err(e.into()))?;
            }
            if !changes.is_empty() {
                let mut log = txn.open_table(CLAIM_LOG).map_err(|e| err(e.into()))?;
                log.insert(token, changes.encode().as_slice()).map_err(|e| err(e.into()))?;
            }
        }
        txn.commit().map_err(|e| self.err("claim", e))?;
        Ok((token, outcomes))
    }

    fn set_batch_state(
        &self,
        token: FencingToken,
        action: &str,
        durability: Durability,
        change: impl FnOnce(&mut BatchEntry) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.write_txn(durability, action)?;
        {
            let mut batches = txn.open_table(BATCHES).map_err(|e| self.err(action, e))?;
            let mut entry =
                read_batch(&batches, token.0).map_err(|e| self.err(action, e))?.ok_or_else(|| StoreError::Backend {
                    context: format!("{} ({action})", self.path.display()),
                    message: format!("no batch {}", token.0),
                })?;
            change(&mut entry)?;
            let bytes = serde_json::to_vec(&entry).map_err(|e| self.err(action, e))?;
            batches.insert(token.0, bytes.as_slice()).map_err(|e| self.err(action, e))?;
        }
        txn.commit().map_err(|e| self.err(action, e))
    }
}

#[async_trait::async_trait]
impl DedupStore for EmbeddedStore {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn instance_id(&self) -> &str {
        &self.store_id
    }

    async fn stale_batches(&self) -> Result<Vec<StaleBatch>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err("recover", e))?;
        let batches = txn.open_table(BATCHES).map_err(|e| self.err("recover", e))?;
        let mut stale = Vec::new();
        for row in batches.iter().map_err(|e| self.err("recover", e))? {
            let (token, value) = row.map_err(|e| self.err("recover", e))?;
            let entry: BatchEntry = serde_json::from_slice(value.value()).map_err(|e| self.err("recover", e))?;
            if entry.status == BatchStatus::InProgress && entry.owner != self.session {
                stale.push(StaleBatch {
                    token: FencingToken(token.value()),
                    days: entry.days.iter().map(|d| UtcDay(*d)).collect(),
                });
            }
        }
        Ok(stale)
    }

    async fn settle_batch(&self, token: FencingToken, durable_days: &[UtcDay]) -> Result<(), StoreError> {
        self.set_batch_state(token, "settle", Durability::Immediate, |entry| {
            if entry.status == BatchStatus::InProgress {
                entry.status = BatchStatus::Settled;
                entry.durable_days = durable_days.iter().map(|d| d.0).collect();
            }
            Ok(())
        })
    }

    async fn claim_batch(&self, batch: &ClaimBatch<'_>) -> Result<BatchClaim, StoreError> {
        let now = self.now();
        let expires = now + self.ttl_millis();
        let mut index = self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut changes = IndexChanges::default();
        let claimed = self.claim_in_index(&mut index, &mut changes, batch, now, expires);
        match claimed {
            Ok((token, outcomes)) => {
                if !changes.is_empty() {
                    index.add_row(token, changes.expires());
                }
                Ok(BatchClaim { token: FencingToken(token), outcomes })
            }
            Err(err) => {
                // The transaction did not commit: memory must not remember it.
                index.undo(changes);
                Err(err)
            }
        }
    }

    async fn complete_batch(&self, token: FencingToken) -> Result<(), StoreError> {
        // Not fsynced: a completion lost in a crash leaves the batch in
        // progress, and recovery finds its files and settles it as durable.
        // The next claim's durable commit persists it anyway.
        let session = self.session;
        self.set_batch_state(token, "complete", Durability::None, |entry| {
            if entry.status != BatchStatus::InProgress || entry.owner != session {
                return Err(StoreError::Fenced(token));
            }
            entry.status = BatchStatus::Completed;
            Ok(())
        })
    }

    async fn release_batch(&self, token: FencingToken) -> Result<(), StoreError> {
        let session = self.session;
        self.set_batch_state(token, "release", Durability::Immediate, |entry| {
            if entry.status != BatchStatus::InProgress || entry.owner != session {
                return Err(StoreError::Fenced(token));
            }
            entry.status = BatchStatus::Settled;
            entry.durable_days.clear();
            Ok(())
        })
    }

    async fn sweep(&self) -> Result<u64, StoreError> {
        let now = self.now();
        let mut index = self.index.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let rows = index.expired_rows(now);
        let txn = self.write_txn(Durability::Immediate, "sweep")?;
        {
            let err = |e: redb::Error| self.err("sweep", e);
            let mut log = txn.open_table(CLAIM_LOG).map_err(|e| err(e.into()))?;
            for token in &rows {
                log.remove(token).map_err(|e| err(e.into()))?;
            }
            let mut batches = txn.open_table(BATCHES).map_err(|e| err(e.into()))?;
            batches
                .retain(|_, value| {
                    serde_json::from_slice::<BatchEntry>(value)
                        .map(|entry| entry.status == BatchStatus::InProgress || entry.expires > now)
                        .unwrap_or(false)
                })
                .map_err(|e| err(e.into()))?;
        }
        txn.commit().map_err(|e| self.err("sweep", e))?;
        Ok(index.sweep(now, &rows))
    }

    async fn close(&self) -> Result<(), StoreError> {
        // An empty durable commit persists the completions written without fsync.
        let txn = self.write_txn(Durability::Immediate, "close")?;
        txn.commit().map_err(|e| self.err("close", e))
    }
}

// redb's own error type is large; these run per open or per batch, not per record.
#[allow(clippy::result_large_err)]
fn read_batch(batches: &impl ReadableTable<u64, &'static [u8]>, token: u64) -> Result<Option<BatchEntry>, redb::Error> {
    match batches.get(token)? {
        None => Ok(None),
        Some(value) => serde_json::from_slice(value.value())
            .map(Some)
            .map_err(|e| redb::Error::Corrupted(format!("batch {token}: {e}"))),
    }
}

/// Rebuilds the index from the claim log, oldest batch first.
// redb's own error type is large; these run per open or per batch, not per record.
#[allow(clippy::result_large_err)]
fn replay_log(db: &Database) -> Result<ClaimIndex, redb::Error> {
    let mut index = ClaimIndex::default();
    let txn = db.begin_read()?;
    let log = txn.open_table(CLAIM_LOG)?;
    for row in log.iter()? {
        let (token, value) = row?;
        index.replay(token.value(), value.value()).map_err(|e| redb::Error::Corrupted(e.to_string()))?;
    }
    Ok(index)
}

/// Moves a format 1 store's claim and version rows into one log row under
/// token 0, which replays before every batch's.
// redb's own error type is large; these run per open or per batch, not per record.
#[allow(clippy::result_large_err)]
fn migrate_v1(txn: &redb::WriteTransaction) -> Result<(), redb::Error> {
    let mut index = ClaimIndex::default();
    let mut changes = IndexChanges::default();
    {
        let claims = txn.open_table(V1_CLAIMS)?;
        for row in claims.iter()? {
            let (fingerprint, value) = row?;
            let (Ok(fingerprint), Some(entry)) =
                (<[u8; 32]>::try_from(fingerprint.value()), ClaimEntry::decode(value.value()))
            else {
                continue;
            };
            changes.log_claim(Fingerprint(fingerprint), entry);
        }
        let latest = txn.open_table(V1_LATEST)?;
        for row in latest.iter()? {
            let (contact, value) = row?;
            let value = value.value();
            if value.len() != 16 {
                continue;
            }
            let version = i64::from_le_bytes(value[..8].try_into().unwrap());
            let expires = i64::from_le_bytes(value[8..].try_into().unwrap());
            index.note_version(&mut changes, contact.value().to_owned().into(), version, expires, Millis::MIN);
        }
    }
    if !changes.is_empty() {
        txn.open_table(CLAIM_LOG)?.insert(0, changes.encode().as_slice())?;
    }
    txn.delete_table(V1_CLAIMS)?;
    txn.delete_table(V1_LATEST)?;
    Ok(())
}

/// Eight hex digits, different for every store file ever created.
fn new_store_id(path: &Path) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let seed = format!("{nanos}:{}:{}", std::process::id(), path.display());
    Fingerprint::of(seed.as_bytes()).to_hex()[..8].to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::dedup::{ClaimRequest, ManualClock};

    fn settings(clock: Arc<ManualClock>) -> StoreSettings {
        StoreSettings { ttl: Duration::from_secs(3600), lease: Duration::from_secs(30), clock }
    }

    fn request(fp: u8, contact: &str, version: i64) -> ClaimRequest<'_> {
        ClaimRequest {
            fingerprint: Fingerprint([fp; 32]),
            contact_id: contact,
            last_update_millis: Some(version),
            day: UtcDay(19000),
            input: 0,
            position: fp as u64,
        }
    }

    fn claim(store: &EmbeddedStore, requests: &[ClaimRequest<'_>]) -> BatchClaim {
        let inputs = vec!["test".to_string()];
        block_on(store.claim_batch(&ClaimBatch { inputs: &inputs, requests })).unwrap()
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(future)
    }

    #[test]
    fn claims_complete_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(1_000_000));
        let store = EmbeddedStore::open(&dir.path().join("s.redb"), settings(clock.clone())).unwrap();
        let first = claim(&store, &[request(1, "a", 10), request(1, "a", 10), request(2, "a", 20)]);
        assert_eq!(
            first.outcomes,
            vec![
                ClaimOutcome::Claimed { update: false },
                ClaimOutcome::Duplicate,
                ClaimOutcome::Claimed { update: true }
            ]
        );
        block_on(store.complete_batch(first.token)).unwrap();
        assert!(matches!(block_on(store.complete_batch(first.token)), Err(StoreError::Fenced(_))));
        let second = claim(&store, &[request(1, "a", 10)]);
        assert_eq!(second.outcomes, vec![ClaimOutcome::Duplicate]);
        assert!(second.token > first.token);

        clock.advance(Duration::from_secs(3601));
        let third = claim(&store, &[request(1, "a", 10)]);
        assert_eq!(third.outcomes, vec![ClaimOutcome::Claimed { update: false }]);
        block_on(store.complete_batch(third.token)).unwrap();
        assert_eq!(block_on(store.sweep()).unwrap(), 1);
    }

    #[test]
    fn a_dead_sessions_batch_is_stale_and_settles_per_partition() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let clock = Arc::new(ManualClock::new(1_000_000));
        let token = {
            let store = EmbeddedStore::open(&path, settings(clock.clone())).unwrap();
            let mut other_day = request(2, "b", 1);
            other_day.day = UtcDay(19001);
            claim(&store, &[request(1, "a", 1), other_day]).token
        };
        let store = EmbeddedStore::open(&path, settings(clock)).unwrap();
        let stale = block_on(store.stale_batches()).unwrap();
        assert_eq!(stale, vec![StaleBatch { token, days: vec![UtcDay(19000), UtcDay(19001)] }]);
        block_on(store.settle_batch(token, &[UtcDay(19000)])).unwrap();
        let mut other_day = request(2, "b", 1);
        other_day.day = UtcDay(19001);
        let replay = claim(&store, &[request(1, "a", 1), other_day]);
        assert_eq!(replay.outcomes, vec![ClaimOutcome::Duplicate, ClaimOutcome::Claimed { update: false }]);
    }

    #[test]
    fn a_second_open_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let clock = Arc::new(ManualClock::new(0));
        let _first = EmbeddedStore::open(&path, settings(clock.clone())).unwrap();
        let second = EmbeddedStore::open(&path, settings(clock));
        assert!(matches!(second, Err(StoreError::InUse { .. })));
    }

    #[test]
    fn claims_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let clock = Arc::new(ManualClock::new(1_000_000));
        {
            let store = EmbeddedStore::open(&path, settings(clock.clone())).unwrap();
            let first = claim(&store, &[request(1, "a", 10), request(2, "b", 10)]);
            block_on(store.complete_batch(first.token)).unwrap();
            let second = claim(&store, &[request(3, "a", 20)]);
            block_on(store.complete_batch(second.token)).unwrap();
            block_on(store.close()).unwrap();
        }
        let store = EmbeddedStore::open(&path, settings(clock)).unwrap();
        let again = claim(&store, &[request(1, "a", 10), request(3, "a", 20), request(4, "a", 30), request(5, "b", 5)]);
        assert_eq!(
            again.outcomes,
            vec![
                ClaimOutcome::Duplicate,
                ClaimOutcome::Duplicate,
                ClaimOutcome::Claimed { update: true },
                ClaimOutcome::Claimed { update: false },
            ],
            "claims and latest versions are replayed from the log"
        );
    }

    #[test]
    fn a_format_1_store_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.redb");
        let now = 1_000_000;
        {
            // The layout callqa 0.1 wrote: a row per fingerprint and per contact.
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                meta.insert("format", 1u64.to_le_bytes().as_slice()).unwrap();
                meta.insert("session", 3u64.to_le_bytes().as_slice()).unwrap();
                meta.insert("next_token", 8u64.to_le_bytes().as_slice()).unwrap();
                let mut claims = txn.open_table(V1_CLAIMS).unwrap();
                let entry =
                    ClaimEntry { token: 7, expires: now + 5_000, day: 19000, input: 0, position: 1, update: false };
                let mut bytes = Vec::new();
                entry.encode_into(&mut bytes);
                claims.insert([1u8; 32].as_slice(), bytes.as_slice()).unwrap();
                let mut latest = txn.open_table(V1_LATEST).unwrap();
                let mut pair = 10i64.to_le_bytes().to_vec();
                pair.extend_from_slice(&(now + 5_000).to_le_bytes());
                latest.insert("a", pair.as_slice()).unwrap();
                let mut batches = txn.open_table(BATCHES).unwrap();
                let batch = BatchEntry {
                    status: BatchStatus::Completed,
                    owner: 3,
                    claimed_at: now,
                    lease_until: now,
                    expires: now + 5_000,
                    days: vec![19000],
                    durable_days: vec![],
                    inputs: vec!["old".into()],
                };
                batches.insert(7, serde_json::to_vec(&batch).unwrap().as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = EmbeddedStore::open(&path, settings(Arc::new(ManualClock::new(now)))).unwrap();
        let batch = claim(&store, &[request(1, "a", 10), request(2, "a", 20)]);
        assert_eq!(batch.outcomes, vec![ClaimOutcome::Duplicate, ClaimOutcome::Claimed { update: true }]);
        assert_eq!(batch.token, FencingToken(8));
        let txn = store.db.begin_read().unwrap();
        assert!(txn.open_table(V1_CLAIMS).is_err(), "the format 1 tables are gone");
    }
}

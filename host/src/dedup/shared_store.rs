//! The claim protocol over a store shared by many hosts (DynamoDB, Redis).
//! See "Shared stores" in the module docs of `dedup`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt, TryStreamExt};
use parking_lot::Mutex;

use super::claim_table::{BatchItem, ClaimItem, ClaimTable, Expect};
use super::protocol::{judge_claim, BatchStatus, Judgement, OwnerBatch, StandingClaim, TakeoverPolicy};
use super::{
    BatchClaim, ClaimBatch, ClaimOutcome, ClaimRequest, DedupStore, FencingToken, Millis, StaleBatch, StoreError,
    StoreSettings,
};
use crate::ctr::{Fingerprint, UtcDay};

/// Claims in flight at once when not configured.
pub const DEFAULT_CONCURRENCY: usize = 64;

/// A [`DedupStore`] over a [`ClaimTable`] several hosts use at once.
///
/// All backend I/O runs on the store's own small runtime: the pipeline calls
/// the store from more than one thread and runtime (its writer thread has
/// one of its own), and connections driven by a runtime that is blocked at
/// that moment would stall.
pub struct SharedStore<T: ClaimTable + 'static> {
    inner: Arc<Inner<T>>,
    io: IoRuntime,
}

struct Inner<T: ClaimTable> {
    table: T,
    owner: String,
    session: String,
    instance_id: String,
    settings: StoreSettings,
    concurrency: usize,
    /// Batches in a final state (completed, settled) never change again: one
    /// read per batch is enough however many duplicates point at it.
    finished: Mutex<HashMap<u64, Arc<BatchItem>>>,
}

struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    async fn run<F, R>(&self, future: F) -> Result<R, StoreError>
    where
        F: std::future::Future<Output = Result<R, StoreError>> + Send + 'static,
        R: Send + 'static,
    {
        let runtime = self.0.as_ref().expect("the store runtime lives as long as the store");
        runtime.spawn(future).await.map_err(|e| StoreError::backend("dedup store I/O task", e))?
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        // The store may be dropped inside an async context, where a blocking
        // shutdown is not allowed; every write was already acknowledged.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A claim request that owns its strings, to cross into the store's runtime.
struct OwnedRequest {
    fingerprint: Fingerprint,
    contact_id: String,
    last_update_millis: Option<Millis>,
    day: UtcDay,
    input: u32,
    position: u64,
}

impl<T: ClaimTable + 'static> SharedStore<T> {
    /// `connect` makes the backend (on the store's runtime); `owner` names
    /// this host and its sink (see [`host_identity`]).
    pub async fn open<C>(
        connect: C,
        owner: String,
        settings: StoreSettings,
        concurrency: usize,
    ) -> Result<Self, StoreError>
    where
        C: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("callqa-store-io")
            .enable_all()
            .build()
            .map_err(|e| StoreError::backend("dedup store runtime", e))?;
        let io = IoRuntime(Some(runtime));
        let table = io.run(connect).await?;
        let inner = io
            .run(async move {
                let store_id = table.store_id().await?;
                // Hosts share the store's tokens, so file names never collide; the
                // owner part keeps one host's sink cleanup off another's files.
                let instance_id = format!(
                    "{}{}",
                    &store_id[..store_id.len().min(6)],
                    &Fingerprint::of(owner.as_bytes()).to_hex()[..6]
                );
                let session = Fingerprint::of(
                    format!("{}:{}:{:?}", std::process::id(), owner, std::time::SystemTime::now()).as_bytes(),
                )
                .to_hex()[..16]
                    .to_string();
                Ok(Inner {
                    table,
                    owner,
                    session,
                    instance_id,
                    settings,
                    concurrency: concurrency.max(1),
                    finished: Mutex::new(HashMap::new()),
                })
            })
            .await?;
        Ok(SharedStore { inner: Arc::new(inner), io })
    }
}

/// How one request came out, before the contact versions are looked at.
enum Claimed {
    /// Written; `inherited` is the update flag of the dead claim it replaced.
    New {
        inherited: Option<bool>,
    },
    Other(ClaimOutcome),
}

impl<T: ClaimTable> Inner<T> {
    fn now(&self) -> Millis {
        self.settings.clock.now_millis()
    }

    fn lease_millis(&self) -> Millis {
        self.settings.lease.as_millis() as Millis
    }

    async fn batch(&self, token: u64) -> Result<Option<Arc<BatchItem>>, StoreError> {
        if let Some(done) = self.finished.lock().get(&token) {
            return Ok(Some(done.clone()));
        }
        let Some(batch) = self.table.get_batch(token).await? else { return Ok(None) };
        let batch = Arc::new(batch);
        if batch.status != BatchStatus::InProgress {
            self.finished.lock().insert(token, batch.clone());
        }
        Ok(Some(batch))
    }

    async fn claim_one(
        &self,
        token: u64,
        request: &ClaimRequest<'_>,
        now: Millis,
        expires: Millis,
    ) -> Result<Claimed, StoreError> {
        let fingerprint = request.fingerprint.to_hex();
        let mut replace = None;
        let mut inherited = None;
        // Each round either writes or learns who holds the claim; a round
        // only repeats when that holder changed in between.
        for _ in 0..8 {
            let item = ClaimItem {
                token,
                day: request.day.0,
                update: inherited.unwrap_or(false),
                input: request.input,
                position: request.position,
                expires,
            };
            let Some(standing) = self.table.claim(&fingerprint, &item, replace, now).await? else {
                return Ok(Claimed::New { inherited });
            };
            let claim = StandingClaim {
                token: standing.token,
                day: standing.day,
                update: standing.update,
                expires: standing.expires,
            };
            let judgement = match judge_claim(&claim, token, now) {
                Some(judgement) => judgement,
                None => {
                    let batch = self.batch(standing.token).await?;
                    let owner = batch.as_deref().map(|batch| OwnerBatch {
                        status: batch.status,
                        ours: batch.session == self.session,
                        lease_until: batch.lease_until,
                        durable_days: &batch.durable_days,
                    });
                    let policy = TakeoverPolicy::WaitForOwner { min_wait: self.lease_millis().min(5_000) };
                    policy.judge_owner(&claim, owner.as_ref(), now)
                }
            };
            let outcome = match judgement {
                // Taken over by a write conditioned on the dead claim's token.
                Judgement::Absent { inherited_update } => {
                    replace = Some(standing.token);
                    inherited = inherited_update;
                    continue;
                }
                Judgement::Decided(outcome) => outcome,
            };
            return Ok(Claimed::Other(outcome));
        }
        Err(StoreError::Backend {
            context: self.table.describe(),
            message: format!("the claim on {fingerprint} kept changing hands; try again"),
        })
    }

    /// Sets `update` on records that are newer versions of a contact known
    /// within the TTL, in request order, as the embedded store does.
    async fn note_versions(
        &self,
        requests: &[ClaimRequest<'_>],
        claimed: &mut [Option<Claimed>],
        expires: Millis,
        now: Millis,
    ) -> Result<Vec<bool>, StoreError> {
        let mut updates = vec![false; requests.len()];
        let mut per_contact: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut order = Vec::new();
        for (i, outcome) in claimed.iter().enumerate() {
            match outcome {
                Some(Claimed::New { inherited: Some(update) }) => updates[i] = *update,
                Some(Claimed::New { inherited: None }) if requests[i].last_update_millis.is_some() => {
                    let entry = per_contact.entry(requests[i].contact_id).or_default();
                    if entry.is_empty() {
                        order.push(requests[i].contact_id);
                    }
                    entry.push(i);
                }
                _ => {}
            }
        }
        // Collected first: a lazy `map` closure inside the stream trips the
        // compiler's `Send` check of the async-trait future.
        let mut notes = Vec::with_capacity(order.len());
        for contact in &order {
            let newest = per_contact[contact].iter().filter_map(|&i| requests[i].last_update_millis).max().unwrap_or(0);
            notes.push(self.table.note_version(contact, newest, expires, now));
        }
        let known: Vec<Option<Millis>> = stream::iter(notes).buffered(self.concurrency).try_collect().await?;
        for (contact, known) in order.iter().zip(known) {
            let mut latest = known;
            for &i in &per_contact[contact] {
                let version = requests[i].last_update_millis.unwrap_or(0);
                let newer = latest.is_none_or(|seen| version > seen);
                updates[i] = latest.is_some() && newer;
                if newer {
                    latest = Some(version);
                }
            }
        }
        Ok(updates)
    }
}

impl<T: ClaimTable> Inner<T> {
    pub(super) async fn stale_batches(&self) -> Result<Vec<StaleBatch>, StoreError> {
        let mut stale = Vec::new();
        let mut wait_until = 0;
        for token in self.table.owner_tokens(&self.owner).await? {
            match self.table.get_batch(token).await? {
                None => self.table.forget_token(&self.owner, token).await?,
                Some(batch) if batch.status == BatchStatus::InProgress && batch.session != self.session => {
                    wait_until = wait_until.max(batch.lease_until);
                    stale.push(StaleBatch {
                        token: FencingToken(token),
                        days: batch.days.iter().map(|d| UtcDay(*d)).collect(),
                    });
                }
                Some(batch) if batch.status != BatchStatus::InProgress => {
                    // Finished, but the crash came before its token left the set.
                    self.table.forget_token(&self.owner, token).await?
                }
                Some(_) => {}
            }
        }
        // Nothing proves the earlier run of this host is gone but its lease:
        // settling a live run's batch could judge a file it is still writing.
        let now = self.now();
        if wait_until > now {
            tracing::warn!(
                "{}: waiting {} ms for the lease of {} unfinished batches of an earlier run of this host",
                self.table.describe(),
                wait_until - now,
                stale.len()
            );
            tokio::time::sleep(Duration::from_millis((wait_until - now) as u64)).await;
        }
        Ok(stale)
    }

    pub(super) async fn settle_batch(&self, token: FencingToken, durable_days: &[UtcDay]) -> Result<(), StoreError> {
        let days: Vec<i32> = durable_days.iter().map(|d| d.0).collect();
        // Not in progress any more: someone settled it first; nothing to do.
        self.table.finish_batch(token.0, &self.owner, Expect::InProgress, BatchStatus::Settled, &days).await?;
        Ok(())
    }

    pub(super) async fn claim_batch(&self, batch: &ClaimBatch<'_>) -> Result<BatchClaim, StoreError> {
        let now = self.now();
        let expires = now + self.settings.ttl.as_millis() as Millis;
        let token = self.table.next_token().await?;
        let days: BTreeSet<i32> = batch.requests.iter().map(|r| r.day.0).collect();
        // Written before any claim names it, with every partition the batch
        // might write: recovery judges each one by its file.
        self.table
            .put_batch(
                token,
                &BatchItem {
                    status: BatchStatus::InProgress,
                    owner: self.owner.clone(),
                    session: self.session.clone(),
                    lease_until: now + self.lease_millis(),
                    expires: expires + self.lease_millis(),
                    days: days.into_iter().collect(),
                    durable_days: Vec::new(),
                    inputs: batch.inputs.to_vec(),
                },
            )
            .await?;

        // Copies within the batch are settled here, so the first copy is the
        // one claimed whatever order the concurrent writes finish in.
        let mut first_seen: HashMap<Fingerprint, usize> = HashMap::new();
        let mut claimed: Vec<Option<Claimed>> = Vec::with_capacity(batch.requests.len());
        let mut to_claim = Vec::new();
        for (i, request) in batch.requests.iter().enumerate() {
            if first_seen.insert(request.fingerprint, i).is_some() {
                claimed.push(Some(Claimed::Other(ClaimOutcome::Duplicate)));
            } else {
                claimed.push(None);
                to_claim.push(i);
            }
        }
        let mut claims = Vec::with_capacity(to_claim.len());
        for i in to_claim {
            let request = &batch.requests[i];
            claims.push(async move { self.claim_one(token, request, now, expires).await.map(|c| (i, c)) });
        }
        // Unordered: each result carries its request's index, and an ordered
        // buffer would hold free slots behind its oldest, slowest claim.
        let results: Vec<(usize, Claimed)> =
            stream::iter(claims).buffer_unordered(self.concurrency).try_collect().await?;
        let any_claimed = results.iter().any(|(_, c)| matches!(c, Claimed::New { .. }));
        for (i, result) in results {
            claimed[i] = Some(result);
        }
        let updates = self.note_versions(batch.requests, &mut claimed, expires, now).await?;
        if !any_claimed {
            // Nothing for the sink: done now, so recovery never meets it.
            self.table
                .finish_batch(token, &self.owner, Expect::OwnedBy(&self.session), BatchStatus::Completed, &[])
                .await?;
        }
        let outcomes = claimed
            .into_iter()
            .zip(updates)
            .map(|(c, update)| match c {
                Some(Claimed::New { .. }) => ClaimOutcome::Claimed { update },
                Some(Claimed::Other(outcome)) => outcome,
                None => ClaimOutcome::Duplicate,
            })
            .collect();
        Ok(BatchClaim { token: FencingToken(token), outcomes })
    }

    pub(super) async fn complete_batch(&self, token: FencingToken) -> Result<(), StoreError> {
        let done = self
            .table
            .finish_batch(token.0, &self.owner, Expect::OwnedBy(&self.session), BatchStatus::Completed, &[])
            .await?;
        if done {
            Ok(())
        } else {
            Err(StoreError::Fenced(token))
        }
    }

    pub(super) async fn release_batch(&self, token: FencingToken) -> Result<(), StoreError> {
        let done = self
            .table
            .finish_batch(token.0, &self.owner, Expect::OwnedBy(&self.session), BatchStatus::Settled, &[])
            .await?;
        if done {
            Ok(())
        } else {
            Err(StoreError::Fenced(token))
        }
    }
}

#[async_trait::async_trait]
impl<T: ClaimTable + 'static> DedupStore for SharedStore<T> {
    fn describe(&self) -> String {
        self.inner.table.describe()
    }

    fn instance_id(&self) -> &str {
        &self.inner.instance_id
    }

    async fn stale_batches(&self) -> Result<Vec<StaleBatch>, StoreError> {
        let inner = self.inner.clone();
        self.io.run(async move { inner.stale_batches().await }).await
    }

    async fn settle_batch(&self, token: FencingToken, durable_days: &[UtcDay]) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        let days = durable_days.to_vec();
        self.io.run(async move { inner.settle_batch(token, &days).await }).await
    }

    async fn claim_batch(&self, batch: &ClaimBatch<'_>) -> Result<BatchClaim, StoreError> {
        let inner = self.inner.clone();
        let inputs = batch.inputs.to_vec();
        let owned: Vec<OwnedRequest> = batch
            .requests
            .iter()
            .map(|r| OwnedRequest {
                fingerprint: r.fingerprint,
                contact_id: r.contact_id.to_string(),
                last_update_millis: r.last_update_millis,
                day: r.day,
                input: r.input,
                position: r.position,
            })
            .collect();
        self.io
            .run(async move {
                let requests: Vec<ClaimRequest<'_>> = owned
                    .iter()
                    .map(|r| ClaimRequest {
                        fingerprint: r.fingerprint,
                        contact_id: &r.contact_id,
                        last_update_millis: r.last_update_millis,
                        day: r.day,
                        input: r.input,
                        position: r.position,
                    })
                    .collect();
                inner.claim_batch(&ClaimBatch { inputs: &inputs, requests: &requests }).await
            })
            .await
    }

    async fn complete_batch(&self, token: FencingToken) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        self.io.run(async move { inner.complete_batch(token).await }).await
    }

    async fn release_batch(&self, token: FencingToken) -> Result<(), StoreError> {
        let inner = self.inner.clone();
        self.io.run(async move { inner.release_batch(token).await }).await
    }

    async fn sweep(&self) -> Result<u64, StoreError> {
        // DynamoDB's TTL and Redis's expiry delete entries; until they do,
        // every condition already treats an expired entry as absent.
        Ok(0)
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Every write was acknowledged by the server before it returned.
        Ok(())
    }
}

/// This host and its sink: `<hostname>:<sink>`. A batch's records can only
/// be judged durable by a process that sees the sink they went to, so this
/// is whose unfinished batches a run settles at start.
pub fn host_identity(sink: &str) -> String {
    let mut name = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or truncates, and we stop at the first NUL either way.
    let host = if unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0 {
        let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
        String::from_utf8_lossy(&name[..end]).into_owned()
    } else {
        "localhost".to_string()
    };
    format!("{host}:{sink}")
}

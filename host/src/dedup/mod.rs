//! The claim protocol and its stores.
//!
//! # Protocol
//!
//! Records are deduplicated in batches (`--batch-size`, one store transaction
//! per batch). For each batch the pipeline:
//!
//! 1. **Claims** every fingerprint in one atomic conditional write
//!    ([`DedupStore::claim_batch`]). The batch gets a fresh, strictly
//!    increasing fencing token. A fingerprint is *absent* when the store has
//!    no entry, or its entry is past its TTL (it counts as absent even before
//!    a sweep deletes it), or its entry belongs to a batch that was settled
//!    without that record reaching the sink. An absent fingerprint gets a
//!    claim entry naming the batch (token), the record's sink partition (its
//!    UTC day), its source (input name and position) and an expiry of
//!    now + TTL. The batch entry records status *in progress*, the owner, a
//!    lease (now + `--lease`), the inputs and the partitions it writes. The
//!    transaction is durable before the call returns.
//! 2. **Writes** the claimed records to the sink under a name derived from the
//!    store instance and the token (`part-<store>-<token>.ndjson` in each day
//!    partition). The directory sink writes to a hidden temporary file,
//!    fsyncs it, renames it into place and fsyncs the directory, so a batch's
//!    file in one partition is either complete and durable or invisible.
//!    Writing the same batch again produces the same file: the sink write is
//!    idempotent.
//! 3. **Completes** the batch under its token ([`DedupStore::complete_batch`]).
//!    A completion under a token that no longer owns the batch fails with
//!    [`StoreError::Fenced`]. From then on its fingerprints are duplicates
//!    until their TTL runs out.
//!
//! # Crashes
//!
//! A batch left *in progress* by a process that died (the embedded store
//! knows for certain: its file lock proves the previous owner is gone;
//! shared stores use the lease) is *stale*. Before claiming anything, the
//! pipeline asks the store for stale batches ([`DedupStore::stale_batches`]),
//! asks the sink which of each batch's partition files exist, and
//! [`settles`](DedupStore::settle_batch) the batch with that list:
//!
//! * crash after claim, before the sink rename: no file exists, the claims
//!   count as absent, and the replayed records are claimed and written again
//!   by a new batch: nothing is lost;
//! * crash after the rename, before completion: the file exists, its records
//!   count as duplicates: nothing is written twice;
//! * crash between the renames of one batch's partitions: each partition is
//!   judged on its own file, since the claim records the record's partition.
//!
//! Because the claim names the output file *before* it is written, a replay
//! never has to guess whether an earlier attempt reached the sink.
//!
//! # Shared stores (DynamoDB, Redis)
//!
//! When several hosts share one store ([`SharedStore`] over a
//! [`ClaimTable`]: [`DynamoDbStore`], [`RedisStore`]), there is no file lock
//! and no multi-item transaction, so the protocol is built from single-item
//! conditional writes:
//!
//! * **Tokens** come from an atomic counter (DynamoDB `UpdateItem ADD`,
//!   Redis `INCR`), strictly increasing across all hosts; sink file names
//!   carry them, so hosts never write the same name.
//! * **The batch item** (`batch#<token>`: status, owner, session, lease,
//!   days) is written *before* any claim names it, and its token is added
//!   first to the owner's set of unfinished batches, so a crash at any point
//!   leaves a batch its host can find.
//! * **A claim** is one conditional write per record (DynamoDB `PutItem`
//!   with `attribute_not_exists(id) OR expires_at <= :now`, Redis
//!   `SET NX GET PX ttl`), many in flight at once (`--store-concurrency`). A
//!   failed condition returns the claim that stands; its batch decides: a
//!   completed batch, or a settled one whose file for that day exists, makes
//!   the record a duplicate; a settled batch without that file lets the
//!   record be taken over by a write conditioned on the dead claim's token;
//!   an in-progress batch of another process makes the record *in progress
//!   elsewhere*: it is neither emitted nor dropped, and the pipeline claims it
//!   again after the lease, when it has usually become a duplicate.
//! * **Completion, release and settling** change only the batch item,
//!   conditioned on it being in progress (and, for completion and release, on
//!   the session that claimed it: the fencing check). One write per batch, not
//!   per record.
//! * **Recovery.** Only a process that sees a batch's sink can tell which of
//!   its files exist, so each host settles its own: the owner is the host
//!   identity `<hostname>:<sink>` ([`host_identity`]). At start a run lists
//!   its identity's unfinished batches, waits until their lease has run out
//!   (nothing else proves the earlier run is gone), and settles them against
//!   its sink as the embedded store does. A claim never lapses into another
//!   host's hands by time alone: that would re-emit a record whose owner died
//!   after writing it but before completing. A host that never comes back
//!   leaves its in-flight records waiting, and other hosts say so after three
//!   leases instead of guessing.
//! * **Expiry.** Every condition treats an entry past its TTL as absent;
//!   DynamoDB's TTL deletion (days late, or never on servers without it) and
//!   Redis's expiry only reclaim space.
//!
//! # Updates
//!
//! Alongside the claims, the store keeps per `ContactId` the latest
//! `LastUpdateTimestamp` it has claimed. A new fingerprint for a known
//! contact with a newer timestamp is reported as an update (it is still a
//! unique record and is written); the daily figures then use the latest
//! version.

mod claim_index;
mod claim_table;
mod clock;
mod dynamodb_store;
mod embedded_store;
mod protocol;
mod redis_store;
mod shared_store;
mod store_url;

use std::sync::Arc;
use std::time::Duration;

pub use claim_table::{BatchItem, ClaimItem, ClaimTable, Expect};
pub use clock::{Clock, ManualClock, SystemClock};
pub use dynamodb_store::{DynamoDbStore, TableInit};
pub use embedded_store::EmbeddedStore;
pub use protocol::{BatchStatus, TakeoverPolicy};
pub use redis_store::RedisStore;
pub use shared_store::{host_identity, SharedStore, DEFAULT_CONCURRENCY};
pub use store_url::StoreUrl;

use crate::ctr::{Fingerprint, UtcDay};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Identifies one batch's claims and its output; strictly increasing per
/// store, so a stale owner's token never matches a newer claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct FencingToken(pub u64);

/// One record to claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub fingerprint: Fingerprint,
    pub contact_id: &'a str,
    pub last_update_millis: Option<Millis>,
    /// The sink partition the record will be written to.
    pub day: UtcDay,
    /// Index into [`ClaimBatch::inputs`].
    pub input: u32,
    /// Line number, array index or Firehose record index within the input.
    pub position: u64,
}

/// A batch of records claimed in one atomic write.
#[derive(Debug, Clone)]
pub struct ClaimBatch<'a> {
    /// Names of the inputs the batch's records come from (the source identity).
    pub inputs: &'a [String],
    pub requests: &'a [ClaimRequest<'a>],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The record is new: write it, then complete the batch.
    Claimed { update: bool },
    /// Seen within the TTL (completed, durable in the sink, or earlier in this batch).
    Duplicate,
    /// Another live owner holds the claim; retry after its lease runs out.
    InProgressElsewhere { lease_until: Millis },
}

#[derive(Debug, Clone)]
pub struct BatchClaim {
    pub token: FencingToken,
    /// One outcome per request, in request order.
    pub outcomes: Vec<ClaimOutcome>,
}

/// A batch whose owner died between claim and completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleBatch {
    pub token: FencingToken,
    /// The partitions the batch's claimed records were to be written to.
    pub days: Vec<UtcDay>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the dedup store {path} is open in another process (is another `callqa ingest` running on it?); wait for it to finish or pass a different --store")]
    InUse { path: String },
    #[error("batch {0:?} is no longer owned by this process (fenced); its records will be reclaimed")]
    Fenced(FencingToken),
    #[error("dedup store {context}: {message}")]
    Backend { context: String, message: String },
}

impl StoreError {
    pub(crate) fn backend(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        StoreError::Backend { context: context.into(), message: err.to_string() }
    }
}

/// How long entries live and claims stay exclusive, and what time it is.
#[derive(Clone)]
pub struct StoreSettings {
    /// How long a fingerprint is remembered (the dedup window).
    pub ttl: Duration,
    /// How long a claim stays exclusive to its owner before others may take it over.
    pub lease: Duration,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings").field("ttl", &self.ttl).field("lease", &self.lease).finish()
    }
}

/// A fingerprint store implementing the claim protocol above. Object safe,
/// so the pipeline holds a `Box<dyn DedupStore>` whatever the backend.
#[async_trait::async_trait]
pub trait DedupStore: Send + Sync {
    /// A short description for logs and the summary, e.g. `file:/var/lib/callqa/dedup.redb`.
    fn describe(&self) -> String;

    /// A stable identifier of this store, used in sink file names so that two
    /// stores writing into one sink never produce the same name.
    fn instance_id(&self) -> &str;

    /// Batches left in progress by owners that are gone or whose lease ran out.
    async fn stale_batches(&self) -> Result<Vec<StaleBatch>, StoreError>;

    /// Resolves a stale batch: its records in `durable_days` reached the sink
    /// and become duplicates; the others become absent and will be reclaimed.
    async fn settle_batch(&self, token: FencingToken, durable_days: &[UtcDay]) -> Result<(), StoreError>;

    /// Claims every request in one atomic write (see the module docs).
    async fn claim_batch(&self, batch: &ClaimBatch<'_>) -> Result<BatchClaim, StoreError>;

    /// Marks the batch done after its records are durable in the sink.
    async fn complete_batch(&self, token: FencingToken) -> Result<(), StoreError>;

    /// Gives the batch's claims up (the sink write failed), so a retry can
    /// claim them at once instead of waiting for the lease.
    async fn release_batch(&self, token: FencingToken) -> Result<(), StoreError>;

    /// Deletes entries past their TTL; returns how many were removed.
    async fn sweep(&self) -> Result<u64, StoreError>;

    /// Makes everything written so far durable and lets the store go.
    async fn close(&self) -> Result<(), StoreError>;
}

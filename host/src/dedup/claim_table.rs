//! What a shared store's backend must provide: a handful of single-item
//! atomic operations. [`SharedStore`](super::SharedStore) builds the claim
//! protocol on top of them, so DynamoDB and Redis follow the same rules.

use super::protocol::BatchStatus;
use super::{Millis, StoreError};

/// A fingerprint's claim as stored: which batch owns it and where its record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimItem {
    pub token: u64,
    /// The record's sink partition (UTC day number).
    pub day: i32,
    /// Whether the record was a newer version of a known contact.
    pub update: bool,
    /// Index into the owning batch's inputs, and the position in that input.
    pub input: u32,
    pub position: u64,
    pub expires: Millis,
}

/// The batch item (`batch#<token>`): the unit a host completes, and the unit
/// recovery settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    pub status: BatchStatus,
    /// The host identity whose sink receives the batch's records: only a
    /// process with the same identity can tell whether they reached it.
    pub owner: String,
    /// The process (one `callqa ingest` run) that claimed the batch.
    pub session: String,
    pub lease_until: Millis,
    pub expires: Millis,
    pub days: Vec<i32>,
    pub durable_days: Vec<i32>,
    pub inputs: Vec<String>,
}

/// What a status change must find for it to apply.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// In progress and claimed by this session (completion and release: the fencing check).
    OwnedBy(&'a str),
    /// In progress, whoever claimed it (settling a dead owner's batch).
    InProgress,
}

/// Single-item atomic operations of a shared backend. Every write is one
/// conditional request; none reads first and writes after.
#[async_trait::async_trait]
pub trait ClaimTable: Send + Sync {
    /// `dynamodb://TABLE` or `redis://HOST:PORT/DB`, for logs and errors.
    fn describe(&self) -> String;

    /// The store's identifier, created on first use and shared by every host.
    async fn store_id(&self) -> Result<String, StoreError>;

    /// The next fencing token from the store's atomic counter.
    async fn next_token(&self) -> Result<u64, StoreError>;

    /// Records `token` in the owner's set of unfinished batches, then writes
    /// the batch item. In that order: a crash between the two leaves a token
    /// without a batch, which recovery drops, never a batch nobody can find.
    async fn put_batch(&self, token: u64, batch: &BatchItem) -> Result<(), StoreError>;

    async fn get_batch(&self, token: u64) -> Result<Option<BatchItem>, StoreError>;

    /// Sets the status (and durable days) when `expect` holds, and then drops
    /// the token from the owner's set. False when `expect` did not hold.
    async fn finish_batch(
        &self,
        token: u64,
        owner: &str,
        expect: Expect<'_>,
        status: BatchStatus,
        durable_days: &[i32],
    ) -> Result<bool, StoreError>;

    /// Tokens of the owner's unfinished batches.
    async fn owner_tokens(&self, owner: &str) -> Result<Vec<u64>, StoreError>;

    /// Drops a token whose batch item was never written.
    async fn forget_token(&self, owner: &str, token: u64) -> Result<(), StoreError>;

    /// Writes `claim` when the fingerprint is absent or expired at `now`, or
    /// (with `replace = Some(t)`) when its current claim belongs to batch `t`.
    /// Returns `None` when written, else the claim that stands.
    async fn claim(
        &self,
        fingerprint: &str,
        claim: &ClaimItem,
        replace: Option<u64>,
        now: Millis,
    ) -> Result<Option<ClaimItem>, StoreError>;

    /// Records `version` as the contact's latest when it is newer (or the
    /// entry is absent or expired), and returns the latest version known
    /// before, if unexpired.
    async fn note_version(
        &self,
        contact_id: &str,
        version: Millis,
        expires: Millis,
        now: Millis,
    ) -> Result<Option<Millis>, StoreError>;
}

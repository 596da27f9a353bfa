//! What every request handler shares.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::config::ServeConfig;
use super::ingestor::{IngestReport, Ingestor};
use super::live_rules::LiveRules;
use super::metrics::Metrics;
use super::realtime_qa::RealtimeQa;
use super::request_body::BodyBudget;
use crate::sources::RawRecord;

pub struct AppState {
    pub config: ServeConfig,
    pub rules: Arc<LiveRules>,
    pub ingestor: Ingestor,
    pub realtime: Arc<RealtimeQa>,
    /// The sheet store, when `--sheets` names one: what `/v1/sheets` reads.
    pub sheet_store: Option<Arc<crate::qa::sheet_store::SheetStore>>,
    pub metrics: Arc<Metrics>,
    /// Bounds evaluations in flight (HTTP and real-time together) below the
    /// engine's instance pool.
    pub evaluations: Arc<Semaphore>,
    /// The machine tokens, re-read when `callqa tokens` changes them.
    pub tokens: Arc<super::token_store::TokenStore>,
    /// The people, re-read when `callqa users` changes them.
    pub users: Arc<super::user_store::UserStore>,
    /// Signs and checks session cookies.
    pub sessions: Arc<super::web_session::WebSessions>,
    /// Login throttling and the password checks in flight.
    pub login: super::login_routes::LoginState,
    /// Request bodies held at once, and the time to send one.
    pub bodies: BodyBudget,
    /// Firehose HTTP deliveries answered 200, by request id.
    pub delivered: RecentAnswers<()>,
    /// Firehose transformation responses, by invocation id.
    pub transformed: RecentAnswers<Arc<crate::sources::FirehoseResponse>>,
    pub started: Instant,
}

impl AppState {
    /// Dedups and stores one request's records, and offers the stored ones
    /// to real-time QA. Runs to its end even when the client goes away:
    /// stopped between claim and completion, the batch would stay in
    /// progress under this process's session, and the sender's retry would
    /// find its records "duplicates" of records never written.
    pub async fn ingest(self: &Arc<Self>, input: String, records: Vec<RawRecord>) -> anyhow::Result<IngestReport> {
        let app = self.clone();
        tokio::spawn(async move {
            let report = app.ingestor.ingest(&input, records).await?;
            app.realtime.offer(&report.stored).await;
            Ok(report)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the ingestion task failed: {e}"))?
    }
}

/// The longest request or invocation id kept: Firehose's are UUIDs; a
/// longer one is refused rather than remembered for a whole TTL.
pub const MAX_REQUEST_ID_BYTES: usize = 256;

/// What a request carried, for telling a replay from a reused id: SHA-256
/// over its records.
pub type ContentDigest = [u8; 32];

/// What an id was answered before.
pub enum Recall<V> {
    /// Not answered within the TTL: process the request.
    New,
    /// The same id with the same records: the same answer again.
    Replay(V),
    /// The same id with other records. Answering the earlier answer would
    /// drop these records unseen; the client must be told.
    Conflict,
}

/// The answers by id, and the ids oldest first.
type AnswersByAge<V> = (HashMap<String, (Instant, ContentDigest, V)>, VecDeque<String>);

/// Answers given recently, by request id and content, so a request
/// Firehose sends again because our answer got lost gets the same answer
/// instead of being processed anew. Bounded in count and age; ids are
/// bounded in length by the callers ([`MAX_REQUEST_ID_BYTES`]).
pub struct RecentAnswers<V> {
    inner: Mutex<AnswersByAge<V>>,
    capacity: usize,
    ttl: Duration,
}

impl<V: Clone> RecentAnswers<V> {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        RecentAnswers { inner: Mutex::new((HashMap::new(), VecDeque::new())), capacity, ttl }
    }

    pub fn recall(&self, id: &str, digest: &ContentDigest) -> Recall<V> {
        let inner = self.inner.lock();
        match inner.0.get(id).filter(|(at, _, _)| at.elapsed() < self.ttl) {
            None => Recall::New,
            Some((_, seen, answer)) if seen == digest => Recall::Replay(answer.clone()),
            Some(_) => Recall::Conflict,
        }
    }

    pub fn remember(&self, id: String, digest: ContentDigest, value: V) {
        let mut inner = self.inner.lock();
        let (map, order) = &mut *inner;
        if map.insert(id.clone(), (Instant::now(), digest, value)).is_none() {
            order.push_back(id);
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

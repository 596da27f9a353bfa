//! What every request handler shares.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::config::ServeConfig;
use super::ingestor::Ingestor;
use super::live_rules::LiveRules;
use super::metrics::Metrics;
use super::realtime_qa::RealtimeQa;

pub struct AppState {
    pub config: ServeConfig,
    pub rules: Arc<LiveRules>,
    pub ingestor: Ingestor,
    pub realtime: Arc<RealtimeQa>,
    pub metrics: Arc<Metrics>,
    /// Bounds evaluations in flight (HTTP and real-time together) below the
    /// engine's instance pool.
    pub evaluations: Arc<Semaphore>,
    /// Firehose HTTP deliveries answered 200, by request id.
    pub delivered: RecentAnswers<()>,
    /// Firehose transformation responses, by invocation id.
    pub transformed: RecentAnswers<Arc<crate::sources::FirehoseResponse>>,
    pub started: Instant,
}

/// The answers by id, and the ids oldest first.
type AnswersByAge<V> = (HashMap<String, (Instant, V)>, VecDeque<String>);

/// Answers given recently, by request id, so a request Firehose sends
/// again because our answer got lost gets the same answer instead of
/// being processed anew. Bounded in count and age.
pub struct RecentAnswers<V> {
    inner: Mutex<AnswersByAge<V>>,
    capacity: usize,
    ttl: Duration,
}

impl<V: Clone> RecentAnswers<V> {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        RecentAnswers { inner: Mutex::new((HashMap::new(), VecDeque::new())), capacity, ttl }
    }

    pub fn get(&self, id: &str) -> Option<V> {
        let inner = self.inner.lock();
        inner.0.get(id).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v.clone())
    }

    pub fn remember(&self, id: String, value: V) {
        let mut inner = self.inner.lock();
        let (map, order) = &mut *inner;
        if map.insert(id.clone(), (Instant::now(), value)).is_none() {
            order.push_back(id);
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

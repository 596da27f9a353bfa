//! Delivering the outbox: a task of `serve` that claims due alerts, posts
//! each signed to its webhook, and marks it delivered on a 2xx or schedules
//! the next attempt (exponential backoff with full jitter, capped), for as
//! long as it takes. At least once: a receiver that answered 2xx but whose
//! answer was lost gets the event again, with the same `Callqa-Event-Id`.
//!
//! The store's calls block (PostgreSQL's client runs its own runtime), so
//! they run in `spawn_blocking`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, USER_AGENT};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::signature::{sign, ATTEMPT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER};
use super::webhook::{Webhook, WebhookSettings};
use crate::http_client::{http_client, HttpClient};
use crate::qa::sheet_store::outbox::OutboxRow;
use crate::qa::sheet_store::SheetStore;
use crate::serve::metrics::{Metrics, WebhookLabel};

/// Alerts claimed at once; a full batch is followed by the next at once.
const BATCH: usize = 32;
/// How often the outbox is looked at when nothing wakes delivery: the
/// granularity of retries.
const POLL: Duration = Duration::from_millis(500);
/// Delivered rows are kept this long (what was sent, when), then pruned.
const DELIVERED_RETENTION: chrono::Duration = chrono::Duration::days(30);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The most of an answer's body read (for the error message, and so the
/// connection can be reused).
const ANSWER_BYTES: usize = 16 << 10;

/// The running delivery task.
pub struct Delivery {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Delivery {
    /// Starts delivering `store`'s outbox to `settings.webhooks`; `wake`
    /// is notified when alerts are enqueued, so they go out at once.
    pub fn spawn(
        store: Arc<SheetStore>,
        settings: WebhookSettings,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Delivery> {
        let https = settings.webhooks.iter().find(|w| w.url.scheme_str() == Some("https"));
        let client = http_client(settings.timeout, https.map(|w| format!("webhook `{}`", w.name)).as_deref())?;
        for w in &settings.webhooks {
            // Every configured webhook has its series from the start.
            let label = WebhookLabel { webhook: w.name.clone() };
            metrics.alerts_delivered.get_or_create(&label).inc_by(0);
            metrics.alert_attempts_failed.get_or_create(&label).inc_by(0);
            metrics.alerts_pending.get_or_create(&label).set(0);
        }
        let (stop, stopped) = watch::channel(false);
        let worker = Worker {
            store,
            webhooks: settings.webhooks.iter().map(|w| (w.name.clone(), w.clone())).collect(),
            settings,
            client,
            metrics,
        };
        let task = tokio::spawn(worker.run(wake, stopped));
        Ok(Delivery { stop, task })
    }

    /// Lets attempts in flight finish (for at most `limit`), then stops.
    /// An attempt cut short stays claimed until its lease ends and is
    /// retried then, by this host after a restart or by another.
    pub async fn shutdown(self, limit: Duration) {
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(limit, self.task).await.is_err() {
            tracing::warn!("alert delivery did not finish within {limit:?}; stopping it");
            abort.abort();
        }
    }
}

/// The backoff ceiling after `failures` failed attempts: `initial`
/// doubled per failure after the first, capped at `max`; the delay is
/// drawn uniformly below it (full jitter), so receivers coming back are not
/// hit by every host's retries at once. `random` is a uniform u64.
pub fn backoff(failures: u32, initial: Duration, max: Duration, random: u64) -> Duration {
    // 2^31 times any sensible `initial` is past any sensible cap.
    let ceiling = initial.saturating_mul(1u32 << failures.saturating_sub(1).min(31)).min(max);
    let nanos = (u128::from(random) * ceiling.as_nanos()) >> 64;
    Duration::from_nanos(nanos as u64)
}

/// How one attempt ended.
enum Attempt {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
}

struct Worker {
    store: Arc<SheetStore>,
    webhooks: HashMap<String, Webhook>,
    settings: WebhookSettings,
    client: HttpClient,
    metrics: Arc<Metrics>,
}

impl Worker {
    async fn run(self, wake: Arc<Notify>, mut stopped: watch::Receiver<bool>) {
        let names: Vec<&str> = self.webhooks.keys().map(String::as_str).collect();
        tracing::info!(webhooks = ?names, store = %self.store.describe(), "alert delivery started");
        let this = Arc::new(self);
        this.warn_of_unknown_webhooks().await;
        let mut last_prune: Option<Instant> = None;
        while !*stopped.borrow() {
            let claimed = match this.claim().await {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!("cannot read the alert outbox (retrying): {err:#}");
                    Vec::new()
                }
            };
            let full = claimed.len() == BATCH;
            futures::future::join_all(claimed.into_iter().map(|row| this.clone().deliver(row))).await;
            this.update_pending().await;
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                this.prune().await;
                last_prune = Some(Instant::now());
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = stopped.changed() => {}
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
        tracing::info!("alert delivery stopped");
    }

    /// Runs a store call on a blocking thread.
    async fn blocking<R: Send + 'static>(
        &self,
        work: impl FnOnce(&SheetStore) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(&store)).await.context("a store task panicked")?
    }

    async fn claim(&self) -> anyhow::Result<Vec<OutboxRow>> {
        let names: Vec<String> = self.webhooks.keys().cloned().collect();
        // Long enough for an attempt to end before another host may start one.
        let lease = self.settings.timeout + Duration::from_secs(30);
        self.blocking(move |s| s.claim_due_alerts(Utc::now(), &names, BATCH, lease)).await
    }

    async fn deliver(self: Arc<Self>, row: OutboxRow) {
        let webhook = &self.webhooks[&row.webhook];
        let label = WebhookLabel { webhook: row.webhook.clone() };
        let attempt = row.attempts + 1;
        let (id, event) = (row.id, row.event_id.clone());
        let outcome = self.post(webhook, &row, attempt).await;
        let result = match outcome {
            Attempt::Delivered(status) => {
                let now = Utc::now();
                self.metrics.alerts_delivered.get_or_create(&label).inc();
                if let Ok(created) = DateTime::parse_from_rfc3339(&row.created_at) {
                    let waited = (now - created.with_timezone(&Utc)).to_std().unwrap_or_default();
                    self.metrics.alert_delivery_latency.get_or_create(&label).observe(waited.as_secs_f64());
                }
                tracing::info!(webhook = %row.webhook, event_id = %event, attempt, status, "alert delivered");
                self.blocking(move |s| s.mark_alert_delivered(id, status, now)).await
            }
            Attempt::Failed { status, error } => {
                self.metrics.alert_attempts_failed.get_or_create(&label).inc();
                let random = getrandom::u64().unwrap_or(u64::MAX / 2);
                let wait = backoff(attempt, self.settings.retry_initial, self.settings.retry_max, random);
                // `wait` is at most `retry_max` (a day at most): in range.
                let next = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::days(1));
                tracing::warn!(
                    webhook = %row.webhook, event_id = %event, attempt, status, retry_in_ms = wait.as_millis() as u64,
                    "alert delivery failed: {error}"
                );
                self.blocking(move |s| s.reschedule_alert(id, next, status, &error)).await
            }
        };
        if let Err(err) = result {
            // The row stays claimed until its lease ends, then is retried:
            // at worst delivered twice, never lost.
            tracing::warn!(webhook = %row.webhook, event_id = %event, "cannot record an alert attempt: {err:#}");
        }
    }

    async fn post(&self, webhook: &Webhook, row: &OutboxRow, attempt: u32) -> Attempt {
        let timestamp = Utc::now().timestamp();
        let request = hyper::Request::post(webhook.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("callqa/", env!("CARGO_PKG_VERSION")))
            .header(SIGNATURE_HEADER, sign(&webhook.secret, timestamp, row.payload.as_bytes()))
            .header(EVENT_ID_HEADER, &row.event_id)
            .header(ATTEMPT_HEADER, attempt)
            .body(Full::new(Bytes::from(row.payload.clone())));
        let request = match request {
            Ok(r) => r,
            Err(err) => return Attempt::Failed { status: None, error: format!("cannot build the request: {err}") },
        };
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            // Read (a bounded part of) the answer: its text explains a
            // refusal, and a drained connection goes back to the pool.
            let text = match Limited::new(response.into_body(), ANSWER_BYTES).collect().await {
                Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
                Err(_) => String::new(),
            };
            anyhow::Ok((status, text))
        };
        match tokio::time::timeout(self.settings.timeout, exchange).await {
            Err(_) => Attempt::Failed { status: None, error: format!("no answer within {:?}", self.settings.timeout) },
            // `{:#}`: hyper's message is often only "client error (Connect)"; its
            // causes say what happened.
            Ok(Err(err)) => Attempt::Failed { status: None, error: format!("{err:#}") },
            Ok(Ok((status, _))) if status.is_success() => Attempt::Delivered(status.as_u16()),
            Ok(Ok((status, text))) => {
                let mut excerpt: String = text.trim().chars().take(200).collect();
                if !excerpt.is_empty() {
                    excerpt = format!(": {excerpt}");
                }
                Attempt::Failed { status: Some(status.as_u16()), error: format!("HTTP {status}{excerpt}") }
            }
        }
    }

    async fn update_pending(&self) {
        match self.blocking(|s| s.pending_alerts()).await {
            Ok(pending) => {
                let pending: HashMap<String, u64> = pending.into_iter().collect();
                for name in self.webhooks.keys() {
                    let n = pending.get(name).copied().unwrap_or(0);
                    self.metrics.alerts_pending.get_or_create(&WebhookLabel { webhook: name.clone() }).set(n as i64);
                }
            }
            Err(err) => tracing::warn!("cannot count the pending alerts: {err:#}"),
        }
    }

    async fn prune(&self) {
        let before = Utc::now() - DELIVERED_RETENTION;
        match self.blocking(move |s| s.prune_delivered_alerts(before)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "forgot alerts delivered more than 30 days ago"),
            Err(err) => tracing::warn!("cannot prune delivered alerts: {err:#}"),
        }
    }

    /// Alerts owed to webhooks no longer configured wait in the outbox
    /// (delivered if the webhook returns); say so once.
    async fn warn_of_unknown_webhooks(&self) {
        if let Ok(pending) = self.blocking(|s| s.pending_alerts()).await {
            for (name, n) in pending.into_iter().filter(|(name, _)| !self.webhooks.contains_key(name)) {
                tracing::warn!(webhook = %name, pending = n, "alerts are owed to a webhook the webhooks file no longer has; they wait in the outbox");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_its_ceiling_up_to_the_cap_with_full_jitter() {
        let (initial, max) = (Duration::from_secs(1), Duration::from_secs(600));
        let top = u64::MAX;
        let ceiling = |failures| backoff(failures, initial, max, top);
        // The top of the draw is just under the ceiling.
        assert!(ceiling(1) <= initial && ceiling(1) > Duration::from_millis(999));
        assert!(ceiling(2) <= Duration::from_secs(2) && ceiling(2) > Duration::from_millis(1999));
        assert!(ceiling(5) <= Duration::from_secs(16) && ceiling(5) > Duration::from_millis(15_999));
        assert!(ceiling(11) <= max && ceiling(11) > Duration::from_millis(599_999));
        assert!(ceiling(u32::MAX) <= max && ceiling(u32::MAX) > Duration::from_millis(599_999));
        assert_eq!(backoff(7, initial, max, 0), Duration::ZERO);
        let half = backoff(3, initial, max, u64::MAX / 2);
        assert!(half > Duration::from_millis(1999) && half <= Duration::from_secs(2), "{half:?}");
    }
}

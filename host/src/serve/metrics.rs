//! What the service did, for `GET /metrics` (OpenMetrics text, which
//! Prometheus scrapes). Counters only grow; per-rule series are labelled by
//! the rule id on the sheet.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::qa::{ItemStatus, QaSheet};
use crate::rules::Ruleset;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleOutcome {
    pub rule: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

/// A Kinesis shard this host reads or read.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabel {
    pub shard: String,
}

/// An alert webhook, by its name in the webhooks file.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabel {
    pub webhook: String,
}

fn alert_latency_histogram() -> Histogram {
    // 10 ms .. ~11 min: a retried alert waits up to the retry cap.
    Histogram::new(exponential_buckets(0.01, 2.0, 17))
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~1.6 s
    Histogram::new(exponential_buckets(0.00005, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    pub records_read: Counter,
    pub records_unique: Counter,
    pub records_duplicate: Counter,
    pub records_update: Counter,
    pub records_dead_lettered: Counter,
    pub claim_latency: Histogram,
    pub firehose_replays: Counter,
    pub evaluations: Family<RuleOutcome, Counter>,
    pub evaluation_latency: HistogramFamily<RuleLabel>,
    pub fuel_used: Family<RuleLabel, Counter>,
    pub sheets: Family<SourceLabel, Counter>,
    pub reloads: Family<ResultLabel, Counter>,
    pub refusals: Counter,
    pub quarantines: Family<RuleLabel, Counter>,
    pub quarantined: Family<RuleLabel, Gauge>,
    pub sessions_pending: Gauge,
    /// Shadow rules against the active rules they shadow.
    pub shadow: super::shadow_report::ShadowReport,
    pub http_requests: Family<RouteLabels, Counter>,
    pub alerts_delivered: Family<WebhookLabel, Counter>,
    pub alert_attempts_failed: Family<WebhookLabel, Counter>,
    pub alerts_pending: Family<WebhookLabel, Gauge>,
    pub alert_delivery_latency: HistogramFamily<WebhookLabel>,
    pub shard_millis_behind: Family<ShardLabel, Gauge>,
    pub shard_records: Family<ShardLabel, Gauge>,
    pub leases_held: Gauge,
    /// The `--kinesis` reader's progress, read at each scrape.
    stream: std::sync::OnceLock<crate::ingest::kinesis::StreamProgress>,
    /// Quarantines already counted, per rule id and ruleset generation:
    /// health counts restart with a new module, the counter must not.
    seen_quarantines: Mutex<HashMap<(String, u64), u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("callqa");
        let m = Metrics {
            records_read: Counter::default(),
            records_unique: Counter::default(),
            records_duplicate: Counter::default(),
            records_update: Counter::default(),
            records_dead_lettered: Counter::default(),
            claim_latency: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
            firehose_replays: Counter::default(),
            evaluations: Family::default(),
            evaluation_latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            fuel_used: Family::default(),
            sheets: Family::default(),
            reloads: Family::default(),
            refusals: Counter::default(),
            quarantines: Family::default(),
            quarantined: Family::default(),
            sessions_pending: Gauge::default(),
            shadow: Default::default(),
            http_requests: Family::default(),
            alerts_delivered: Family::default(),
            alert_attempts_failed: Family::default(),
            alerts_pending: Family::default(),
            alert_delivery_latency: Family::new_with_constructor(alert_latency_histogram as fn() -> Histogram),
            shard_millis_behind: Family::default(),
            shard_records: Family::default(),
            leases_held: Gauge::default(),
            stream: std::sync::OnceLock::new(),
            seen_quarantines: Mutex::new(HashMap::new()),
            registry: Registry::default(),
        };
        registry.register("records_read", "Contact records received", m.records_read.clone());
        registry.register(
            "records_unique",
            "Contact records stored (first time seen, updates included)",
            m.records_unique.clone(),
        );
        registry.register("records_duplicate", "Contact records dropped as duplicates", m.records_duplicate.clone());
        registry.register(
            "records_update",
            "Stored records that are newer versions of a known contact",
            m.records_update.clone(),
        );
        registry.register(
            "records_dead_lettered",
            "Unusable contact records sent to the dead letters",
            m.records_dead_lettered.clone(),
        );
        registry.register(
            "claim_latency_seconds",
            "Time to claim one batch in the dedup store",
            m.claim_latency.clone(),
        );
        registry.register(
            "firehose_replays",
            "Firehose requests answered from the request-id memory",
            m.firehose_replays.clone(),
        );
        registry.register("evaluations", "Rule evaluations by rule and outcome", m.evaluations.clone());
        registry.register(
            "evaluation_latency_seconds",
            "Time of one rule evaluation in its sandbox",
            m.evaluation_latency.clone(),
        );
        registry.register("fuel_used", "Fuel used by rule evaluations", m.fuel_used.clone());
        registry.register("sheets", "QA sheets produced, by source (http, realtime)", m.sheets.clone());
        registry.register("rules_reloads", "Rule reloads by result (applied, refused, unchanged)", m.reloads.clone());
        registry.register("rules_refusals", "Rule changes refused", m.refusals.clone());
        registry.register("quarantines", "Times a rule was put in quarantine", m.quarantines.clone());
        registry.register("rule_quarantined", "1 while the rule is in quarantine", m.quarantined.clone());
        registry.register(
            "sessions_pending",
            "Sessions waiting to be complete before real-time QA",
            m.sessions_pending.clone(),
        );
        registry.register(
            "shadow_items",
            "Items of shadow rules, by the active rule they shadow and whether their outcomes agree",
            m.shadow.items(),
        );
        registry.register("http_requests", "HTTP requests by route and status", m.http_requests.clone());
        registry.register("alerts_delivered", "Alerts a webhook accepted (2xx)", m.alerts_delivered.clone());
        registry.register(
            "alert_attempts_failed",
            "Alert deliveries that failed (no answer or not 2xx) and will be retried",
            m.alert_attempts_failed.clone(),
        );
        registry.register("alerts_pending", "Alerts in the outbox not yet delivered", m.alerts_pending.clone());
        registry.register(
            "alert_delivery_latency_seconds",
            "Time from a sheet's alert being enqueued to its delivery, retries included",
            m.alert_delivery_latency.clone(),
        );
        registry.register(
            "kinesis_shard_millis_behind",
            "How far this host's reading of a shard trails its newest record (MillisBehindLatest)",
            m.shard_millis_behind.clone(),
        );
        registry.register(
            "kinesis_shard_records",
            "Records this host read from a shard since it started",
            m.shard_records.clone(),
        );
        registry.register("kinesis_leases_held", "Shard leases this host holds", m.leases_held.clone());
        Metrics { registry, ..m }
    }

    /// Reports the `--kinesis` reader's progress from now on.
    pub fn watch_stream(&self, progress: crate::ingest::kinesis::StreamProgress) {
        let _ = self.stream.set(progress);
    }

    pub fn record_sheet(&self, sheet: &QaSheet, source: &str) {
        self.sheets.get_or_create(&SourceLabel { source: source.into() }).inc();
        for item in &sheet.items {
            let outcome = match item.outcome {
                ItemStatus::Pass => "pass",
                ItemStatus::Fail => "fail",
                ItemStatus::NotApplicable => "not-applicable",
                ItemStatus::Error => "error",
                ItemStatus::Quarantined => "quarantined",
            };
            self.evaluations.get_or_create(&RuleOutcome { rule: item.rule_id.clone(), outcome: outcome.into() }).inc();
            if item.outcome != ItemStatus::Quarantined {
                let rule = RuleLabel { rule: item.rule_id.clone() };
                self.evaluation_latency.get_or_create(&rule).observe(item.micros as f64 / 1e6);
                self.fuel_used.get_or_create(&rule).inc_by(item.fuel_used);
            }
        }
    }

    pub fn record_claim(&self, elapsed: Duration) {
        self.claim_latency.observe(elapsed.as_secs_f64());
    }

    pub fn record_reload(&self, result: &str) {
        self.reloads.get_or_create(&ResultLabel { result: result.into() }).inc();
        if result == "refused" {
            self.refusals.inc();
        }
    }

    /// Brings the quarantine series up to date with the rules' health.
    pub fn observe_quarantines(&self, ruleset: &Ruleset, generation: u64) {
        let mut seen = self.seen_quarantines.lock();
        for rule in &ruleset.rules {
            let counts = rule.health.counts();
            let label = RuleLabel { rule: rule.id.to_string() };
            let before = seen.entry((rule.id.to_string(), generation)).or_insert(counts.quarantines);
            if counts.quarantines > *before {
                self.quarantines.get_or_create(&label).inc_by(counts.quarantines - *before);
                *before = counts.quarantines;
            }
            self.quarantined.get_or_create(&label).set(counts.quarantined.is_some() as i64);
        }
    }

    /// A fresh module starts its health at zero; quarantines it carried
    /// over were counted under the previous generation.
    pub fn start_generation(&self, ruleset: &Ruleset, generation: u64) {
        let mut seen = self.seen_quarantines.lock();
        seen.retain(|(_, g), _| *g + 1 >= generation);
        for rule in &ruleset.rules {
            seen.insert((rule.id.to_string(), generation), rule.health.counts().quarantines);
        }
    }

    pub fn encode(&self) -> String {
        if let Some(stream) = self.stream.get() {
            let shards = stream.snapshot();
            for (shard, progress) in &shards {
                let label = ShardLabel { shard: shard.clone() };
                self.shard_millis_behind.get_or_create(&label).set(progress.millis_behind);
                self.shard_records.get_or_create(&label).set(progress.counts.read as i64);
            }
            self.leases_held.set(shards.values().filter(|p| p.held).count() as i64);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

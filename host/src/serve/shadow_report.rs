//! How each shadow rule agrees with the active rule it would replace
//! (`shadows = "<id>"` in the ruleset), over the sheets this process made
//! since it started: real-time sheets and `POST /v1/sessions/evaluate`
//! alike. `GET /v1/rules` shows the counts, with the disagreements by
//! change (`pass → fail`); `/metrics` has `callqa_shadow_items_total`.
//!
//! A sheet counts for a pair only when it carries both items: a shadow
//! rule whose channel or queue filters differ from its active rule's is
//! compared where both apply.

use std::collections::BTreeMap;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::Serialize;

use crate::qa::QaSheet;
use crate::rules::Ruleset;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShadowLabels {
    /// The shadow rule.
    pub rule: String,
    /// The active rule it shadows.
    pub active: String,
    /// `agree` or `disagree`.
    pub agreement: String,
}

/// One pair's counts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Agreement {
    pub agree: u64,
    pub disagree: u64,
    /// The disagreements by `active → shadow` outcome, e.g. `pass → fail`.
    pub changes: BTreeMap<String, u64>,
}

#[derive(Default)]
pub struct ShadowReport {
    /// By (shadow rule, active rule): kept across reloads, since an
    /// operator compares over the whole time a candidate ran.
    pairs: Mutex<BTreeMap<(String, String), Agreement>>,
    items: Family<ShadowLabels, Counter>,
}

impl ShadowReport {
    /// The counter family `/metrics` exports.
    pub fn items(&self) -> Family<ShadowLabels, Counter> {
        self.items.clone()
    }

    /// Counts one sheet made under `ruleset`.
    pub fn record(&self, sheet: &QaSheet, ruleset: &Ruleset) {
        let item = |id: &str| sheet.items.iter().find(|i| i.rule_id == id);
        let mut pairs = None;
        for rule in ruleset.rules.iter().filter(|r| r.shadow) {
            let Some(active) = rule.shadows.as_deref() else { continue };
            let (Some(candidate), Some(current)) = (item(&rule.id), item(active)) else { continue };
            let agree = candidate.outcome == current.outcome;
            let pairs = pairs.get_or_insert_with(|| self.pairs.lock());
            let counts = pairs.entry((rule.id.to_string(), active.to_owned())).or_default();
            if agree {
                counts.agree += 1;
            } else {
                counts.disagree += 1;
                let change = format!("{} → {}", current.outcome.as_str(), candidate.outcome.as_str());
                *counts.changes.entry(change).or_default() += 1;
            }
            self.items
                .get_or_create(&ShadowLabels {
                    rule: rule.id.to_string(),
                    active: active.to_owned(),
                    agreement: if agree { "agree" } else { "disagree" }.into(),
                })
                .inc();
        }
    }

    /// The counts of `rule` against `active` so far (zero before any sheet).
    pub fn agreement(&self, rule: &str, active: &str) -> Agreement {
        self.pairs.lock().get(&(rule.to_owned(), active.to_owned())).cloned().unwrap_or_default()
    }
}

use std::collections::BTreeMap;
use std::fmt;

use super::sheet::{ItemStatus, QaSheet};
use crate::rules::{HealthCounts, Ruleset};

/// Per-rule counts over a run, for the human summary on stderr.
#[derive(Default, Debug)]
pub struct Summary {
    pub sessions: usize,
    pub rejected_documents: usize,
    per_rule: BTreeMap<String, BTreeMap<ItemStatus, usize>>,
    health: BTreeMap<String, HealthCounts>,
}

impl Summary {
    pub fn add(&mut self, sheet: &QaSheet) {
        self.sessions += 1;
        for item in &sheet.items {
            *self.per_rule.entry(item.rule_id.clone()).or_default().entry(item.outcome).or_default() += 1;
        }
    }

    /// Take each rule's error, budget and quarantine counts at the end of a run.
    pub fn add_health(&mut self, ruleset: &Ruleset) {
        for rule in &ruleset.rules {
            self.health.insert(rule.id.to_string(), rule.health.counts());
        }
    }

    pub fn count(&self, rule_id: &str, status: ItemStatus) -> usize {
        self.per_rule.get(rule_id).and_then(|m| m.get(&status)).copied().unwrap_or(0)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ItemStatus::*;
        writeln!(
            f,
            "{:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7}",
            "rule", "pass", "fail", "n/a", "error", "quar.", "budget", "quar.#"
        )?;
        for rule in self.per_rule.keys() {
            let health = self.health.get(rule).cloned().unwrap_or_default();
            writeln!(
                f,
                "{:<28} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7}",
                rule,
                self.count(rule, Pass),
                self.count(rule, Fail),
                self.count(rule, NotApplicable),
                self.count(rule, Error),
                self.count(rule, Quarantined),
                health.budgets_exhausted,
                health.quarantines
            )?;
        }
        writeln!(f, "(budget: fuel, time or memory exhausted; quar.#: times quarantined)")?;
        write!(f, "{} sessions inspected, {} documents rejected", self.sessions, self.rejected_documents)
    }
}

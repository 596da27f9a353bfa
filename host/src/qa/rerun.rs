//! Re-running rules over history: the stored sessions evaluated under a new
//! ruleset, and per rule how many items would change outcome (pass → fail,
//! fail → pass, new errors), with example sessions. Amazon Connect applies a
//! new rule only to new contacts; callqa keeps the sessions, so an operator
//! can see what a change does before it goes live.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use serde::Serialize;

use super::sheet::{ItemStatus, QaSheet};
use super::sheet_store::{SheetFilter, SheetRecord, SheetStore, Written};
use super::Inspector;

/// Example sessions kept per rule and change.
const EXAMPLES: usize = 3;

/// What one rule's items would do under the new ruleset.
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct RuleChanges {
    /// Items with the same outcome as before.
    pub unchanged: u64,
    /// Outcome changes by `before → after` (`pass → fail`, `fail → pass`,
    /// `pass → error`, `(none) → fail` for a rule new on the sheet, `fail →
    /// (none)` for one no longer on it).
    pub changes: BTreeMap<String, u64>,
    /// A few session ids per change.
    pub examples: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Default, Serialize)]
pub struct RerunReport {
    pub sessions: u64,
    /// Sessions whose sheet score changed.
    pub scores_changed: u64,
    /// Evaluations recorded (0 on a dry run; sessions already evaluated under
    /// the new ruleset version are not recorded twice).
    pub recorded: u64,
    pub rules: BTreeMap<String, RuleChanges>,
}

/// Evaluates the latest stored evaluation of every session `filter` selects
/// under `inspector`'s ruleset; records the new evaluations unless `dry_run`.
pub fn rerun(
    store: &SheetStore,
    inspector: &Inspector,
    filter: &SheetFilter,
    dry_run: bool,
) -> anyhow::Result<RerunReport> {
    let rows = store.list(filter)?;
    let (mut sessions, mut previous) = (Vec::with_capacity(rows.len()), Vec::with_capacity(rows.len()));
    for row in &rows {
        if let Some(evaluation) = store.evaluation(&row.session_id)? {
            sessions.push(Arc::new(evaluation.session));
            previous.push(evaluation.sheet);
        }
    }
    let sheets = inspector.inspect_all(sessions.clone());

    let mut report = RerunReport { sessions: sessions.len() as u64, ..RerunReport::default() };
    for (before, after) in previous.iter().zip(&sheets) {
        compare(before, after, &mut report);
    }
    if !dry_run {
        let evaluated_at = Utc::now();
        let version = &inspector.ruleset.version;
        let records: Vec<SheetRecord<'_>> = sheets
            .iter()
            .zip(&sessions)
            .map(|(sheet, session)| SheetRecord { sheet, session, ruleset_version: version, evaluated_at })
            .collect();
        report.recorded = store.put_all(&records)?.iter().filter(|w| **w == Written::Stored).count() as u64;
    }
    Ok(report)
}

fn compare(before: &QaSheet, after: &QaSheet, report: &mut RerunReport) {
    if before.score != after.score {
        report.scores_changed += 1;
    }
    let outcome = |sheet: &QaSheet, rule: &str| sheet.items.iter().find(|i| i.rule_id == rule).map(|i| i.outcome);
    let mut rules: Vec<&str> = before.items.iter().chain(&after.items).map(|i| i.rule_id.as_str()).collect();
    rules.sort_unstable();
    rules.dedup();
    for rule in rules {
        let changes = report.rules.entry(rule.to_owned()).or_default();
        let (was, is) = (outcome(before, rule), outcome(after, rule));
        if was == is {
            changes.unchanged += 1;
            continue;
        }
        let name = |o: Option<ItemStatus>| o.map_or("(none)", ItemStatus::as_str);
        let change = format!("{} → {}", name(was), name(is));
        *changes.changes.entry(change.clone()).or_default() += 1;
        let examples = changes.examples.entry(change).or_default();
        if examples.len() < EXAMPLES {
            examples.push(after.session_id.clone());
        }
    }
}

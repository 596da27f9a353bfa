use std::sync::Arc;

use rayon::prelude::*;

use super::sheet::{ItemError, ItemStatus, QaSheet, SheetItem};
use crate::rules::health::Accountability;
use crate::rules::{RuleEngine, RuleEntry, Ruleset};
use crate::session::Session;

/// Runs a ruleset over sessions: every applicable rule, each in its own
/// sandbox (a fresh instance, or a warm one where the ruleset asks for it),
/// sessions in parallel.
pub struct Inspector {
    pub engine: Arc<RuleEngine>,
    pub ruleset: Arc<Ruleset>,
    /// Whether errors here may quarantine a rule (see `rules::health`).
    pub accountability: Accountability,
}

impl Inspector {
    pub fn new(engine: Arc<RuleEngine>, ruleset: Arc<Ruleset>) -> Self {
        Inspector { engine, ruleset, accountability: Accountability::Counted }
    }

    /// For a document one caller sent: its errors never quarantine a rule
    /// for the others.
    pub fn isolated(self) -> Self {
        Inspector { accountability: Accountability::Isolated, ..self }
    }

    pub fn inspect(&self, session: Arc<Session>) -> QaSheet {
        // Embedded once for every rule of the sheet, outside their deadlines.
        if let Some(similarity) = &self.ruleset.similarity {
            similarity.prepare(&session);
        }
        let items = self
            .ruleset
            .rules
            .iter()
            .filter(|rule| rule.applies_to(&session))
            .map(|rule| self.item(rule, &session))
            .collect();
        let mut sheet = QaSheet::new(
            session.id.clone(),
            session.contact.contact_id.clone(),
            session.contact.channel.as_str().to_owned(),
            items,
            &self.ruleset.form,
        );
        sheet.notes = session.notes.clone();
        if let Some(similarity) = &self.ruleset.similarity {
            similarity.finish(&session);
        }
        sheet
    }

    /// Sheets in input order, sessions spread over the available cores.
    pub fn inspect_all(&self, sessions: Vec<Arc<Session>>) -> Vec<QaSheet> {
        sessions.into_par_iter().map(|s| self.inspect(s)).collect()
    }

    fn item(&self, rule: &RuleEntry, session: &Arc<Session>) -> SheetItem {
        let mut item = SheetItem {
            rule_id: rule.id.to_string(),
            rule_version: rule.module.descriptor.version.clone(),
            module_sha256: rule.module.sha256.clone(),
            outcome: ItemStatus::Error,
            weight: rule.weight,
            section: rule.section.as_deref().map(str::to_owned),
            critical: rule.critical,
            shadow: rule.shadow,
            score: None,
            reason: None,
            error: None,
            findings: Vec::new(),
            trace: None,
            fuel_used: 0,
            micros: 0,
        };
        if let Some(last_error) = rule.health.quarantined() {
            item.outcome = ItemStatus::Quarantined;
            item.error = Some(ItemError { code: "quarantined".into(), message: last_error });
            return item;
        }
        let eval = rule.evaluate(&self.engine, session.clone());
        item.fuel_used = eval.fuel_used;
        item.micros = eval.micros;
        item.trace = eval.trace;
        match eval.result {
            Ok(verdict) => {
                rule.health.record_success(self.accountability);
                item.apply_verdict(verdict);
            }
            Err(e) => {
                let segments = session.segments.as_ref().map_or(0, Vec::len);
                if rule.health.record_error(&e, rule.limits.quarantine_after, self.accountability, segments) {
                    tracing::warn!(
                        rule = &*rule.id,
                        "quarantined after {} errors in a row: {e}",
                        rule.limits.quarantine_after
                    );
                }
                item.error = Some(ItemError { code: e.code().to_owned(), message: e.to_string() });
            }
        }
        item
    }
}

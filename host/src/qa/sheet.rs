use serde::{Deserialize, Serialize};

use crate::rules::form::{Form, Grade, Section, SectionScore};
use crate::rules::{Finding, Outcome, Verdict};

/// One session's QA sheet, written as one NDJSON line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QaSheet {
    pub session_id: String,
    pub contact_id: String,
    pub channel: String,
    pub items: Vec<SheetItem>,
    /// Weighted mean of the scored items (pass/fail), in [0, 1]; with
    /// sections, the weighted mean of the sections' scores; 0 when a
    /// critical item failed. `None` when no item was scored.
    pub score: Option<f64>,
    /// Each section's score, when the ruleset has sections.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sections: Vec<SectionScore>,
    /// The critical items that failed (一票否决): the score is 0 because of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_failed: Vec<String>,
    /// The grade the score reaches, when the ruleset has grades.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    /// The ruleset's grade thresholds, best first: shown beside the grade,
    /// and what a reviewed sheet is graded by again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grades: Vec<Grade>,
    /// False when any item ended in an error or quarantine: the score then
    /// covers only the rules that reached a verdict.
    pub complete: bool,
    /// The session's notes from assembly (e.g. an unreadable analysis file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The status of a sheet item: a verdict's outcome, or why there is none.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum ItemStatus {
    Pass,
    Fail,
    NotApplicable,
    Error,
    Quarantined,
}

impl ItemStatus {
    /// The name on sheets and in the store (`pass`, `not-applicable`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Pass => "pass",
            ItemStatus::Fail => "fail",
            ItemStatus::NotApplicable => "not-applicable",
            ItemStatus::Error => "error",
            ItemStatus::Quarantined => "quarantined",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ItemError {
    /// Stable code: `fuel-exhausted`, `timeout`, `memory-cap`, `panic`, ...
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SheetItem {
    pub rule_id: String,
    pub rule_version: String,
    pub module_sha256: String,
    pub outcome: ItemStatus,
    pub weight: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub critical: bool,
    /// A rule run in shadow: evaluated and stored, left out of the score,
    /// the grade, completeness and alerts.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
    pub findings: Vec<Finding>,
    /// How the rule reached its result, when it says (a scripted item's
    /// trace: `{"outcome", "missing", "error", "trace": {"operators",
    /// "steps", "truncated"}}`, see docs/writing-a-rule.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<serde_json::Value>,
    pub fuel_used: u64,
    pub micros: u64,
}

impl SheetItem {
    /// Whether the item counts toward the sheet (a shadow rule's does not).
    pub fn counts(&self) -> bool {
        !self.shadow
    }

    pub fn apply_verdict(&mut self, v: Verdict) {
        self.outcome = match v.outcome {
            Outcome::Pass => ItemStatus::Pass,
            Outcome::Fail => ItemStatus::Fail,
            Outcome::NotApplicable => ItemStatus::NotApplicable,
        };
        self.score = v.score;
        self.reason = v.reason;
        self.findings = v.findings;
    }

    /// The item's contribution to the sheet score: its own score, else 1
    /// for pass and 0 for fail; nothing for the others.
    fn scored(&self) -> Option<f64> {
        if self.shadow {
            return None;
        }
        match self.outcome {
            ItemStatus::Pass => Some(self.score.map_or(1.0, f64::from)),
            ItemStatus::Fail => Some(self.score.map_or(0.0, f64::from)),
            _ => None,
        }
    }
}

impl QaSheet {
    /// A sheet of `items` scored by `form` (see [`crate::rules::form`]).
    pub fn new(session_id: String, contact_id: String, channel: String, items: Vec<SheetItem>, form: &Form) -> Self {
        let mean = |items: &mut dyn Iterator<Item = &SheetItem>| {
            let (mut total, mut weights) = (0.0, 0.0);
            for item in items {
                if let Some(s) = item.scored() {
                    total += s * item.weight;
                    weights += item.weight;
                }
            }
            (weights > 0.0).then(|| total / weights)
        };
        let sections: Vec<SectionScore> = form
            .sections
            .iter()
            .map(|section| SectionScore {
                id: section.id.clone(),
                title: section.title.clone(),
                weight: section.weight,
                score: mean(&mut items.iter().filter(|i| i.section.as_deref() == Some(&section.id))).map(round),
            })
            .collect();
        let mut score = if sections.is_empty() {
            mean(&mut items.iter())
        } else {
            let (mut total, mut weights) = (0.0, 0.0);
            for s in &sections {
                if let Some(score) = s.score {
                    total += score * s.weight;
                    weights += s.weight;
                }
            }
            (weights > 0.0).then(|| total / weights)
        };
        let critical_failed: Vec<String> = items
            .iter()
            .filter(|i| i.counts() && i.critical && i.outcome == ItemStatus::Fail)
            .map(|i| i.rule_id.clone())
            .collect();
        if !critical_failed.is_empty() {
            score = Some(0.0);
        }
        let score = score.map(round);
        let grade = score.and_then(|s| form.grade(s)).map(str::to_owned);
        let complete = items
            .iter()
            .filter(|i| i.counts())
            .all(|i| !matches!(i.outcome, ItemStatus::Error | ItemStatus::Quarantined));
        QaSheet {
            session_id,
            contact_id,
            channel,
            items,
            score,
            sections,
            critical_failed,
            grade,
            grades: form.grades.clone(),
            complete,
            notes: Vec::new(),
        }
    }

    /// The form this sheet was scored by, as far as the sheet carries it
    /// (its sections and grade thresholds): enough to score it again with
    /// other outcomes (a review) without the ruleset that made it.
    pub fn form(&self) -> Form {
        Form {
            sections: self
                .sections
                .iter()
                .map(|s| Section { id: s.id.clone(), title: s.title.clone(), weight: s.weight })
                .collect(),
            grades: self.grades.clone(),
        }
    }

    /// This sheet scored again with `items` (reviewed outcomes, manual
    /// items): the same session, form and notes.
    pub fn rescored(&self, items: Vec<SheetItem>) -> QaSheet {
        let mut sheet =
            QaSheet::new(self.session_id.clone(), self.contact_id.clone(), self.channel.clone(), items, &self.form());
        sheet.notes = self.notes.clone();
        sheet
    }
}

/// Scores are shown to four decimals.
fn round(score: f64) -> f64 {
    (score * 10_000.0).round() / 10_000.0
}

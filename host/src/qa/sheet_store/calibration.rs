//! Calibration: several reviewers review the same sheet independently
//! (their verdicts are kept apart from the sheet's review and change
//! nothing on it), and the report says, per item, how often they agree
//! with each other and with the machine.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::review::{Refusal, ReviewOutcome};
use super::{instant, SheetStore};

/// Agreement on one item.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ItemAgreement {
    pub rule_id: String,
    pub machine: String,
    /// Each reviewer's outcome.
    pub reviewers: BTreeMap<String, String>,
    /// The share of reviewer pairs that gave the same outcome (`None` with
    /// fewer than two reviewers).
    pub agreement: Option<f64>,
    /// The share of reviewers who gave the machine's outcome.
    pub machine_agreement: Option<f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct CalibrationReport {
    pub session_id: String,
    pub reviewers: Vec<String>,
    pub items: Vec<ItemAgreement>,
    /// Means over the items that have a value.
    pub agreement: Option<f64>,
    pub machine_agreement: Option<f64>,
}

impl SheetStore {
    /// A reviewer's calibration verdict on an item; a second one from the
    /// same reviewer replaces the first.
    pub fn calibrate(
        &self,
        session_id: &str,
        rule_id: &str,
        reviewer: &str,
        outcome: ReviewOutcome,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        self.db.transaction(|tx| {
            let row = tx
                .query_one(
                    "SELECT e.id FROM evaluations e JOIN items i ON i.evaluation_id = e.id AND i.rule_id = ?2 \
                     WHERE e.session_id = ?1 ORDER BY e.id DESC LIMIT 1",
                    &[session_id.into(), rule_id.into()],
                )?
                .ok_or_else(|| Refusal::NotFound(format!("the sheet of {session_id} has no item `{rule_id}`")))?;
            let id = row.int(0)?;
            tx.execute(
                "DELETE FROM reviews WHERE evaluation_id = ?1 AND rule_id = ?2 AND reviewer = ?3 AND calibration = 1",
                &[id.into(), rule_id.into(), reviewer.into()],
            )?;
            tx.execute(
                "INSERT INTO reviews (evaluation_id, rule_id, reviewer, outcome, comment, calibration, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6)",
                &[
                    id.into(),
                    rule_id.into(),
                    reviewer.into(),
                    outcome.as_str().into(),
                    comment.into(),
                    instant(&now).into(),
                ],
            )?;
            Ok(())
        })
    }

    /// How the calibration reviewers of a session's sheet agree.
    pub fn calibration(&self, session_id: &str) -> anyhow::Result<CalibrationReport> {
        let rows = self.db.transaction(|tx| {
            let Some(e) = tx.query_one(
                "SELECT id FROM evaluations WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
                &[session_id.into()],
            )?
            else {
                return Err(Refusal::NotFound(format!("no sheet for session {session_id}")).into());
            };
            tx.query(
                "SELECT i.rule_id, i.outcome, r.reviewer, r.outcome FROM items i \
                 LEFT JOIN reviews r ON r.evaluation_id = i.evaluation_id AND r.rule_id = i.rule_id AND r.calibration = 1 \
                 WHERE i.evaluation_id = ?1 ORDER BY i.rule_id, r.reviewer",
                &[e.int(0)?.into()],
            )
        })?;
        let mut items: Vec<ItemAgreement> = Vec::new();
        for row in rows {
            let rule_id = row.text(0)?;
            if items.last().is_none_or(|i| i.rule_id != rule_id) {
                items.push(ItemAgreement {
                    rule_id,
                    machine: row.text(1)?,
                    reviewers: BTreeMap::new(),
                    agreement: None,
                    machine_agreement: None,
                });
            }
            if let (Some(reviewer), Some(outcome)) = (row.opt_text(2)?, row.opt_text(3)?) {
                items.last_mut().expect("pushed above").reviewers.insert(reviewer, outcome);
            }
        }
        items.retain(|i| !i.reviewers.is_empty());
        for item in &mut items {
            let outcomes: Vec<&String> = item.reviewers.values().collect();
            let (mut pairs, mut agreeing) = (0u32, 0u32);
            for (i, a) in outcomes.iter().enumerate() {
                for b in &outcomes[i + 1..] {
                    pairs += 1;
                    agreeing += u32::from(a == b);
                }
            }
            item.agreement = (pairs > 0).then(|| f64::from(agreeing) / f64::from(pairs));
            let with_machine = outcomes.iter().filter(|o| ***o == item.machine).count();
            item.machine_agreement = Some(with_machine as f64 / outcomes.len() as f64);
        }
        let mean = |values: Vec<f64>| (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
        let mut reviewers: Vec<String> = items.iter().flat_map(|i| i.reviewers.keys().cloned()).collect();
        reviewers.sort();
        reviewers.dedup();
        Ok(CalibrationReport {
            session_id: session_id.to_owned(),
            reviewers,
            agreement: mean(items.iter().filter_map(|i| i.agreement).collect()),
            machine_agreement: mean(items.iter().filter_map(|i| i.machine_agreement).collect()),
            items,
        })
    }
}

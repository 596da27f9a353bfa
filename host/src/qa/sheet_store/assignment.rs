//! Sampling sheets for review: a share of each agent's unassigned sheets,
//! chosen at random but reproducibly (a seed), dealt to reviewers in turn.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::review::Refusal;
use super::{instant, SheetFilter, SheetStore};

/// What an assignment did, per agent.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AssignmentReport {
    /// Unassigned sheets that matched, per agent (`(none)` for sheets without one).
    pub candidates: BTreeMap<String, u64>,
    /// Sheets assigned, per reviewer.
    pub assigned: BTreeMap<String, Vec<String>>,
}

impl SheetStore {
    /// Assigns `share` (0 < share ≤ 1) of each agent's unassigned sheets
    /// that `filter` selects to `reviewers`, at least one per agent with
    /// sheets. The same seed over the same sheets picks the same ones.
    pub fn assign(
        &self,
        filter: &SheetFilter,
        share: f64,
        seed: u64,
        reviewers: &[String],
        actor: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<AssignmentReport> {
        if !(share > 0.0 && share <= 1.0) {
            return Err(Refusal::Invalid(format!("the sample share {share} must be above 0 and at most 100%")).into());
        }
        if reviewers.is_empty() {
            return Err(Refusal::Invalid("name at least one reviewer to assign sheets to".into()).into());
        }
        let rows = self.list(&SheetFilter { limit: usize::MAX, ..filter.clone() })?;
        let mut by_agent: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for row in rows.into_iter().filter(|r| r.assigned_to.is_none()) {
            by_agent.entry(row.agent_id.unwrap_or_else(|| "(none)".into())).or_default().push((row.id, row.session_id));
        }
        let mut report = AssignmentReport::default();
        let mut chosen: Vec<(i64, String)> = Vec::new();
        for (agent, mut sheets) in by_agent {
            report.candidates.insert(agent, sheets.len() as u64);
            // A draw that does not depend on the order the store lists in.
            sheets.sort_by_cached_key(|(_, session)| Sha256::digest(format!("{seed}:{session}").as_bytes()));
            let n = ((sheets.len() as f64 * share).ceil() as usize).clamp(1, sheets.len());
            chosen.extend(sheets.into_iter().take(n));
        }
        self.db
            .transaction(|tx| {
                let mut assigned: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for (i, (id, session)) in chosen.iter().enumerate() {
                    let reviewer = &reviewers[i % reviewers.len()];
                    // Someone may have assigned it since the list: theirs stands.
                    let changed = tx.execute(
                        "UPDATE evaluations SET assigned_to = ?1 WHERE id = ?2 AND assigned_to IS NULL",
                        &[reviewer.as_str().into(), (*id).into()],
                    )?;
                    if changed == 0 {
                        continue;
                    }
                    tx.execute(
                        "INSERT INTO audit (evaluation_id, rule_id, actor, action, at, before, after, reason) \
                     VALUES (?1, NULL, ?2, 'assign', ?3, NULL, ?4, ?5)",
                        &[
                            (*id).into(),
                            actor.into(),
                            instant(&now).into(),
                            serde_json::json!({"assigned_to": reviewer}).to_string().into(),
                            format!("sample {:.2}% per agent, seed {seed}", share * 100.0).into(),
                        ],
                    )?;
                    assigned.entry(reviewer.clone()).or_default().push(session.clone());
                }
                Ok(assigned)
            })
            .map(|assigned| AssignmentReport { assigned, ..report })
    }
}

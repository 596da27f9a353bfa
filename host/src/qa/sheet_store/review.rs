//! What people do with a stored sheet: a reviewer confirms or overturns an
//! item or adds a manual one; an agent acknowledges the sheet or disputes
//! an item; a reviewer accepts or rejects the dispute. Each is one
//! transaction that checks the item's state, changes it, scores the sheet
//! again from the reviewed outcomes, and writes an audit record.
//!
//! The machine's verdict is never overwritten: an item keeps `outcome` (the
//! machine's) beside `reviewed_outcome` (the people's). The item's states:
//!
//! ```text
//!   machine ──review──▶ reviewed ──review──▶ reviewed
//!      │                   │
//!      └──────dispute──────┴──▶ disputed ──accept──▶ overturned (final)
//!                                   └─────reject──▶ upheld (final)
//! ```
//!
//! A disputed item is not reviewed (the dispute is resolved instead); an
//! item is disputed once; a dispute is resolved once, and not by the
//! reviewer whose verdict it disputes when another reviewer exists.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::database::{Dialect, SqlRow, SqlValue, Transaction};
use super::{instant, SheetStore};
use crate::qa::sheet::{ItemStatus, QaSheet, SheetItem};

/// Why an action was refused, for the API's status and code.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No such sheet, item or dispute (or one the caller may not see).
    #[error("{0}")]
    NotFound(String),
    /// The action does not apply in the item's state (already disputed,
    /// already acknowledged, the dispute window closed).
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this to this item.
    #[error("{0}")]
    Forbidden(String),
    /// The request itself is wrong (an outcome that is not one).
    #[error("{0}")]
    Invalid(String),
}

/// An outcome a person gives.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewOutcome {
    Pass,
    Fail,
    NotApplicable,
}

impl ReviewOutcome {
    pub fn as_str(self) -> &'static str {
        self.status().as_str()
    }

    pub fn status(self) -> ItemStatus {
        match self {
            ReviewOutcome::Pass => ItemStatus::Pass,
            ReviewOutcome::Fail => ItemStatus::Fail,
            ReviewOutcome::NotApplicable => ItemStatus::NotApplicable,
        }
    }
}

/// A manual item: a question the machine cannot answer, answered by a reviewer.
#[derive(Clone, Debug, Deserialize)]
pub struct ManualItem {
    pub question: String,
    pub outcome: ReviewOutcome,
    #[serde(default = "one")]
    pub weight: f64,
    /// The form's section, when the sheet has sections.
    #[serde(default)]
    pub section: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// One item as people left it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ItemState {
    pub rule_id: String,
    /// The machine's outcome (`manual` for a manual item).
    pub machine_outcome: String,
    pub reviewed_outcome: Option<String>,
    /// The outcome that counts: the reviewed one, else the machine's.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub shadow: bool,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Review {
    pub id: i64,
    pub rule_id: String,
    pub reviewer: String,
    pub outcome: String,
    pub comment: Option<String>,
    pub calibration: bool,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Dispute {
    pub id: i64,
    pub session_id: String,
    pub rule_id: String,
    pub agent: String,
    pub comment: String,
    /// The reviewer whose verdict is disputed; `None`: the machine's.
    pub against: Option<String>,
    pub state: String,
    pub opened_at: String,
    pub resolved_by: Option<String>,
    pub resolution_comment: Option<String>,
    pub resolved_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub rule_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub at: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
}

/// One sheet with everything people did to it.
#[derive(Clone, Debug, Serialize)]
pub struct SheetView {
    pub evaluation_id: i64,
    pub session_id: String,
    pub ruleset_version: String,
    pub evaluated_at: String,
    pub agent_id: Option<String>,
    pub team: Option<String>,
    pub queue: Option<String>,
    pub assigned_to: Option<String>,
    pub acknowledged_at: Option<String>,
    pub reviewed_at: Option<String>,
    /// The sheet the rules made, as stored.
    pub machine: QaSheet,
    /// The sheet scored from the reviewed outcomes and manual items; the
    /// machine's when nobody reviewed it.
    pub sheet: QaSheet,
    pub items: Vec<ItemState>,
    pub reviews: Vec<Review>,
    pub disputes: Vec<Dispute>,
    pub audit: Vec<AuditRecord>,
}

/// The columns of an evaluation a workflow action needs.
struct Evaluation {
    id: i64,
    session_id: String,
    evaluated_at: String,
    reviewed_at: Option<String>,
    acknowledged_at: Option<String>,
    sheet: QaSheet,
}

impl SheetStore {
    /// The latest evaluation of a session, with its reviews, disputes and audit.
    pub fn sheet_view(&self, session_id: &str) -> anyhow::Result<Option<SheetView>> {
        self.db.transaction(|tx| {
            let Some(row) = tx.query_one(
                "SELECT id, session_id, ruleset_version, evaluated_at, agent_id, team, queue, assigned_to, \
                 acknowledged_at, reviewed_at, sheet FROM evaluations WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
                &[session_id.into()],
            )?
            else {
                return Ok(None);
            };
            let id = row.int(0)?;
            let machine: QaSheet = serde_json::from_str(&row.text(10)?)?;
            let items = item_states(tx, id)?;
            let reviews = tx
                .query(
                    "SELECT id, rule_id, reviewer, outcome, comment, calibration, created_at FROM reviews \
                     WHERE evaluation_id = ?1 ORDER BY id",
                    &[id.into()],
                )?
                .iter()
                .map(|r| {
                    Ok(Review {
                        id: r.int(0)?,
                        rule_id: r.text(1)?,
                        reviewer: r.text(2)?,
                        outcome: r.text(3)?,
                        comment: r.opt_text(4)?,
                        calibration: r.bool(5)?,
                        created_at: r.text(6)?,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            let disputes = disputes(tx, "d.evaluation_id = ?1", &[id.into()])?;
            let audit = tx
                .query(
                    "SELECT id, rule_id, actor, action, at, before, after, reason FROM audit \
                     WHERE evaluation_id = ?1 ORDER BY id",
                    &[id.into()],
                )?
                .iter()
                .map(|r| {
                    let json = |i| -> anyhow::Result<Option<serde_json::Value>> {
                        Ok(r.opt_text(i)?.map(|t| serde_json::from_str(&t)).transpose()?)
                    };
                    Ok(AuditRecord {
                        id: r.int(0)?,
                        rule_id: r.opt_text(1)?,
                        actor: r.text(2)?,
                        action: r.text(3)?,
                        at: r.text(4)?,
                        before: json(5)?,
                        after: json(6)?,
                        reason: r.opt_text(7)?,
                    })
                })
                .collect::<anyhow::Result<_>>()?;
            let sheet = reviewed_sheet(&machine, &items);
            Ok(Some(SheetView {
                evaluation_id: id,
                session_id: row.text(1)?,
                ruleset_version: row.text(2)?,
                evaluated_at: row.text(3)?,
                agent_id: row.opt_text(4)?,
                team: row.opt_text(5)?,
                queue: row.opt_text(6)?,
                assigned_to: row.opt_text(7)?,
                acknowledged_at: row.opt_text(8)?,
                reviewed_at: row.opt_text(9)?,
                machine,
                sheet,
                items,
                reviews,
                disputes,
                audit,
            }))
        })
    }

    /// A reviewer confirms (the machine's outcome) or overturns an item.
    pub fn review_item(
        &self,
        session_id: &str,
        rule_id: &str,
        reviewer: &str,
        outcome: ReviewOutcome,
        comment: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let dialect = self.db.dialect();
        self.db.transaction(|tx| {
            let evaluation = lock_evaluation(tx, dialect, session_id)?;
            let item = item(tx, &evaluation, rule_id)?;
            if item.shadow {
                return Err(Refusal::Conflict(format!(
                    "`{rule_id}` ran in shadow: it does not count on the sheet and is not reviewed"
                ))
                .into());
            }
            if let Some(d) = open_dispute(tx, evaluation.id, rule_id)? {
                return Err(Refusal::Conflict(format!(
                    "`{rule_id}` is disputed by {} (dispute {}): resolve the dispute instead",
                    d.agent, d.id
                ))
                .into());
            }
            set_outcome(tx, &evaluation, &item, outcome.as_str(), reviewer, "review", comment, now)?;
            tx.execute(
                "INSERT INTO reviews (evaluation_id, rule_id, reviewer, outcome, comment, calibration, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                &[
                    evaluation.id.into(),
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

    /// A reviewer adds a manual item; returns its id (`manual:N`).
    pub fn add_manual_item(
        &self,
        session_id: &str,
        reviewer: &str,
        manual: &ManualItem,
        now: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        if manual.question.trim().is_empty() {
            return Err(Refusal::Invalid("a manual item needs a question".into()).into());
        }
        if !(manual.weight.is_finite() && manual.weight >= 0.0) {
            return Err(Refusal::Invalid(format!("weight {} must be a non-negative number", manual.weight)).into());
        }
        let dialect = self.db.dialect();
        self.db.transaction(|tx| {
            let evaluation = lock_evaluation(tx, dialect, session_id)?;
            let sections = &evaluation.sheet.sections;
            match &manual.section {
                None if !sections.is_empty() => {
                    return Err(Refusal::Invalid(format!(
                        "the sheet has sections: name the manual item's `section` (one of: {})",
                        sections.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                    .into())
                }
                Some(s) if !sections.iter().any(|d| &d.id == s) => {
                    return Err(Refusal::Invalid(format!("the sheet has no section `{s}`")).into())
                }
                _ => {}
            }
            let n = tx
                .query_one(
                    "SELECT COUNT(*) FROM items WHERE evaluation_id = ?1 AND outcome = 'manual'",
                    &[evaluation.id.into()],
                )?
                .map_or(Ok(0), |r| r.int(0))?;
            let rule_id = format!("manual:{}", n + 1);
            let question = serde_json::json!({
                "question": manual.question, "weight": manual.weight, "section": manual.section,
            })
            .to_string();
            tx.execute(
                "INSERT INTO items (evaluation_id, rule_id, outcome, score, reviewed_outcome, question) \
                 VALUES (?1, ?2, 'manual', NULL, ?3, ?4)",
                &[evaluation.id.into(), rule_id.as_str().into(), manual.outcome.as_str().into(), question.into()],
            )?;
            tx.execute(
                "INSERT INTO reviews (evaluation_id, rule_id, reviewer, outcome, comment, calibration, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
                &[
                    evaluation.id.into(),
                    rule_id.as_str().into(),
                    reviewer.into(),
                    manual.outcome.as_str().into(),
                    manual.comment.clone().into(),
                    instant(&now).into(),
                ],
            )?;
            let after = serde_json::json!({"question": manual.question, "outcome": manual.outcome.as_str()});
            audit(
                tx,
                evaluation.id,
                Some(&rule_id),
                reviewer,
                "add-manual-item",
                now,
                None,
                Some(after),
                manual.comment.as_deref(),
            )?;
            rescore(tx, &evaluation, now)?;
            Ok(rule_id.clone())
        })
    }

    /// The sheet's agent acknowledges it.
    pub fn acknowledge(&self, session_id: &str, agent: &str, now: DateTime<Utc>) -> anyhow::Result<()> {
        let dialect = self.db.dialect();
        self.db.transaction(|tx| {
            let evaluation = lock_evaluation(tx, dialect, session_id)?;
            if let Some(at) = &evaluation.acknowledged_at {
                return Err(Refusal::Conflict(format!("the sheet was acknowledged already, at {at}")).into());
            }
            tx.execute(
                "UPDATE evaluations SET acknowledged_at = ?1 WHERE id = ?2",
                &[instant(&now).into(), evaluation.id.into()],
            )?;
            audit(tx, evaluation.id, None, agent, "acknowledge", now, None, None, None)?;
            Ok(())
        })
    }

    /// The sheet's agent disputes an item, within `window` of the sheet's
    /// last verdict (its evaluation, or its latest review). Returns the dispute's id.
    pub fn dispute(
        &self,
        session_id: &str,
        rule_id: &str,
        agent: &str,
        comment: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> anyhow::Result<i64> {
        if comment.trim().is_empty() {
            return Err(Refusal::Invalid("a dispute needs a comment: say why the verdict is wrong".into()).into());
        }
        let dialect = self.db.dialect();
        self.db.transaction(|tx| {
            let evaluation = lock_evaluation(tx, dialect, session_id)?;
            let item = item(tx, &evaluation, rule_id)?;
            if item.shadow {
                return Err(Refusal::Conflict(format!("`{rule_id}` ran in shadow: it does not count")).into());
            }
            let since = evaluation.reviewed_at.as_deref().unwrap_or(&evaluation.evaluated_at).to_owned();
            let issued: DateTime<Utc> = since.parse().map_err(|e| anyhow::anyhow!("stored instant {since}: {e}"))?;
            if now > issued + window {
                return Err(Refusal::Conflict(format!(
                    "the dispute window closed at {} ({} days after the sheet's verdict of {since})",
                    instant(&(issued + window)),
                    window.num_days()
                ))
                .into());
            }
            if let Some(d) =
                disputes(tx, "d.evaluation_id = ?1 AND d.rule_id = ?2", &[evaluation.id.into(), rule_id.into()])?
                    .into_iter()
                    .next()
            {
                return Err(Refusal::Conflict(format!(
                    "`{rule_id}` was disputed already (dispute {}, {}): an item is disputed once",
                    d.id, d.state
                ))
                .into());
            }
            // Whose verdict is disputed: the last reviewer's, else the machine's.
            let against = tx
                .query_one(
                    "SELECT reviewer FROM reviews WHERE evaluation_id = ?1 AND rule_id = ?2 AND calibration = 0 \
                     ORDER BY id DESC LIMIT 1",
                    &[evaluation.id.into(), rule_id.into()],
                )?
                .map(|r| r.text(0))
                .transpose()?;
            let id = tx
                .query_one(
                    "INSERT INTO disputes (evaluation_id, rule_id, agent, comment, against, state, opened_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'open', ?6) RETURNING id",
                    &[
                        evaluation.id.into(),
                        rule_id.into(),
                        agent.into(),
                        comment.into(),
                        against.into(),
                        instant(&now).into(),
                    ],
                )?
                .expect("RETURNING gives a row")
                .int(0)?;
            let after = serde_json::json!({"dispute": id, "state": "open", "outcome": item.outcome});
            audit(tx, evaluation.id, Some(rule_id), agent, "dispute", now, None, Some(after), Some(comment))?;
            Ok(id)
        })
    }

    /// A reviewer accepts (the item is overturned) or rejects a dispute.
    /// `others_exist`: whether a reviewer other than `reviewer` exists, in
    /// which case the reviewer whose verdict is disputed may not resolve it.
    #[allow(clippy::too_many_arguments)]
    pub fn resolve_dispute(
        &self,
        dispute_id: i64,
        reviewer: &str,
        accept: bool,
        comment: &str,
        others_exist: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Dispute> {
        if comment.trim().is_empty() {
            return Err(Refusal::Invalid("resolving a dispute needs a comment the agent will read".into()).into());
        }
        let dialect = self.db.dialect();
        self.db.transaction(|tx| {
            let Some(dispute) = disputes(tx, "d.id = ?1", &[dispute_id.into()])?.into_iter().next() else {
                return Err(Refusal::NotFound(format!("no dispute {dispute_id}")).into());
            };
            let evaluation = lock_evaluation(tx, dialect, &dispute.session_id)?;
            if dispute.state != "open" {
                return Err(Refusal::Conflict(format!(
                    "dispute {dispute_id} was {} already by {}",
                    dispute.state,
                    dispute.resolved_by.as_deref().unwrap_or("?")
                ))
                .into());
            }
            if dispute.against.as_deref() == Some(reviewer) && others_exist {
                return Err(Refusal::Forbidden(format!(
                    "dispute {dispute_id} disputes your own verdict: another reviewer resolves it"
                ))
                .into());
            }
            let state = if accept { "accepted" } else { "rejected" };
            tx.execute(
                "UPDATE disputes SET state = ?1, resolved_by = ?2, resolution_comment = ?3, resolved_at = ?4 \
                 WHERE id = ?5",
                &[state.into(), reviewer.into(), comment.into(), instant(&now).into(), dispute_id.into()],
            )?;
            let before = serde_json::json!({"dispute": dispute_id, "state": "open"});
            let after = serde_json::json!({"dispute": dispute_id, "state": state});
            audit(
                tx,
                evaluation.id,
                Some(&dispute.rule_id),
                reviewer,
                "resolve-dispute",
                now,
                Some(before),
                Some(after),
                Some(comment),
            )?;
            if accept {
                let item = item(tx, &evaluation, &dispute.rule_id)?;
                let overturned = match item.outcome.as_str() {
                    "pass" => "fail",
                    "fail" => "pass",
                    // Not applicable, an error: the agent says it should have counted in their favour.
                    _ => "pass",
                };
                set_outcome(tx, &evaluation, &item, overturned, reviewer, "overturn-by-dispute", Some(comment), now)?;
            }
            Ok(disputes(tx, "d.id = ?1", &[dispute_id.into()])?.remove(0))
        })
    }

    /// Disputes, oldest first: all, or those in `state` (`open`, …).
    pub fn disputes(&self, state: Option<&str>) -> anyhow::Result<Vec<Dispute>> {
        self.db.transaction(|tx| match state {
            Some(s) => disputes(tx, "d.state = ?1", &[s.into()]),
            None => disputes(tx, "1 = 1", &[]),
        })
    }

    /// The agent and team of a session's latest evaluation, for deciding
    /// who may see it before reading it whole.
    pub fn owner(&self, session_id: &str) -> anyhow::Result<Option<(Option<String>, Option<String>)>> {
        self.db.transaction(|tx| {
            tx.query_one(
                "SELECT agent_id, team FROM evaluations WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
                &[session_id.into()],
            )?
            .map(|r| Ok((r.opt_text(0)?, r.opt_text(1)?)))
            .transpose()
        })
    }

    /// The session of a dispute, for deciding who may see it.
    pub fn dispute_session(&self, dispute_id: i64) -> anyhow::Result<Option<String>> {
        self.db.transaction(|tx| {
            Ok(disputes(tx, "d.id = ?1", &[dispute_id.into()])?.into_iter().next().map(|d| d.session_id))
        })
    }
}

/// The latest evaluation of a session, locked for the transaction
/// (PostgreSQL; SQLite's write transaction holds the whole file already).
fn lock_evaluation(tx: &mut dyn Transaction, dialect: Dialect, session_id: &str) -> anyhow::Result<Evaluation> {
    let lock = match dialect {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    let row = tx
        .query_one(
            &format!(
                "SELECT id, session_id, evaluated_at, reviewed_at, acknowledged_at, sheet FROM evaluations \
                 WHERE session_id = ?1 ORDER BY id DESC LIMIT 1{lock}"
            ),
            &[session_id.into()],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("no sheet for session {session_id}")))?;
    Ok(Evaluation {
        id: row.int(0)?,
        session_id: row.text(1)?,
        evaluated_at: row.text(2)?,
        reviewed_at: row.opt_text(3)?,
        acknowledged_at: row.opt_text(4)?,
        sheet: serde_json::from_str(&row.text(5)?)?,
    })
}

fn item_states(tx: &mut dyn Transaction, evaluation_id: i64) -> anyhow::Result<Vec<ItemState>> {
    tx.query(
        "SELECT rule_id, outcome, reviewed_outcome, question, shadow FROM items WHERE evaluation_id = ?1",
        &[evaluation_id.into()],
    )?
    .iter()
    .map(item_state)
    .collect()
}

fn item_state(r: &SqlRow) -> anyhow::Result<ItemState> {
    let machine = r.text(1)?;
    let reviewed = r.opt_text(2)?;
    Ok(ItemState {
        rule_id: r.text(0)?,
        outcome: reviewed.clone().unwrap_or_else(|| machine.clone()),
        machine_outcome: machine,
        reviewed_outcome: reviewed,
        question: r.opt_text(3)?,
        shadow: r.bool(4)?,
    })
}

fn item(tx: &mut dyn Transaction, evaluation: &Evaluation, rule_id: &str) -> anyhow::Result<ItemState> {
    let row = tx
        .query_one(
            "SELECT rule_id, outcome, reviewed_outcome, question, shadow FROM items \
             WHERE evaluation_id = ?1 AND rule_id = ?2",
            &[evaluation.id.into(), rule_id.into()],
        )?
        .ok_or_else(|| Refusal::NotFound(format!("the sheet of {} has no item `{rule_id}`", evaluation.session_id)))?;
    item_state(&row)
}

fn open_dispute(tx: &mut dyn Transaction, evaluation_id: i64, rule_id: &str) -> anyhow::Result<Option<Dispute>> {
    Ok(disputes(
        tx,
        "d.evaluation_id = ?1 AND d.rule_id = ?2 AND d.state = 'open'",
        &[evaluation_id.into(), rule_id.into()],
    )?
    .into_iter()
    .next())
}

fn disputes(tx: &mut dyn Transaction, condition: &str, params: &[SqlValue]) -> anyhow::Result<Vec<Dispute>> {
    tx.query(
        &format!(
            "SELECT d.id, e.session_id, d.rule_id, d.agent, d.comment, d.against, d.state, d.opened_at, \
             d.resolved_by, d.resolution_comment, d.resolved_at FROM disputes d \
             JOIN evaluations e ON e.id = d.evaluation_id WHERE {condition} ORDER BY d.id"
        ),
        params,
    )?
    .iter()
    .map(|r| {
        Ok(Dispute {
            id: r.int(0)?,
            session_id: r.text(1)?,
            rule_id: r.text(2)?,
            agent: r.text(3)?,
            comment: r.text(4)?,
            against: r.opt_text(5)?,
            state: r.text(6)?,
            opened_at: r.text(7)?,
            resolved_by: r.opt_text(8)?,
            resolution_comment: r.opt_text(9)?,
            resolved_at: r.opt_text(10)?,
        })
    })
    .collect()
}

/// Sets an item's reviewed outcome, audits the change and scores the sheet again.
#[allow(clippy::too_many_arguments)]
fn set_outcome(
    tx: &mut dyn Transaction,
    evaluation: &Evaluation,
    item: &ItemState,
    outcome: &str,
    actor: &str,
    action: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    tx.execute(
        "UPDATE items SET reviewed_outcome = ?1 WHERE evaluation_id = ?2 AND rule_id = ?3",
        &[outcome.into(), evaluation.id.into(), item.rule_id.as_str().into()],
    )?;
    let before = serde_json::json!({"outcome": item.outcome, "machine": item.machine_outcome});
    let after = serde_json::json!({"outcome": outcome, "machine": item.machine_outcome});
    audit(tx, evaluation.id, Some(&item.rule_id), actor, action, now, Some(before), Some(after), reason)?;
    rescore(tx, evaluation, now)
}

/// The sheet's score and grade from the reviewed outcomes.
fn rescore(tx: &mut dyn Transaction, evaluation: &Evaluation, now: DateTime<Utc>) -> anyhow::Result<()> {
    let items = item_states(tx, evaluation.id)?;
    let sheet = reviewed_sheet(&evaluation.sheet, &items);
    tx.execute(
        "UPDATE evaluations SET reviewed_score = ?1, reviewed_grade = ?2, reviewed_at = ?3 WHERE id = ?4",
        &[sheet.score.into(), sheet.grade.into(), instant(&now).into(), evaluation.id.into()],
    )?;
    Ok(())
}

/// The machine's sheet with the people's outcomes and manual items. A
/// reviewed item's own score gives way to its outcome (1 pass, 0 fail):
/// the reviewer judged the item, not the rule's partial credit.
fn reviewed_sheet(machine: &QaSheet, states: &[ItemState]) -> QaSheet {
    if states.iter().all(|s| s.reviewed_outcome.is_none()) {
        return machine.clone();
    }
    let status = |s: &str| match s {
        "pass" => ItemStatus::Pass,
        "fail" => ItemStatus::Fail,
        _ => ItemStatus::NotApplicable,
    };
    let mut items: Vec<SheetItem> = machine.items.clone();
    for item in &mut items {
        if let Some(reviewed) =
            states.iter().find(|s| s.rule_id == item.rule_id).and_then(|s| s.reviewed_outcome.as_deref())
        {
            item.outcome = status(reviewed);
            item.score = None;
            item.error = None;
        }
    }
    for state in states.iter().filter(|s| s.machine_outcome == "manual") {
        let question: serde_json::Value =
            state.question.as_deref().and_then(|q| serde_json::from_str(q).ok()).unwrap_or_default();
        items.push(SheetItem {
            rule_id: state.rule_id.clone(),
            rule_version: "manual".into(),
            module_sha256: String::new(),
            outcome: status(&state.outcome),
            weight: question["weight"].as_f64().unwrap_or(1.0),
            section: question["section"].as_str().map(str::to_owned),
            critical: false,
            shadow: false,
            score: None,
            reason: question["question"].as_str().map(str::to_owned),
            error: None,
            findings: Vec::new(),
            trace: None,
            fuel_used: 0,
            micros: 0,
        });
    }
    machine.rescored(items)
}

#[allow(clippy::too_many_arguments)]
fn audit(
    tx: &mut dyn Transaction,
    evaluation_id: i64,
    rule_id: Option<&str>,
    actor: &str,
    action: &str,
    at: DateTime<Utc>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
    reason: Option<&str>,
) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO audit (evaluation_id, rule_id, actor, action, at, before, after, reason) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        &[
            evaluation_id.into(),
            rule_id.into(),
            actor.into(),
            action.into(),
            instant(&at).into(),
            before.map(|v| v.to_string()).into(),
            after.map(|v| v.to_string()).into(),
            reason.into(),
        ],
    )?;
    Ok(())
}

//! The alert outbox: alerts owed to webhooks, written in the transaction
//! that stores the sheet they are about (so a sheet is never stored
//! without its alerts, nor an alert without its sheet), and kept until a
//! webhook answered 2xx. Delivery (`alerts/delivery.rs`) claims due rows,
//! posts them, then marks each delivered or schedules its next attempt.
//!
//! Claiming moves a row's `next_attempt_at` past the attempt (a lease):
//! two `serve` hosts sharing a PostgreSQL store do not both post it, and a
//! host that dies mid-attempt leaves it due again when the lease ends.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::database::{SqlRow, SqlValue};
use super::{insert_evaluation, instant, SheetRecord, SheetStore, Written};

/// An alert to enqueue for one webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct NewAlert {
    pub webhook: String,
    /// The same for every webhook an event goes to (see `alerts::alert::event_id`).
    pub event_id: String,
    /// The JSON body, posted and signed exactly as stored.
    pub payload: String,
}

/// What [`SheetStore::put_with_alerts`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredWithAlerts {
    pub written: Written,
    /// Outbox rows added: none when the evaluation was stored already.
    pub enqueued: usize,
}

/// One outbox row.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub webhook: String,
    pub event_id: String,
    pub payload: String,
    pub created_at: String,
    /// Attempts made so far (failed ones, and the delivering one).
    pub attempts: u32,
    pub next_attempt_at: String,
    pub delivered_at: Option<String>,
    /// The last HTTP status received; `None` when no answer came.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
}

const OUTBOX_COLUMNS: &str =
    "id, webhook, event_id, payload, created_at, attempts, next_attempt_at, delivered_at, last_status, last_error";

fn outbox_row(row: &SqlRow) -> anyhow::Result<OutboxRow> {
    Ok(OutboxRow {
        id: row.int(0)?,
        webhook: row.text(1)?,
        event_id: row.text(2)?,
        payload: row.text(3)?,
        created_at: row.text(4)?,
        attempts: u32::try_from(row.int(5)?).unwrap_or(u32::MAX),
        next_attempt_at: row.text(6)?,
        delivered_at: row.opt_text(7)?,
        last_status: row.opt_int(8)?.and_then(|s| u16::try_from(s).ok()),
        last_error: row.opt_text(9)?,
    })
}

impl SheetStore {
    /// Stores one evaluation and, only when it is newly stored, the alerts
    /// it owes, in one transaction. Evaluating a stored session again under
    /// the same ruleset enqueues nothing: its alerts were owed once.
    pub fn put_with_alerts(&self, record: &SheetRecord<'_>, alerts: &[NewAlert]) -> anyhow::Result<StoredWithAlerts> {
        // Serialised once, outside the transaction a backend may retry.
        let sheet = serde_json::to_string(record.sheet)?;
        let session = serde_json::to_string(record.session)?;
        let created_at = instant(&record.evaluated_at);
        self.db.transaction(|tx| {
            if insert_evaluation(tx, record, &sheet, &session)?.is_none() {
                return Ok(StoredWithAlerts { written: Written::AlreadyStored, enqueued: 0 });
            }
            let mut enqueued = 0;
            for alert in alerts {
                // Due at once. An event already owed to this webhook (the
                // same session, ruleset and rule) stays as it is.
                enqueued += tx.execute(
                    "INSERT INTO outbox (webhook, event_id, payload, created_at, next_attempt_at) \
                     VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (webhook, event_id) DO NOTHING",
                    &[
                        alert.webhook.as_str().into(),
                        alert.event_id.as_str().into(),
                        alert.payload.as_str().into(),
                        created_at.as_str().into(),
                    ],
                )? as usize;
            }
            Ok(StoredWithAlerts { written: Written::Stored, enqueued })
        })
    }

    /// Up to `limit` undelivered alerts for `webhooks` due at `now`, oldest
    /// first, each leased for `lease` (not due again until then, unless
    /// marked or rescheduled sooner). Rows another host claimed meanwhile
    /// are left out; so are those of webhooks not named, which wait.
    pub fn claim_due_alerts(
        &self,
        now: DateTime<Utc>,
        webhooks: &[String],
        limit: usize,
        lease: Duration,
    ) -> anyhow::Result<Vec<OutboxRow>> {
        if webhooks.is_empty() {
            return Ok(Vec::new());
        }
        let leased_until = instant(&(now + chrono::Duration::from_std(lease)?));
        let mut args: Vec<SqlValue> = vec![instant(&now).into()];
        args.extend(webhooks.iter().map(|w| SqlValue::from(w.as_str())));
        let names: Vec<String> = (2..=args.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE delivered_at IS NULL AND next_attempt_at <= ?1 \
             AND webhook IN ({}) ORDER BY id LIMIT {}",
            names.join(", "),
            limit.clamp(1, i64::MAX as usize)
        );
        self.db.transaction(|tx| {
            let rows = tx.query(&sql, &args)?;
            let mut claimed = Vec::with_capacity(rows.len());
            for row in rows {
                let mut alert = outbox_row(&row)?;
                // Compare-and-set on the schedule read above: under
                // PostgreSQL's read committed, a host that claimed the row
                // first has moved it, and this update changes nothing.
                let changed = tx.execute(
                    "UPDATE outbox SET next_attempt_at = ?1 \
                     WHERE id = ?2 AND next_attempt_at = ?3 AND delivered_at IS NULL",
                    &[leased_until.as_str().into(), alert.id.into(), alert.next_attempt_at.as_str().into()],
                )?;
                if changed == 1 {
                    alert.next_attempt_at = leased_until.clone();
                    claimed.push(alert);
                }
            }
            Ok(claimed)
        })
    }

    /// Records a delivery: the webhook answered `status` (2xx).
    pub fn mark_alert_delivered(&self, id: i64, status: u16, at: DateTime<Utc>) -> anyhow::Result<()> {
        self.db.transaction(|tx| {
            tx.execute(
                "UPDATE outbox SET delivered_at = ?2, attempts = attempts + 1, last_status = ?3, last_error = NULL \
                 WHERE id = ?1 AND delivered_at IS NULL",
                &[id.into(), instant(&at).into(), i64::from(status).into()],
            )?;
            Ok(())
        })
    }

    /// Records a failed attempt and when to try again. `status` is the
    /// answer's, when one came.
    pub fn reschedule_alert(
        &self,
        id: i64,
        next_attempt_at: DateTime<Utc>,
        status: Option<u16>,
        error: &str,
    ) -> anyhow::Result<()> {
        self.db.transaction(|tx| {
            tx.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_status = ?3, last_error = ?4 \
                 WHERE id = ?1 AND delivered_at IS NULL",
                &[id.into(), instant(&next_attempt_at).into(), status.map(i64::from).into(), error.into()],
            )?;
            Ok(())
        })
    }

    /// Undelivered alerts per webhook (webhooks owed nothing are absent).
    pub fn pending_alerts(&self) -> anyhow::Result<Vec<(String, u64)>> {
        self.db.transaction(|tx| {
            tx.query(
                "SELECT webhook, COUNT(*) FROM outbox WHERE delivered_at IS NULL GROUP BY webhook ORDER BY webhook",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.int(1)? as u64)))
            .collect()
        })
    }

    /// Forgets alerts delivered before `before`; returns how many. The
    /// outbox would otherwise grow with every alert ever sent.
    pub fn prune_delivered_alerts(&self, before: DateTime<Utc>) -> anyhow::Result<u64> {
        self.db.transaction(|tx| {
            tx.execute(
                "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < ?1",
                &[instant(&before).into()],
            )
        })
    }

    /// Every outbox row, in the order enqueued (for inspection and tests).
    pub fn outbox(&self) -> anyhow::Result<Vec<OutboxRow>> {
        self.db.transaction(|tx| {
            tx.query(&format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id"), &[])?.iter().map(outbox_row).collect()
        })
    }
}

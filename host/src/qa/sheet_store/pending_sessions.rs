//! The sessions `serve`'s real-time QA is waiting to inspect (legs arrived,
//! settle or Contact Lens analysis not yet), kept so that a restart, even
//! a kill -9, resumes them (see `serve/realtime_qa.rs`).
//!
//! A row belongs to the host holding the session in memory (`owner`), and
//! carries the session's change count (`version`): a write of an older
//! state never replaces a newer one, and the removal after an evaluation
//! leaves a row a newer record rewrote meanwhile. The state is opaque here:
//! JSON real-time QA writes and reads back.

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::database::SqlRow;
use super::{instant, SheetStore};

/// One pending session as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct PendingSessionRow {
    pub session_id: String,
    /// The host that holds the session: `<hostname>:<sink>`.
    pub owner: String,
    /// Bumped by every change of the session in its owner's memory.
    pub version: u64,
    /// JSON, as real-time QA keeps it.
    pub state: String,
    /// When the session's first record arrived (kept from the first write).
    pub first_seen_at: DateTime<Utc>,
    /// The earliest it may be evaluated: its last record and the settle time.
    pub due_at: DateTime<Utc>,
}

fn pending_row(row: &SqlRow) -> anyhow::Result<PendingSessionRow> {
    let time = |i: usize| -> anyhow::Result<DateTime<Utc>> {
        let text = row.text(i)?;
        Ok(DateTime::parse_from_rfc3339(&text)
            .with_context(|| format!("a pending session's time `{text}` is not RFC 3339"))?
            .with_timezone(&Utc))
    };
    Ok(PendingSessionRow {
        session_id: row.text(0)?,
        owner: row.text(1)?,
        version: u64::try_from(row.int(2)?).unwrap_or(0),
        state: row.text(3)?,
        first_seen_at: time(4)?,
        due_at: time(5)?,
    })
}

impl SheetStore {
    /// Writes pending sessions in one transaction. A row already there from
    /// the same owner is replaced only by a newer version (two ingests of
    /// one session may commit out of order); one from another owner is
    /// taken over (that host no longer holds the only copy of the session).
    pub fn upsert_pending_sessions(&self, rows: &[PendingSessionRow]) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.db.transaction(|tx| {
            for r in rows {
                tx.execute(
                    "INSERT INTO pending_sessions (session_id, owner, version, state, first_seen_at, due_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (session_id) DO UPDATE SET owner = excluded.owner, version = excluded.version, \
                     state = excluded.state, due_at = excluded.due_at \
                     WHERE pending_sessions.owner <> excluded.owner OR pending_sessions.version < excluded.version",
                    &[
                        r.session_id.as_str().into(),
                        r.owner.as_str().into(),
                        i64::try_from(r.version).unwrap_or(i64::MAX).into(),
                        r.state.as_str().into(),
                        instant(&r.first_seen_at).into(),
                        instant(&r.due_at).into(),
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Removes a session once its sheet is stored: only `owner`'s row, and
    /// only up to `version` (a newer record keeps the session pending).
    /// Whether a row was removed.
    pub fn remove_pending_session(&self, owner: &str, session_id: &str, version: u64) -> anyhow::Result<bool> {
        let version = i64::try_from(version).unwrap_or(i64::MAX);
        self.db.transaction(|tx| {
            Ok(tx.execute(
                "DELETE FROM pending_sessions WHERE session_id = ?1 AND owner = ?2 AND version <= ?3",
                &[session_id.into(), owner.into(), version.into()],
            )? > 0)
        })
    }

    /// The pending sessions of `owner` (`None`: of every host), oldest first.
    pub fn pending_sessions(&self, owner: Option<&str>) -> anyhow::Result<Vec<PendingSessionRow>> {
        const COLUMNS: &str = "session_id, owner, version, state, first_seen_at, due_at";
        let rows = self.db.transaction(|tx| match owner {
            Some(owner) => tx.query(
                &format!("SELECT {COLUMNS} FROM pending_sessions WHERE owner = ?1 ORDER BY first_seen_at, session_id"),
                &[owner.into()],
            ),
            None => {
                tx.query(&format!("SELECT {COLUMNS} FROM pending_sessions ORDER BY first_seen_at, session_id"), &[])
            }
        })?;
        rows.iter().map(pending_row).collect()
    }

    /// Whether `session_id` is stored under `ruleset_version`: a resumed
    /// session whose sheet was stored just before a crash is not evaluated
    /// (nor counted) again.
    pub fn has_evaluation(&self, session_id: &str, ruleset_version: &str) -> anyhow::Result<bool> {
        self.db.transaction(|tx| {
            Ok(tx
                .query_one(
                    "SELECT 1 FROM evaluations WHERE session_id = ?1 AND ruleset_version = ?2",
                    &[session_id.into(), ruleset_version.into()],
                )?
                .is_some())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::qa::sheet_store::SheetStoreUrl;

    fn row(session: &str, owner: &str, version: u64, state: &str) -> PendingSessionRow {
        let t: DateTime<Utc> = "2026-11-20T01:00:00.000Z".parse().unwrap();
        PendingSessionRow {
            session_id: session.into(),
            owner: owner.into(),
            version,
            state: state.into(),
            first_seen_at: t,
            due_at: t + chrono::Duration::seconds(version as i64),
        }
    }

    #[test]
    fn a_late_write_never_replaces_a_newer_state_nor_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SheetStoreUrl::Sqlite(dir.path().join("s.db")).open().unwrap();
        store.upsert_pending_sessions(&[row("s1", "a", 2, "two"), row("s2", "a", 1, "x")]).unwrap();
        store.upsert_pending_sessions(&[row("s1", "a", 1, "one")]).unwrap();
        assert_eq!(store.pending_sessions(Some("a")).unwrap()[0].state, "two");
        store.upsert_pending_sessions(&[row("s1", "a", 3, "three")]).unwrap();
        let rows = store.pending_sessions(Some("a")).unwrap();
        assert_eq!((rows[0].version, rows[0].state.as_str()), (3, "three"));
        assert_eq!(rows[0].first_seen_at, row("s1", "a", 1, "").first_seen_at, "kept from the first write");

        // Evaluated at version 2 while version 3 was written: it stays.
        assert!(!store.remove_pending_session("a", "s1", 2).unwrap());
        assert!(store.remove_pending_session("a", "s1", 3).unwrap());

        // Another host takes a session over, whatever its count; each host
        // resumes its own.
        store.upsert_pending_sessions(&[row("s2", "b", 1, "b's")]).unwrap();
        assert!(store.pending_sessions(Some("a")).unwrap().is_empty());
        assert_eq!(store.pending_sessions(Some("b")).unwrap()[0].state, "b's");
        assert!(!store.remove_pending_session("a", "s2", 9).unwrap());
        assert_eq!(store.pending_sessions(None).unwrap().len(), 1);
    }
}

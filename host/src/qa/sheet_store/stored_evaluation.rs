//! A stored evaluation read back whole: the session the rules saw and the
//! sheet they made, for re-running rules over history.

use anyhow::Context;
use rusqlite::OptionalExtension;

use super::SqliteSheetStore;
use crate::qa::QaSheet;
use crate::session::Session;

pub struct StoredEvaluation {
    pub session: Session,
    pub sheet: QaSheet,
    pub ruleset_version: String,
}

impl SqliteSheetStore {
    /// The latest evaluation of a session, whole.
    pub fn evaluation(&self, session_id: &str) -> anyhow::Result<Option<StoredEvaluation>> {
        let connection = self.connection.lock();
        let row: Option<(String, String, String)> = connection
            .query_row(
                "SELECT session, sheet, ruleset_version FROM evaluations WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
                [session_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let Some((session, sheet, ruleset_version)) = row else { return Ok(None) };
        Ok(Some(StoredEvaluation {
            session: Session::from_json(session.as_bytes())
                .with_context(|| format!("the stored session {session_id} no longer parses"))?,
            sheet: serde_json::from_str(&sheet).with_context(|| format!("the stored sheet of {session_id}"))?,
            ruleset_version,
        }))
    }
}

//! A stored evaluation read back whole: the session the rules saw and the
//! sheet they made, for re-running rules over history and for review.

use anyhow::Context;

use super::SheetStore;
use crate::qa::QaSheet;
use crate::session::Session;

pub struct StoredEvaluation {
    /// The evaluation's id in the store.
    pub id: i64,
    pub session: Session,
    pub sheet: QaSheet,
    pub ruleset_version: String,
}

impl SheetStore {
    /// The latest evaluation of a session, whole.
    pub fn evaluation(&self, session_id: &str) -> anyhow::Result<Option<StoredEvaluation>> {
        let row = self.db.transaction(|tx| {
            tx.query_one(
                "SELECT id, session, sheet, ruleset_version FROM evaluations WHERE session_id = ?1 \
                 ORDER BY id DESC LIMIT 1",
                &[session_id.into()],
            )
        })?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(StoredEvaluation {
            id: row.int(0)?,
            session: Session::from_json(row.text(1)?.as_bytes())
                .with_context(|| format!("the stored session {session_id} no longer parses"))?,
            sheet: serde_json::from_str(&row.text(2)?).with_context(|| format!("the stored sheet of {session_id}"))?,
            ruleset_version: row.text(3)?,
        }))
    }
}

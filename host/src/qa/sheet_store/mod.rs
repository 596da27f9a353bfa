//! The sheet store: every evaluation of a session kept with its sheet and
//! the session document the rules saw, so sheets can be listed, filtered,
//! reviewed and re-run later. One module per backend, each with the same
//! shape (`open`, `put`, `list`); the embedded default is SQLite
//! ([`sqlite_store`]).
//!
//! A write is idempotent by session id and ruleset version: the same
//! session evaluated again under the same ruleset stores nothing new; under
//! a new ruleset it adds an evaluation and keeps the old one.

pub mod sqlite_store;
mod stored_evaluation;

use std::path::{Path, PathBuf};

use anyhow::bail;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::sheet::{ItemStatus, QaSheet};
use crate::session::Session;

pub use sqlite_store::SqliteSheetStore;
pub use stored_evaluation::StoredEvaluation;

/// Where sheets are stored: `sqlite:PATH`, or a path ending in `.db`,
/// `.sqlite` or `.sqlite3`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SheetStoreUrl {
    Sqlite(PathBuf),
}

impl SheetStoreUrl {
    /// Whether `spec` names a sheet store rather than a file of sheets.
    pub fn names_a_store(spec: &str) -> bool {
        spec.starts_with("sqlite:")
            || spec.starts_with("postgres://")
            || spec.starts_with("postgresql://")
            || is_sqlite_file(Path::new(spec))
    }

    pub fn parse(spec: &str) -> anyhow::Result<SheetStoreUrl> {
        if let Some(path) = spec.strip_prefix("sqlite:") {
            if path.is_empty() {
                bail!("`sqlite:` needs a file path, e.g. sqlite:.callqa/sheets.db");
            }
            return Ok(SheetStoreUrl::Sqlite(PathBuf::from(path)));
        }
        let path = Path::new(spec);
        if is_sqlite_file(path) {
            return Ok(SheetStoreUrl::Sqlite(path.to_path_buf()));
        }
        if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            bail!("PostgreSQL sheet stores are not built yet (issue #19); use sqlite:PATH");
        }
        bail!("`{spec}` is not a sheet store: give sqlite:PATH (or a path ending in .db, .sqlite, .sqlite3)")
    }

    pub fn open(&self) -> anyhow::Result<SqliteSheetStore> {
        match self {
            SheetStoreUrl::Sqlite(path) => SqliteSheetStore::open(path),
        }
    }
}

fn is_sqlite_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "db" || e == "sqlite" || e == "sqlite3")
}

/// What a write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// A new evaluation was recorded.
    Stored,
    /// This session was already stored under this ruleset version.
    AlreadyStored,
}

/// Which evaluations a list returns. Empty fields do not filter.
#[derive(Clone, Debug, Default)]
pub struct SheetFilter {
    /// Contacts that began at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Contacts that began before this instant.
    pub until: Option<DateTime<Utc>>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// One level of the agent's hierarchy (`杭州客服中心`, `Team B`).
    pub team: Option<String>,
    /// Sheets with an item of this rule (with `outcome`: in that outcome).
    pub rule: Option<String>,
    pub outcome: Option<ItemStatus>,
    pub min_score: Option<f64>,
    pub max_score: Option<f64>,
    /// Every evaluation of each session, not only the latest.
    pub all_evaluations: bool,
    pub limit: usize,
}

/// One stored evaluation, as a list shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SheetRow {
    pub session_id: String,
    pub ruleset_version: String,
    pub evaluated_at: String,
    pub started_at: Option<String>,
    pub channel: String,
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    pub team: Option<String>,
    pub score: Option<f64>,
    pub grade: Option<String>,
    pub complete: bool,
    /// Items by outcome: `pass`, `fail`, `not-applicable`, `error`, `quarantined`.
    pub failed: Vec<String>,
}

/// The columns a sheet is filtered by, taken from its session.
pub(crate) struct SheetFacts {
    pub started_at: Option<DateTime<Utc>>,
    pub queue: Option<String>,
    pub agent_id: Option<String>,
    pub team: Option<String>,
}

impl SheetFacts {
    pub(crate) fn of(session: &Session) -> SheetFacts {
        let c = &session.contact;
        SheetFacts {
            started_at: c.initiated_at.or(c.connected_to_agent_at),
            queue: c.queue.clone(),
            agent_id: c.agent.as_ref().map(|a| a.id.clone()),
            team: c.agent.as_ref().filter(|a| !a.hierarchy.is_empty()).map(|a| a.hierarchy.join("/")),
        }
    }
}

/// A sheet to store, with what it was made from.
pub struct SheetRecord<'a> {
    pub sheet: &'a QaSheet,
    pub session: &'a Session,
    pub ruleset_version: &'a str,
    pub evaluated_at: DateTime<Utc>,
}

//! The embedded sheet store: one SQLite file (WAL mode), its schema applied
//! at open from the migrations in `migrations/`, numbered by SQLite's
//! `user_version`.

use std::path::Path;

use anyhow::{bail, Context};
use chrono::SecondsFormat;
use parking_lot::Mutex;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};

use super::{SheetFacts, SheetFilter, SheetRecord, SheetRow, Written};

/// The schema, in order; a store at `user_version` N has the first N applied.
const MIGRATIONS: &[&str] =
    &[include_str!("migrations/0001_evaluations.sql"), include_str!("migrations/0002_list_indexes.sql")];

pub struct SqliteSheetStore {
    pub(super) connection: Mutex<Connection>,
}

impl SqliteSheetStore {
    pub fn open(path: &Path) -> anyhow::Result<SqliteSheetStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut connection =
            Connection::open(path).with_context(|| format!("cannot open the sheet store {}", path.display()))?;
        // WAL: readers (a list, the workbench) never wait for the writer.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(10))?;
        migrate(&mut connection).with_context(|| format!("sheet store {}", path.display()))?;
        Ok(SqliteSheetStore { connection: Mutex::new(connection) })
    }

    /// Stores one evaluation, unless this session is stored under this
    /// ruleset version already.
    pub fn put(&self, record: &SheetRecord<'_>) -> anyhow::Result<Written> {
        self.put_all(std::slice::from_ref(record)).map(|w| w[0])
    }

    /// Stores evaluations in one transaction.
    pub fn put_all(&self, records: &[SheetRecord<'_>]) -> anyhow::Result<Vec<Written>> {
        let mut connection = self.connection.lock();
        let tx = connection.transaction()?;
        let mut written = Vec::with_capacity(records.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO evaluations (session_id, ruleset_version, evaluated_at, contact_id, channel, queue, \
                 agent_id, team, started_at, score, grade, complete, sheet, session) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
                 ON CONFLICT (session_id, ruleset_version) DO NOTHING",
            )?;
            let mut item = tx
                .prepare_cached("INSERT INTO items (evaluation_id, rule_id, outcome, score) VALUES (?1, ?2, ?3, ?4)")?;
            for r in records {
                let facts = SheetFacts::of(r.session);
                let changed = insert.execute(params![
                    r.sheet.session_id,
                    r.ruleset_version,
                    r.evaluated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    r.sheet.contact_id,
                    r.sheet.channel,
                    facts.queue,
                    facts.agent_id,
                    facts.team,
                    facts.started_at.map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
                    r.sheet.score,
                    r.sheet.grade,
                    r.sheet.complete,
                    serde_json::to_string(r.sheet)?,
                    serde_json::to_string(r.session)?,
                ])?;
                if changed == 0 {
                    written.push(Written::AlreadyStored);
                    continue;
                }
                let id = tx.last_insert_rowid();
                for i in &r.sheet.items {
                    item.execute(params![id, i.rule_id, i.outcome.as_str(), i.score])?;
                }
                written.push(Written::Stored);
            }
        }
        tx.commit().context("cannot commit the sheets")?;
        Ok(written)
    }

    /// Evaluations matching `filter`, the contacts that began last first.
    pub fn list(&self, filter: &SheetFilter) -> anyhow::Result<Vec<SheetRow>> {
        let connection = self.connection.lock();
        // The team's level, as the hierarchy paths stored that hold it.
        let paths = match &filter.team {
            Some(team) => {
                let paths = team_paths(&connection, team)?;
                if paths.is_empty() {
                    return Ok(Vec::new());
                }
                paths
            }
            None => Vec::new(),
        };
        let mut sql = String::from(
            "SELECT e.id, e.session_id, e.ruleset_version, e.evaluated_at, e.started_at, e.channel, e.queue, \
             e.agent_id, e.team, e.score, e.grade, e.complete FROM evaluations e WHERE 1 = 1",
        );
        let mut args: Vec<SqlValue> = Vec::new();
        // Each value bound once, named by its position: `?3`.
        let mut bind = |value: SqlValue| {
            args.push(value);
            format!("?{}", args.len())
        };
        let text = |s: &str| SqlValue::Text(s.to_owned());
        let instant = |t: &chrono::DateTime<chrono::Utc>| text(&t.to_rfc3339_opts(SecondsFormat::Millis, true));
        if let Some(t) = &filter.since {
            sql.push_str(&format!(" AND e.started_at >= {}", bind(instant(t))));
        }
        if let Some(t) = &filter.until {
            sql.push_str(&format!(" AND e.started_at < {}", bind(instant(t))));
        }
        if let Some(q) = &filter.queue {
            sql.push_str(&format!(" AND e.queue = {}", bind(text(q))));
        }
        if let Some(a) = &filter.agent {
            sql.push_str(&format!(" AND e.agent_id = {}", bind(text(a))));
        }
        match paths.as_slice() {
            [] => {}
            // One path: its week is a range of `evaluations_team`, in order.
            [path] => sql.push_str(&format!(" AND e.team = {}", bind(text(path)))),
            // Several: walked by start in `evaluations_started_team`, the
            // team read from the index (`+` keeps `evaluations_team`, which
            // would need every match sorted, out of the plan).
            paths => {
                let list: Vec<String> = paths.iter().map(|p| bind(text(p))).collect();
                sql.push_str(&format!(" AND +e.team IN ({})", list.join(", ")));
            }
        }
        let mut item = Vec::new();
        if let Some(rule) = &filter.rule {
            item.push(format!("i.rule_id = {}", bind(text(rule))));
        }
        if let Some(outcome) = filter.outcome {
            item.push(format!("i.outcome = {}", bind(text(outcome.as_str()))));
        }
        // SQLite tests the terms its index holds first, then the rest of
        // the row's, then the subqueries in the order written: the item
        // check (one lookup in `items`, and the more selective) before the
        // latest-evaluation check, which reads the row for its session id.
        if !item.is_empty() {
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM items i WHERE i.evaluation_id = e.id AND {})",
                item.join(" AND ")
            ));
        }
        if let Some(min) = filter.min_score {
            sql.push_str(&format!(" AND e.score >= {}", bind(SqlValue::Real(min))));
        }
        if let Some(max) = filter.max_score {
            sql.push_str(&format!(" AND e.score <= {}", bind(SqlValue::Real(max))));
        }
        if !filter.all_evaluations {
            sql.push_str(" AND e.id = (SELECT MAX(id) FROM evaluations latest WHERE latest.session_id = e.session_id)");
        }
        sql.push_str(&format!(
            " ORDER BY e.started_at DESC, e.id DESC LIMIT {}",
            filter.limit.clamp(1, i64::MAX as usize)
        ));

        let mut statement = connection.prepare(&sql)?;
        let mut failed_items = connection.prepare_cached(
            "SELECT rule_id FROM items WHERE evaluation_id = ?1 AND outcome = 'fail' ORDER BY rule_id",
        )?;
        let rows = statement.query_map(params_from_iter(args.iter()), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                SheetRow {
                    session_id: row.get(1)?,
                    ruleset_version: row.get(2)?,
                    evaluated_at: row.get(3)?,
                    started_at: row.get(4)?,
                    channel: row.get(5)?,
                    queue: row.get(6)?,
                    agent_id: row.get(7)?,
                    team: row.get(8)?,
                    score: row.get(9)?,
                    grade: row.get(10)?,
                    complete: row.get(11)?,
                    failed: Vec::new(),
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, mut sheet) = row?;
            sheet.failed = failed_items.query_map([id], |r| r.get(0))?.collect::<Result<_, _>>()?;
            out.push(sheet);
        }
        Ok(out)
    }

    /// The stored sheet (JSON) of a session's latest evaluation.
    pub fn sheet(&self, session_id: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let connection = self.connection.lock();
        let text: Option<String> = connection
            .query_row(
                "SELECT sheet FROM evaluations WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
                [session_id],
                |r| r.get(0),
            )
            .optional()?;
        text.map(|t| serde_json::from_str(&t).context("a stored sheet is not JSON")).transpose()
    }

    /// How many evaluations are stored.
    pub fn count(&self) -> anyhow::Result<u64> {
        let connection = self.connection.lock();
        Ok(connection.query_row("SELECT COUNT(*) FROM evaluations", [], |r| r.get::<_, i64>(0))? as u64)
    }
}

/// The hierarchy paths stored (`site/department/team`) that hold `team` as
/// one of their levels: the distinct paths, read by skipping through
/// `evaluations_team` (one lookup each), matched as the list always did.
fn team_paths(connection: &Connection, team: &str) -> anyhow::Result<Vec<String>> {
    let mut statement = connection.prepare_cached(
        "WITH RECURSIVE paths (team) AS ( \
             SELECT MIN(team) FROM evaluations \
             UNION ALL \
             SELECT (SELECT MIN(team) FROM evaluations WHERE team > paths.team) FROM paths \
             WHERE paths.team IS NOT NULL \
         ) \
         SELECT team FROM paths WHERE team = ?1 OR team LIKE ?1 || '/%' OR team LIKE '%/' || ?1 \
             OR team LIKE '%/' || ?1 || '/%'",
    )?;
    let paths = statement.query_map([team], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(paths)
}

/// Applies the migrations the file has not seen, each in a transaction.
fn migrate(connection: &mut Connection) -> anyhow::Result<()> {
    let at: usize = connection.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
    if at > MIGRATIONS.len() {
        bail!(
            "the store is at schema version {at}, newer than this callqa knows ({}): upgrade callqa",
            MIGRATIONS.len()
        );
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(at) {
        let tx = connection.transaction()?;
        tx.execute_batch(migration).with_context(|| format!("migration {} failed", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

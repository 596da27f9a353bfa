//! The sheet store: every evaluation of a session kept with its sheet and
//! the session document the rules saw, so sheets can be listed, filtered,
//! reviewed and re-run later. The queries are written once, over
//! [`database::Database`]; each backend is a module of the same shape
//! (`open`, its migrations): SQLite embedded by default
//! ([`sqlite_database`]), PostgreSQL for several hosts sharing one store
//! ([`postgres_database`]).
//!
//! A write is idempotent by session id and ruleset version: the same
//! session evaluated again under the same ruleset stores nothing new; under
//! a new ruleset it adds an evaluation and keeps the old one.

pub mod assignment;
pub mod calibration;
pub mod dashboard;
pub mod database;
pub mod outbox;
pub mod pending_sessions;
pub mod postgres_database;
pub mod review;
pub mod sqlite_database;
mod stored_evaluation;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use chrono::{DateTime, NaiveDate, SecondsFormat, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::sheet::{ItemStatus, QaSheet};
use crate::session::Session;
use database::{Database, SqlRow, SqlValue, Transaction};

pub use stored_evaluation::StoredEvaluation;

/// Where sheets are stored: `sqlite:PATH`, or a path ending in `.db`,
/// `.sqlite` or `.sqlite3`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SheetStoreUrl {
    Sqlite(PathBuf),
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`.
    Postgres(String),
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
            return Ok(SheetStoreUrl::Postgres(spec.to_owned()));
        }
        bail!(
            "`{spec}` is not a sheet store: give sqlite:PATH (or a path ending in .db, .sqlite, .sqlite3) or \
             postgres://USER@HOST/DB"
        )
    }

    /// Opens the store, creating or migrating its schema.
    pub fn open(&self) -> anyhow::Result<SheetStore> {
        let db: Box<dyn Database> = match self {
            SheetStoreUrl::Sqlite(path) => Box::new(sqlite_database::SqliteDatabase::open(path)?),
            SheetStoreUrl::Postgres(url) => Box::new(postgres_database::PostgresDatabase::open(url)?),
        };
        Ok(SheetStore { db })
    }
}

impl std::fmt::Display for SheetStoreUrl {
    /// The store as messages name it: never a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SheetStoreUrl::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            SheetStoreUrl::Postgres(url) => match url.parse::<postgres::Config>() {
                Ok(config) => f.write_str(&postgres_database::describe(&config)),
                Err(_) => f.write_str("postgres://(unparsable)"),
            },
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
    /// Reviewed by a person (`Some(true)`), or not yet (`Some(false)`).
    pub reviewed: Option<bool>,
    /// Sheets assigned to this reviewer.
    pub assigned_to: Option<String>,
    /// Only sheets of agents in one of these hierarchy levels (what a
    /// reviewer may see); `None`: no such limit.
    pub visible_teams: Option<Vec<String>>,
    /// Every evaluation of each session, not only the latest.
    pub all_evaluations: bool,
    /// Only sheets with an open dispute.
    pub disputed: bool,
    /// The contacts that began first, first (the list is newest first otherwise).
    pub oldest_first: bool,
    /// Only the rows after this one (the last row of the previous page).
    pub after: Option<PageCursor>,
    pub limit: usize,
}

/// Where a page ended: the contact start and id of its last row.
#[derive(Clone, Debug, PartialEq)]
pub struct PageCursor {
    pub started_at: String,
    pub id: i64,
}

impl PageCursor {
    pub fn of(row: &SheetRow) -> PageCursor {
        PageCursor { started_at: row.started_at.clone().unwrap_or_default(), id: row.id }
    }

    /// The opaque text an API client passes back: `<id>.<started_at>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.id, self.started_at)
    }

    pub fn decode(text: &str) -> anyhow::Result<PageCursor> {
        let (id, started_at) = text.split_once('.').context("a page cursor is `<id>.<started_at>`")?;
        Ok(PageCursor { started_at: started_at.to_owned(), id: id.parse().context("a page cursor's id is a number")? })
    }
}

/// One stored evaluation, as a list shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SheetRow {
    /// The evaluation's id in the store: what review and dispute name.
    pub id: i64,
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
    /// Whether a person reviewed the sheet; its score and grade are then theirs.
    pub reviewed: bool,
    pub assigned_to: Option<String>,
    pub acknowledged_at: Option<String>,
    /// The rules whose items failed (after review), shadow rules left out.
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

/// From (inclusive) and until (exclusive), each open when `None`.
pub type InstantRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// A range of days in a time zone (IANA name) as the instants that bound
/// it: from the start of `since` to the start of the day after `until`.
pub fn day_range(since: Option<NaiveDate>, until: Option<NaiveDate>, tz: &str) -> anyhow::Result<InstantRange> {
    let zone: Tz =
        tz.parse().map_err(|_| anyhow::anyhow!("{tz} is not an IANA time zone name like UTC or Asia/Shanghai"))?;
    // A day in the zone, as the instant it begins (the earliest, where a
    // change of clocks makes midnight ambiguous or absent).
    let day_start = |day: NaiveDate| {
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        zone.from_local_datetime(&midnight)
            .earliest()
            .or_else(|| zone.from_local_datetime(&(midnight + chrono::Duration::hours(1))).earliest())
            .map(|t| t.with_timezone(&Utc))
            .with_context(|| format!("{day} has no start in {zone}"))
    };
    if let (Some(since), Some(until)) = (since, until) {
        anyhow::ensure!(since <= until, "since {since} is after until {until}");
    }
    Ok((since.map(day_start).transpose()?, until.map(|d| day_start(d.succ_opt().unwrap_or(d))).transpose()?))
}

/// Instants as the store keeps them: RFC 3339 UTC to the millisecond, which
/// sorts as time does in both backends.
pub(crate) fn instant(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The store: every query, once, over whichever backend it was opened on.
pub struct SheetStore {
    pub(crate) db: Box<dyn Database>,
}

impl SheetStore {
    pub fn describe(&self) -> String {
        self.db.describe()
    }

    /// Stores one evaluation, unless this session is stored under this
    /// ruleset version already.
    pub fn put(&self, record: &SheetRecord<'_>) -> anyhow::Result<Written> {
        self.put_all(std::slice::from_ref(record)).map(|w| w[0])
    }

    /// Stores evaluations in one transaction.
    pub fn put_all(&self, records: &[SheetRecord<'_>]) -> anyhow::Result<Vec<Written>> {
        // Serialised once, outside the transaction a backend may retry.
        let documents: Vec<(String, String)> = records
            .iter()
            .map(|r| Ok((serde_json::to_string(r.sheet)?, serde_json::to_string(r.session)?)))
            .collect::<anyhow::Result<_>>()?;
        let rows: Vec<(&SheetRecord<'_>, &str, &str)> =
            records.iter().zip(&documents).map(|(r, (sheet, session))| (r, sheet.as_str(), session.as_str())).collect();
        self.db.transaction(|tx| {
            Ok(insert_evaluations(tx, &rows)?
                .into_iter()
                .map(|id| if id.is_some() { Written::Stored } else { Written::AlreadyStored })
                .collect())
        })
    }

    /// Evaluations matching `filter`, the contacts that began last first.
    pub fn list(&self, filter: &SheetFilter) -> anyhow::Result<Vec<SheetRow>> {
        let dialect = self.db.dialect();
        self.db.transaction(|tx| {
            let mut args: Vec<SqlValue> = Vec::new();
            let Some(ids) = matching_ids(tx, dialect, filter, &mut args)? else { return Ok(Vec::new()) };
            let order = if filter.oldest_first { "e.started_at, e.id" } else { "e.started_at DESC, e.id DESC" };
            let sql = format!(
                "SELECT {ROW_COLUMNS} FROM evaluations e WHERE e.id IN ({ids} ORDER BY {order} LIMIT {}) ORDER BY {order}",
                filter.limit.clamp(1, i64::MAX as usize)
            );
            let mut out = tx.query(&sql, &args)?.iter().map(sheet_row).collect::<anyhow::Result<Vec<_>>>()?;
            // The failed items of the whole page in one query: a round trip
            // per row is what PostgreSQL makes expensive.
            if !out.is_empty() {
                let ids: Vec<SqlValue> = out.iter().map(|r| r.id.into()).collect();
                let list: Vec<String> = (1..=ids.len()).map(|i| format!("?{i}")).collect();
                let failed = tx.query(
                    &format!(
                        "SELECT evaluation_id, rule_id FROM items WHERE evaluation_id IN ({}) AND shadow = 0 \
                         AND COALESCE(reviewed_outcome, outcome) = 'fail' ORDER BY rule_id",
                        list.join(", ")
                    ),
                    &ids,
                )?;
                let mut by_id: std::collections::HashMap<i64, Vec<String>> = std::collections::HashMap::new();
                for row in failed {
                    by_id.entry(row.int(0)?).or_default().push(row.text(1)?);
                }
                for sheet in &mut out {
                    sheet.failed = by_id.remove(&sheet.id).unwrap_or_default();
                }
            }
            Ok(out)
        })
    }

    /// The stored sheet (JSON) of a session's latest evaluation.
    pub fn sheet(&self, session_id: &str) -> anyhow::Result<Option<serde_json::Value>> {
        let text = self.db.transaction(|tx| {
            tx.query_one(
                "SELECT sheet FROM evaluations WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
                &[session_id.into()],
            )?
            .map(|r| r.text(0))
            .transpose()
        })?;
        text.map(|t| serde_json::from_str(&t).context("a stored sheet is not JSON")).transpose()
    }

    /// How many evaluations are stored.
    pub fn count(&self) -> anyhow::Result<u64> {
        self.db.transaction(|tx| {
            Ok(tx.query_one("SELECT COUNT(*) FROM evaluations", &[])?.map_or(Ok(0), |r| r.int(0))? as u64)
        })
    }
}

/// The columns [`sheet_row`] reads, in its order.
const ROW_COLUMNS: &str = "e.id, e.session_id, e.ruleset_version, e.evaluated_at, e.started_at, e.channel, e.queue, \
     e.agent_id, e.team, COALESCE(e.reviewed_score, e.score), COALESCE(e.reviewed_grade, e.grade), e.complete, \
     e.reviewed_at IS NOT NULL, e.assigned_to, e.acknowledged_at";

fn sheet_row(row: &SqlRow) -> anyhow::Result<SheetRow> {
    Ok(SheetRow {
        id: row.int(0)?,
        session_id: row.text(1)?,
        ruleset_version: row.text(2)?,
        evaluated_at: row.text(3)?,
        started_at: row.opt_text(4)?,
        channel: row.text(5)?,
        queue: row.opt_text(6)?,
        agent_id: row.opt_text(7)?,
        team: row.opt_text(8)?,
        score: row.opt_real(9)?,
        grade: row.opt_text(10)?,
        complete: row.bool(11)?,
        reviewed: row.bool(12)?,
        assigned_to: row.opt_text(13)?,
        acknowledged_at: row.opt_text(14)?,
        failed: Vec::new(),
    })
}

/// Inserts one evaluation and its items; `None` when the session is stored
/// under this ruleset version already.
pub(crate) fn insert_evaluation(
    tx: &mut dyn Transaction,
    r: &SheetRecord<'_>,
    sheet: &str,
    session: &str,
) -> anyhow::Result<Option<i64>> {
    Ok(insert_evaluations(tx, &[(r, sheet, session)])?[0])
}

/// Evaluations (and items) inserted per statement: a few statements per
/// batch instead of 13 per sheet, which is what a network round trip to
/// PostgreSQL costs; within SQLite's 32,766 parameters.
const EVALUATIONS_PER_STATEMENT: usize = 200;
const ITEMS_PER_STATEMENT: usize = 1_000;

/// Inserts evaluations and their items; per record its id, or `None` when
/// the session is stored under this ruleset version already (before, or
/// earlier in the same batch).
pub(crate) fn insert_evaluations(
    tx: &mut dyn Transaction,
    records: &[(&SheetRecord<'_>, &str, &str)],
) -> anyhow::Result<Vec<Option<i64>>> {
    const COLUMNS: usize = 14;
    let mut ids = Vec::with_capacity(records.len());
    for chunk in records.chunks(EVALUATIONS_PER_STATEMENT) {
        let mut params: Vec<SqlValue> = Vec::with_capacity(chunk.len() * COLUMNS);
        for (r, sheet, session) in chunk {
            let facts = SheetFacts::of(r.session);
            params.extend([
                r.sheet.session_id.as_str().into(),
                r.ruleset_version.into(),
                instant(&r.evaluated_at).into(),
                r.sheet.contact_id.as_str().into(),
                r.sheet.channel.as_str().into(),
                facts.queue.into(),
                facts.agent_id.into(),
                facts.team.into(),
                facts.started_at.as_ref().map(instant).into(),
                r.sheet.score.into(),
                r.sheet.grade.clone().into(),
                r.sheet.complete.into(),
                (*sheet).into(),
                (*session).into(),
            ]);
        }
        let sql = format!(
            "INSERT INTO evaluations (session_id, ruleset_version, evaluated_at, contact_id, channel, queue, \
             agent_id, team, started_at, score, grade, complete, sheet, session) VALUES {} \
             ON CONFLICT (session_id, ruleset_version) DO NOTHING RETURNING id, session_id, ruleset_version",
            placeholders(chunk.len(), COLUMNS)
        );
        let mut inserted: std::collections::HashMap<(String, String), i64> = tx
            .query(&sql, &params)?
            .iter()
            .map(|row| Ok(((row.text(1)?, row.text(2)?), row.int(0)?)))
            .collect::<anyhow::Result<_>>()?;
        // A session twice in the batch was inserted once: the first has it.
        ids.extend(
            chunk.iter().map(|(r, _, _)| inserted.remove(&(r.sheet.session_id.clone(), r.ruleset_version.to_owned()))),
        );
    }
    let items: Vec<(i64, &crate::qa::SheetItem)> = records
        .iter()
        .zip(&ids)
        .filter_map(|((r, _, _), id)| id.map(|id| r.sheet.items.iter().map(move |i| (id, i))))
        .flatten()
        .collect();
    for chunk in items.chunks(ITEMS_PER_STATEMENT) {
        let params: Vec<SqlValue> = chunk
            .iter()
            .flat_map(|(id, i)| {
                [(*id).into(), i.rule_id.as_str().into(), i.outcome.as_str().into(), i.score.into(), i.shadow.into()]
            })
            .collect();
        tx.execute(
            &format!(
                "INSERT INTO items (evaluation_id, rule_id, outcome, score, shadow) VALUES {}",
                placeholders(chunk.len(), 5)
            ),
            &params,
        )?;
    }
    Ok(ids)
}

/// `(?1, ?2), (?3, ?4)` for `rows` rows of `columns` values.
fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", (1..=columns).map(|c| format!("?{}", r * columns + c)).collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The query (`SELECT e.id FROM evaluations e WHERE …`, unordered) for the
/// ids of the evaluations `filter` matches, binding its values into `args`;
/// `None` when nothing can match (a team no sheet has). Shared by the list,
/// its count and the dashboard, so what a page shows and what its figures
/// count are the same rows.
pub(crate) fn matching_ids(
    tx: &mut dyn Transaction,
    dialect: database::Dialect,
    filter: &SheetFilter,
    args: &mut Vec<SqlValue>,
) -> anyhow::Result<Option<String>> {
    // The team's level, as the hierarchy paths stored that hold it;
    // within the teams the caller may see.
    let mut paths = match &filter.team {
        Some(team) => Some(team_paths(tx, team)?),
        None => None,
    };
    if let Some(teams) = &filter.visible_teams {
        let mut allowed = Vec::new();
        for team in teams {
            allowed.extend(team_paths(tx, team)?);
        }
        paths = Some(match paths {
            Some(asked) => asked.into_iter().filter(|p| allowed.contains(p)).collect(),
            None => allowed,
        });
    }
    if paths.as_ref().is_some_and(Vec::is_empty) {
        return Ok(None);
    }
    let paths = paths.unwrap_or_default();
    // The page's ids first, then their rows: the ids come from the
    // indexes alone, where asking for the columns too leads
    // PostgreSQL to fetch every row of the week from the heap.
    let mut sql = String::from("SELECT e.id FROM evaluations e WHERE 1 = 1");
    // Each value bound once, named by its position: `?3`.
    let mut bind = |value: SqlValue| {
        args.push(value);
        format!("?{}", args.len())
    };
    if let Some(t) = &filter.since {
        sql.push_str(&format!(" AND e.started_at >= {}", bind(instant(t).into())));
    }
    if let Some(t) = &filter.until {
        sql.push_str(&format!(" AND e.started_at < {}", bind(instant(t).into())));
    }
    if let Some(q) = &filter.queue {
        sql.push_str(&format!(" AND e.queue = {}", bind(q.as_str().into())));
    }
    if let Some(a) = &filter.agent {
        sql.push_str(&format!(" AND e.agent_id = {}", bind(a.as_str().into())));
    }
    match paths.as_slice() {
        [] => {}
        // One path: its week is a range of `evaluations_team`, in order.
        [path] => sql.push_str(&format!(" AND e.team = {}", bind(path.as_str().into()))),
        // Several: walked by start in `evaluations_started_team`, the
        // team read from the index (SQLite's `+` keeps
        // `evaluations_team`, which would need every match sorted,
        // out of the plan).
        paths => {
            let list: Vec<String> = paths.iter().map(|p| bind(p.as_str().into())).collect();
            sql.push_str(&format!(" AND {} IN ({})", dialect.unindexed("e.team"), list.join(", ")));
        }
    }
    let mut item = Vec::new();
    if let Some(rule) = &filter.rule {
        item.push(format!("i.rule_id = {}", bind(rule.as_str().into())));
    }
    if let Some(outcome) = filter.outcome {
        item.push(format!("COALESCE(i.reviewed_outcome, i.outcome) = {}", bind(outcome.as_str().into())));
    }
    // SQLite tests the terms its index holds first, then the rest of
    // the row's, then the subqueries in the order written: the item
    // check (one lookup in `items`, and the more selective) before
    // the latest-evaluation check, which reads the row for its
    // session id.
    if !item.is_empty() {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM items i WHERE i.evaluation_id = e.id AND {})",
            item.join(" AND ")
        ));
    }
    if let Some(min) = filter.min_score {
        sql.push_str(&format!(" AND COALESCE(e.reviewed_score, e.score) >= {}", bind(min.into())));
    }
    if let Some(max) = filter.max_score {
        sql.push_str(&format!(" AND COALESCE(e.reviewed_score, e.score) <= {}", bind(max.into())));
    }
    match filter.reviewed {
        Some(true) => sql.push_str(" AND e.reviewed_at IS NOT NULL"),
        Some(false) => sql.push_str(" AND e.reviewed_at IS NULL"),
        None => {}
    }
    if let Some(reviewer) = &filter.assigned_to {
        sql.push_str(&format!(" AND e.assigned_to = {}", bind(reviewer.as_str().into())));
    }
    if !filter.all_evaluations {
        sql.push_str(" AND e.id = (SELECT MAX(id) FROM evaluations latest WHERE latest.session_id = e.session_id)");
    }
    if filter.disputed {
        sql.push_str(" AND EXISTS (SELECT 1 FROM disputes d WHERE d.evaluation_id = e.id AND d.state = 'open')");
    }
    if let Some(after) = &filter.after {
        // Keyset paging: the rows after the last one of the previous page.
        let (started, id) = (bind(after.started_at.clone().into()), bind(after.id.into()));
        let past = if filter.oldest_first { ">" } else { "<" };
        sql.push_str(&format!(
            " AND (COALESCE(e.started_at, '') {past} {started} OR (COALESCE(e.started_at, '') = {started} AND e.id {past} {id}))"
        ));
    }
    Ok(Some(sql))
}

/// The hierarchy paths stored (`site/department/team`) that hold `team` as
/// one of their levels: the distinct paths, read by skipping through
/// `evaluations_team` (one lookup each), matched as the list always did.
fn team_paths(tx: &mut dyn Transaction, team: &str) -> anyhow::Result<Vec<String>> {
    tx.query(
        "WITH RECURSIVE paths (team) AS ( \
             SELECT MIN(team) FROM evaluations \
             UNION ALL \
             SELECT (SELECT MIN(team) FROM evaluations WHERE team > paths.team) FROM paths \
             WHERE paths.team IS NOT NULL \
         ) \
         SELECT team FROM paths WHERE team = ?1 OR team LIKE ?1 || '/%' OR team LIKE '%/' || ?1 \
             OR team LIKE '%/' || ?1 || '/%'",
        &[team.into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

//! The embedded backend: one SQLite file (WAL mode), its schema applied at
//! open from `migrations/sqlite/`, numbered by SQLite's `user_version`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use parking_lot::Mutex;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params_from_iter, Connection, TransactionBehavior};

use super::database::{Database, Dialect, SqlRow, SqlValue, Transaction};

/// The schema, in order; a file at `user_version` N has the first N applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_evaluations.sql"),
    include_str!("migrations/sqlite/0002_list_indexes.sql"),
    include_str!("migrations/sqlite/0003_workflow.sql"),
    include_str!("migrations/sqlite/0004_list_order.sql"),
];

pub struct SqliteDatabase {
    path: PathBuf,
    connection: Mutex<Connection>,
}

impl SqliteDatabase {
    pub fn open(path: &Path) -> anyhow::Result<SqliteDatabase> {
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
        Ok(SqliteDatabase { path: path.to_path_buf(), connection: Mutex::new(connection) })
    }
}

impl Database for SqliteDatabase {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn run(&self, work: &mut dyn FnMut(&mut dyn Transaction) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let mut connection = self.connection.lock();
        // IMMEDIATE: a transaction that reads then writes takes the write
        // lock first, instead of failing with SQLITE_BUSY when another
        // process (a second `check`, `sheets`) wrote in between.
        let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
        work(&mut SqliteTransaction(&tx))?;
        tx.commit().context("cannot commit to the sheet store")
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

struct SqliteTransaction<'a>(&'a rusqlite::Transaction<'a>);

fn bind(params: &[SqlValue]) -> impl Iterator<Item = Value> + '_ {
    params.iter().map(|p| match p {
        SqlValue::Null => Value::Null,
        SqlValue::Int(n) => Value::Integer(*n),
        SqlValue::Real(n) => Value::Real(*n),
        SqlValue::Text(s) => Value::Text(s.clone()),
    })
}

impl Transaction for SqliteTransaction<'_> {
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> anyhow::Result<u64> {
        let mut statement = self.0.prepare_cached(sql).with_context(|| format!("SQL: {sql}"))?;
        Ok(statement.execute(params_from_iter(bind(params)))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> anyhow::Result<Vec<SqlRow>> {
        let mut statement = self.0.prepare_cached(sql).with_context(|| format!("SQL: {sql}"))?;
        let columns = statement.column_count();
        let mut rows = statement.query(params_from_iter(bind(params)))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(n) => SqlValue::Int(n),
                    ValueRef::Real(n) => SqlValue::Real(n),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => bail!("column {i} of `{sql}` is a blob"),
                });
            }
            out.push(SqlRow(values));
        }
        Ok(out)
    }
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

//! The little the sheet store needs of a SQL database, so its queries are
//! written once for both backends: transactions that execute and query
//! with positional parameters (`?1`, `?2`), values of four kinds, and the
//! few places the dialects differ.
//!
//! Each backend (`sqlite_database.rs`, `postgres_database.rs`) implements
//! [`Database`] and keeps its own schema migrations, since DDL is where the
//! two differ most.

use anyhow::{anyhow, bail};

/// A parameter or a column value.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl SqlValue {
    pub fn text(s: impl Into<String>) -> SqlValue {
        SqlValue::Text(s.into())
    }
}

impl From<&str> for SqlValue {
    fn from(s: &str) -> SqlValue {
        SqlValue::Text(s.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(s: String) -> SqlValue {
        SqlValue::Text(s)
    }
}

impl From<i64> for SqlValue {
    fn from(n: i64) -> SqlValue {
        SqlValue::Int(n)
    }
}

impl From<f64> for SqlValue {
    fn from(n: f64) -> SqlValue {
        SqlValue::Real(n)
    }
}

impl From<f32> for SqlValue {
    fn from(n: f32) -> SqlValue {
        SqlValue::Real(n.into())
    }
}

impl From<bool> for SqlValue {
    fn from(b: bool) -> SqlValue {
        SqlValue::Int(b as i64)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> SqlValue {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// One result row, its columns in the order the query named them.
#[derive(Clone, Debug)]
pub struct SqlRow(pub Vec<SqlValue>);

impl SqlRow {
    fn at(&self, i: usize) -> anyhow::Result<&SqlValue> {
        self.0.get(i).ok_or_else(|| anyhow!("the query returned no column {i}"))
    }

    pub fn text(&self, i: usize) -> anyhow::Result<String> {
        self.opt_text(i)?.ok_or_else(|| anyhow!("column {i} is NULL"))
    }

    pub fn opt_text(&self, i: usize) -> anyhow::Result<Option<String>> {
        match self.at(i)? {
            SqlValue::Null => Ok(None),
            SqlValue::Text(s) => Ok(Some(s.clone())),
            other => bail!("column {i} is {other:?}, not text"),
        }
    }

    pub fn int(&self, i: usize) -> anyhow::Result<i64> {
        self.opt_int(i)?.ok_or_else(|| anyhow!("column {i} is NULL"))
    }

    pub fn opt_int(&self, i: usize) -> anyhow::Result<Option<i64>> {
        match self.at(i)? {
            SqlValue::Null => Ok(None),
            SqlValue::Int(n) => Ok(Some(*n)),
            other => bail!("column {i} is {other:?}, not an integer"),
        }
    }

    pub fn opt_real(&self, i: usize) -> anyhow::Result<Option<f64>> {
        match self.at(i)? {
            SqlValue::Null => Ok(None),
            SqlValue::Real(n) => Ok(Some(*n)),
            // SQLite keeps a REAL that is whole as written: 1.0 may read back as 1.
            SqlValue::Int(n) => Ok(Some(*n as f64)),
            other => bail!("column {i} is {other:?}, not a number"),
        }
    }

    pub fn bool(&self, i: usize) -> anyhow::Result<bool> {
        Ok(self.int(i)? != 0)
    }
}

/// What differs between the dialects in the queries themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `expr` where the planner must not use an index for it. SQLite's
    /// unary `+` does that; PostgreSQL's planner costs its choices and
    /// needs no hint (and has no unary `+` on text).
    pub fn unindexed(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("+{expr}"),
            Dialect::Postgres => expr.to_owned(),
        }
    }
}

/// One transaction: committed when the closure given to
/// [`Database::transaction`] returns `Ok`, rolled back otherwise.
pub trait Transaction {
    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> anyhow::Result<u64>;
    fn query(&mut self, sql: &str, params: &[SqlValue]) -> anyhow::Result<Vec<SqlRow>>;

    fn query_one(&mut self, sql: &str, params: &[SqlValue]) -> anyhow::Result<Option<SqlRow>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
}

/// A database the sheet store keeps its tables in. Blocking: async callers
/// use `spawn_blocking` (PostgreSQL's client runs its own runtime inside).
pub trait Database: Send + Sync {
    fn dialect(&self) -> Dialect;

    /// Runs `work` in one transaction. A backend may retry it on a
    /// serialization conflict, so `work` must be safe to run again.
    fn run(&self, work: &mut dyn FnMut(&mut dyn Transaction) -> anyhow::Result<()>) -> anyhow::Result<()>;

    /// Where the data lives, for messages (no password).
    fn describe(&self) -> String;
}

impl dyn Database {
    /// [`Database::run`] for a closure that returns a value.
    pub fn transaction<R>(&self, mut work: impl FnMut(&mut dyn Transaction) -> anyhow::Result<R>) -> anyhow::Result<R> {
        let mut out = None;
        self.run(&mut |tx| {
            out = Some(work(tx)?);
            Ok(())
        })?;
        out.ok_or_else(|| anyhow!("the transaction returned nothing"))
    }
}

/// `?N` placeholders as PostgreSQL's `$N`, outside quoted text.
pub fn numbered_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        assert_eq!(
            numbered_placeholders("SELECT a FROM t WHERE b = ?1 AND c LIKE ?2 || '/%?3' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c LIKE $2 || '/%?3' AND d = $12"
        );
    }
}

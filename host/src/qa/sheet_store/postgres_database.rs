//! The shared backend: PostgreSQL, for several `serve` hosts writing one
//! store. Its schema is applied at open from `migrations/postgres/` (the
//! same versions as SQLite's), under an advisory lock so two hosts starting
//! together do not both migrate.
//!
//! One connection per store, as for SQLite, re-opened when the server went
//! away; statements are prepared once per connection.

use std::collections::HashMap;
use std::error::Error as StdError;

use anyhow::{bail, Context};
use bytes::BytesMut;
use parking_lot::Mutex;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, Config, NoTls, Statement};

use super::database::{numbered_placeholders, Database, Dialect, SqlRow, SqlValue, Transaction};

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_evaluations.sql"),
    include_str!("migrations/postgres/0002_list_indexes.sql"),
    include_str!("migrations/postgres/0003_workflow.sql"),
    include_str!("migrations/postgres/0004_list_order.sql"),
];

/// Any number, so two hosts migrating one database take turns.
const MIGRATION_LOCK: i64 = 0x63_61_6c_6c_71_61;

pub struct PostgresDatabase {
    config: Config,
    described: String,
    connection: Mutex<Option<Connection>>,
}

struct Connection {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PostgresDatabase {
    pub fn open(url: &str) -> anyhow::Result<PostgresDatabase> {
        let mut config: Config =
            url.parse().context("not a PostgreSQL URL (postgres://USER[:PASSWORD]@HOST[:PORT]/DB)")?;
        // The list's statements are prepared once, but how selective a
        // team's week is depends on the values: a generic plan (chosen
        // after five runs) reads the whole week from the heap and sorts it.
        let options = config.get_options().map(|o| format!("{o} ")).unwrap_or_default();
        config.options(&format!("{options}-c plan_cache_mode=force_custom_plan"));
        let described = describe(&config);
        let db = PostgresDatabase { config, described, connection: Mutex::new(None) };
        let mut connection = db.connect()?;
        migrate(&mut connection.client).with_context(|| format!("sheet store {}", db.described))?;
        *db.connection.lock() = Some(connection);
        Ok(db)
    }

    fn connect(&self) -> anyhow::Result<Connection> {
        let client = self
            .config
            .connect(NoTls)
            .with_context(|| format!("cannot connect to the sheet store {}", self.described))?;
        Ok(Connection { client, statements: HashMap::new() })
    }
}

pub(crate) fn describe(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_default();
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{host}:{port}/{}", config.get_dbname().unwrap_or(""))
}

impl Database for PostgresDatabase {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn run(&self, work: &mut dyn FnMut(&mut dyn Transaction) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let mut slot = self.connection.lock();
        if slot.as_ref().is_none_or(|c| c.client.is_closed()) {
            *slot = Some(self.connect()?);
        }
        let connection = slot.as_mut().expect("connected above");
        let result = (|| {
            let tx = connection.client.transaction()?;
            let mut wrapped = PostgresTransaction { tx, statements: &mut connection.statements };
            work(&mut wrapped)?;
            wrapped.tx.commit().context("cannot commit to the sheet store")
        })();
        if result.is_err() && connection.client.is_closed() {
            // The next call connects afresh instead of failing forever.
            *slot = None;
        }
        result
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}

struct PostgresTransaction<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

impl PostgresTransaction<'_> {
    fn statement(&mut self, sql: &str) -> anyhow::Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = self.tx.prepare(&numbered_placeholders(sql)).with_context(|| format!("SQL: {sql}"))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

fn bind(params: &[SqlValue]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Transaction for PostgresTransaction<'_> {
    fn execute(&mut self, sql: &str, params: &[SqlValue]) -> anyhow::Result<u64> {
        let statement = self.statement(sql)?;
        self.tx.execute(&statement, &bind(params)).with_context(|| format!("SQL: {sql}"))
    }

    fn query(&mut self, sql: &str, params: &[SqlValue]) -> anyhow::Result<Vec<SqlRow>> {
        let statement = self.statement(sql)?;
        let rows = self.tx.query(&statement, &bind(params)).with_context(|| format!("SQL: {sql}"))?;
        rows.iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let ty = row.columns()[i].type_();
                        Ok(match *ty {
                            Type::INT8 => row.get::<_, Option<i64>>(i).map_or(SqlValue::Null, SqlValue::Int),
                            Type::INT4 => {
                                row.get::<_, Option<i32>>(i).map_or(SqlValue::Null, |n| SqlValue::Int(n.into()))
                            }
                            Type::INT2 => {
                                row.get::<_, Option<i16>>(i).map_or(SqlValue::Null, |n| SqlValue::Int(n.into()))
                            }
                            Type::BOOL => {
                                row.get::<_, Option<bool>>(i).map_or(SqlValue::Null, |b| SqlValue::Int(b.into()))
                            }
                            Type::FLOAT8 => row.get::<_, Option<f64>>(i).map_or(SqlValue::Null, SqlValue::Real),
                            Type::FLOAT4 => {
                                row.get::<_, Option<f32>>(i).map_or(SqlValue::Null, |n| SqlValue::Real(n.into()))
                            }
                            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
                                row.get::<_, Option<String>>(i).map_or(SqlValue::Null, SqlValue::Text)
                            }
                            ref other => {
                                bail!("column {i} of `{sql}` has the type {other}, which the store does not read")
                            }
                        })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
                    .map(SqlRow)
            })
            .collect()
    }
}

/// A value goes as the type the statement wants: the same query text binds
/// an `Int` to a BIGINT column, a boolean or a count alike.
impl ToSql for SqlValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Int(n) => match *ty {
                Type::INT4 => i32::try_from(*n)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*n)?.to_sql(ty, out),
                Type::BOOL => (*n != 0).to_sql(ty, out),
                Type::FLOAT8 => (*n as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => n.to_string().to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            SqlValue::Real(n) => match *ty {
                Type::FLOAT4 => (*n as f32).to_sql(ty, out),
                _ => n.to_sql(ty, out),
            },
            SqlValue::Text(s) => s.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn migrate(client: &mut Client) -> anyhow::Result<()> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS callqa_schema (version BIGINT NOT NULL)")?;
    let at = match tx.query_opt("SELECT version FROM callqa_schema", &[])? {
        Some(row) => row.get::<_, i64>(0) as usize,
        None => {
            tx.execute("INSERT INTO callqa_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if at > MIGRATIONS.len() {
        bail!(
            "the store is at schema version {at}, newer than this callqa knows ({}): upgrade callqa",
            MIGRATIONS.len()
        );
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(at) {
        tx.batch_execute(migration).with_context(|| format!("migration {} failed", i + 1))?;
        tx.execute("UPDATE callqa_schema SET version = $1", &[&(i as i64 + 1)])?;
    }
    tx.commit()?;
    Ok(())
}

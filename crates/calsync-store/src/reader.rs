//! The read path of Slot searches on SQLite.
//!
//! Measured (docs/benchmarks-log.md): through sqlx-sqlite every row crosses a channel from the
//! connection's worker thread, so a page of 50 Slots cost more in thread hand-offs and
//! allocation than in SQLite itself (the engine was under 2% of the server's CPU). Here the same
//! statements, built by sea-query, run on a small pool of rusqlite connections in one blocking
//! task per query. PostgreSQL keeps the sea-orm path. Writes go through sea-orm, except ingests
//! (`crate::bulk`).

use std::sync::Mutex;

use rusqlite::types::Value as SqlValue;
use sea_orm::sea_query::{SelectStatement, SqliteQueryBuilder, Value};

use crate::StoreError;

/// SQL text and bound values of a count (optional) and a page statement.
struct Statements {
    count: Option<(String, Vec<SqlValue>)>,
    page: (String, Vec<SqlValue>),
}

impl Statements {
    fn build(count: Option<&SelectStatement>, page: &SelectStatement) -> Result<Statements, StoreError> {
        let built = |s: &SelectStatement| -> Result<(String, Vec<SqlValue>), StoreError> {
            let (sql, values) = s.build(SqliteQueryBuilder);
            Ok((sql, values.into_iter().map(bind).collect::<Result<Vec<_>, _>>()?))
        };
        Ok(Statements { count: count.map(built).transpose()?, page: built(page)? })
    }
}

/// The file of a SQLite URL (none for memory databases and other backends).
pub(crate) fn sqlite_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| path.to_string())
}

/// How much of the database file a reader maps (SQLite maps no more than the file's size).
const READER_MMAP_BYTES: i64 = 1 << 32;

/// Pooled read connections to one SQLite file.
#[derive(Debug)]
pub(crate) struct SqliteReader {
    path: String,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

/// One Slot row of a page with its resource: id, start, version, last update, JSON, and the
/// instant of its origin when that is kept apart ([`crate::origin`]).
pub(crate) type SlotPageRow = (String, i64, i64, i64, String, Option<i64>);

/// One current resource row, in [`crate::RESOURCE_COLUMNS`] order: type, id, version, last
/// update, deleted, JSON, the instant of its origin when that is kept apart.
pub(crate) type ResourceRow = (String, String, i64, i64, bool, String, Option<i64>);

/// A row of a SELECT read by column position, from rusqlite (SQLite) or sea-orm (PostgreSQL):
/// one statement, one row type, either database.
pub(crate) trait Row: Sized + Send + 'static {
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
    fn from_sea_orm(r: &sea_orm::QueryResult) -> Result<Self, sea_orm::DbErr>;
}

macro_rules! tuple_row {
    ($($t:ident $i:tt),+) => {
        impl<$($t: rusqlite::types::FromSql + sea_orm::TryGetable + Send + 'static),+> Row for ($($t,)+) {
            fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(r.get($i)?,)+))
            }
            fn from_sea_orm(r: &sea_orm::QueryResult) -> Result<Self, sea_orm::DbErr> {
                Ok(($(r.try_get_by_index($i)?,)+))
            }
        }
    };
}

tuple_row!(A 0);
tuple_row!(A 0, B 1);
tuple_row!(A 0, B 1, C 2, D 3);
tuple_row!(A 0, B 1, C 2, D 3, E 4);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_row!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::from(sea_orm::DbErr::Custom(format!("sqlite read: {e}")))
}

fn bind(v: Value) -> Result<SqlValue, StoreError> {
    Ok(match v {
        Value::BigInt(Some(i)) => SqlValue::Integer(i),
        Value::Int(Some(i)) => SqlValue::Integer(i.into()),
        Value::BigUnsigned(Some(u)) => SqlValue::Integer(i64::try_from(u).map_err(failed)?),
        Value::Bool(Some(b)) => SqlValue::Integer(b.into()),
        Value::String(Some(s)) => SqlValue::Text(s),
        Value::BigInt(None) | Value::Int(None) | Value::BigUnsigned(None) | Value::Bool(None) | Value::String(None) => {
            SqlValue::Null
        }
        other => return Err(failed(format!("cannot bind {other:?}"))),
    })
}

impl SqliteReader {
    /// Readers for the database of a `sqlite://path?...` URL, if it is one.
    pub(crate) fn for_url(url: &str) -> Option<Self> {
        sqlite_path(url).map(|path| Self { path, idle: Mutex::new(Vec::new()) })
    }

    fn connection(&self) -> Result<rusqlite::Connection, StoreError> {
        if let Some(c) = self.idle.lock().map_err(failed)?.pop() {
            return Ok(c);
        }
        let c = rusqlite::Connection::open(&self.path).map_err(failed)?;
        c.busy_timeout(std::time::Duration::from_secs(5)).map_err(failed)?;
        c.pragma_update(None, "query_only", true).map_err(failed)?;
        // Readers map the file instead of copying each page out of the OS cache with a read
        // call: streaming a million Slots spent a third of its time in those copies.
        c.pragma_update(None, "mmap_size", READER_MMAP_BYTES).map_err(failed)?;
        // Statement shapes vary with the number of values in IN lists; keep them all prepared.
        c.set_prepared_statement_cache_capacity(256);
        Ok(c)
    }

    fn give_back(&self, c: rusqlite::Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < 16
        {
            idle.push(c);
        }
    }

    /// Runs a count (if given) and a page statement on one connection in one blocking task,
    /// mapping each row of the page with `row`.
    pub(crate) async fn count_and_rows<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        count: Option<&SelectStatement>,
        page: &SelectStatement,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<(i64, Vec<T>), StoreError> {
        let statements = Statements::build(count, page)?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.run(statements, row)).await.map_err(failed)?
    }

    /// [`SqliteReader::count_and_rows`] on the calling thread, for statements whose work is
    /// bounded (an indexed range of one Schedule's Slots): the hand-off to a blocking thread
    /// and back cost more than the query (docs/benchmarks-log.md).
    pub(crate) fn count_and_rows_here<T>(
        &self,
        count: Option<&SelectStatement>,
        page: &SelectStatement,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<(i64, Vec<T>), StoreError> {
        self.run(Statements::build(count, page)?, row)
    }

    fn run<T>(
        &self,
        statements: Statements,
        row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<(i64, Vec<T>), StoreError> {
        let Statements { count, page: (page_sql, page_params) } = statements;
        let c = self.connection()?;
        let answer = {
            let total: i64 = match count {
                Some((sql, params)) => c
                    .prepare_cached(&sql)
                    .and_then(|mut s| s.query_row(rusqlite::params_from_iter(params), |r| r.get(0)))
                    .map_err(failed)?,
                None => 0,
            };
            let mut prepared = c.prepare_cached(&page_sql).map_err(failed)?;
            let rows = prepared
                .query_map(rusqlite::params_from_iter(page_params), &row)
                .map_err(failed)?
                .collect::<Result<Vec<T>, _>>()
                .map_err(failed)?;
            (total, rows)
        };
        self.give_back(c);
        Ok(answer)
    }

    /// The rows of one SQL statement with text parameters `?1`, `?2`… (a statement the query
    /// builder cannot say), in a blocking task.
    pub(crate) async fn rows_of_sql<T: Row>(
        self: &std::sync::Arc<Self>,
        sql: String,
        params: Vec<String>,
    ) -> Result<Vec<T>, StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let c = me.connection()?;
            let rows = c
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_map(rusqlite::params_from_iter(params), T::from_sqlite)?.collect())
                .map_err(failed);
            me.give_back(c);
            rows
        })
        .await
        .map_err(failed)?
    }

    /// Runs one statement and hands each row to `each` as the cursor reaches it, until `each`
    /// says stop (false); true when every row was handed over.
    pub(crate) fn each_row(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        mut each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<bool>,
    ) -> Result<bool, StoreError> {
        let c = self.connection()?;
        let complete = {
            let mut statement = c.prepare_cached(sql).map_err(failed)?;
            let mut rows = statement.query(params).map_err(failed)?;
            loop {
                match rows.next().map_err(failed)? {
                    None => break true,
                    Some(row) => {
                        if !each(row).map_err(failed)? {
                            break false;
                        }
                    }
                }
            }
        };
        self.give_back(c);
        Ok(complete)
    }
}

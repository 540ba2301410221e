//! The store of calsync, and the only crate that speaks SQL.
//!
//! Resources are kept as their full JSON with `resource_type`, `id`, `version_id`,
//! `last_updated` and a deletion flag; every version also goes to `resource_history`.
//! A live Slot's row also holds its schedule, start, end (UTC milliseconds) and status, with
//! partial indexes shaped for range queries over millions of Slots: one row per resource.
//!
//! SQLite (a file, created on first start) is the embedded default; PostgreSQL when
//! the URL says so. Both run the same migrations and the same statements, and every
//! store test runs on both (see `tests/store.rs`).
//!
//! Writes are transactional. Updates use optimistic concurrency: the new version is
//! written with `UPDATE … WHERE version_id = <read version>`, so two writers racing on
//! one resource cannot both win, on either database, without table locks.
//!
//! The store never reads the clock: every write is stamped with the `now` its caller gives.
//!
//! One module per aggregate: [`versions`] (resources and their versions, transactions),
//! [`slots`] (Slot rows, windows and generations), [`index`] (search values), `connections`
//! (calendar connections), `authorizations` (OAuth in flight), `ingest` (publishers and what
//! they published), `queue` (the job queue's share of the database), [`search`], and
//! [`migration`], one file per migration.

use chrono::{DateTime, Utc};
use entity::resource;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait, TransactionTrait};
use std::sync::Arc;
use tokio::sync::Mutex;

pub use authorizations::PendingAuthorization;
pub use connections::{CalendarConnection, ConnectionTally};
pub use index::{DateRow, IndexRow, Indexed, Indexer};
pub use ingest::{Carry, Ingest, IngestBatching, IngestMembers, IngestRow, IngestTally, Publisher};
pub use queue::QueueDatabase;
pub use slots::{SlotRow, SlotWindow};
pub use versions::{Put, StoreTxn, StoredResource, StoredText};

pub(crate) use slots::{SlotRange, Touched};
pub(crate) use versions::{delete_many_in, same_content, stamp, stored};

mod authorizations;
mod bulk;
mod connections;
mod entity;
pub mod index;
mod ingest;
pub mod migration;
pub mod origin;
mod period;
mod proposals;
mod queue;
mod reader;
pub mod search;
pub mod slots;
#[cfg(feature = "testing")]
pub mod testing;
pub mod versions;

/// Which database a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default: a file.
    Sqlite,
    /// Production.
    Postgres,
}

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No resource with that type and id, ever.
    #[error("{0}/{1} is not known")]
    NotFound(String, String),
    /// The resource existed and was deleted.
    #[error("{0}/{1} was deleted")]
    Gone(String, String),
    /// An update named a version that is not the current one.
    #[error("version conflict: expected version {expected}, current is {current}")]
    VersionConflict {
        /// The version the client based its change on.
        expected: i64,
        /// The current version.
        current: i64,
    },
    /// Another writer changed the resource between this write's read and its write.
    #[error("{0}/{1} was changed by another request at the same time; retry")]
    Concurrent(String, String),
    /// The content cannot be stored as it is.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] DatabaseError),
}

/// A failure of the database itself (connection, SQL, constraint), with its message.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct DatabaseError(DbErr);

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        StoreError::Database(DatabaseError(e))
    }
}

/// Bytes per page of a SQLite file calsync creates (a file keeps the size it was made with).
/// Measured against SQLite's 4,096 (docs/benchmarks-log.md, "SQLite pages of 8 KB"): a first ingest
/// of 1,000,000 Slots 13-25 % faster (each index page split and written back less often),
/// publishing and Slot search no slower.
const SQLITE_PAGE_SIZE: u32 = 8192;

/// Connections in the SQLite pool (WAL: one writer at a time, readers in parallel).
const SQLITE_CONNECTIONS: u32 = 8;

/// How long a SQLite writer waits for another's transaction before giving up. A calendar sync
/// applies its whole diff in one transaction, so the wait covers a large one (tens of
/// thousands of Slots) on a slow disk; readers never wait (WAL).
const SQLITE_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Rows per multi-row INSERT (SQLite allows 32,766 bound values per statement).
const BATCH_ROWS: usize = 1000;

/// The database behind calsync.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    indexer: Option<Indexer>,
    /// SQLite has one writer at a time, and a WAL transaction that reads before it writes fails
    /// at once (SQLITE_BUSY_SNAPSHOT, no busy wait) if another writer committed in between; so
    /// on SQLite this process takes its write transactions in turn. PostgreSQL needs no lock.
    sqlite_writer: Option<Arc<Mutex<()>>>,
    /// The Slot search read path on SQLite (see `reader`).
    sqlite_reader: Option<Arc<reader::SqliteReader>>,
    /// The ingest write path on SQLite (see `bulk`).
    sqlite_bulk: Option<Arc<bulk::sqlite::SqliteBulk>>,
    /// Remembered Slot windows of participants' Schedules (see [`Store::slot_windows`]).
    windows: Arc<std::sync::Mutex<slots::WindowCache>>,
    /// Remembered periods of Schedules' Slots (see [`Store::schedules_by_period`]).
    periods: Arc<std::sync::Mutex<period::PeriodCache>>,
    /// How ingests are batched, when not as the database suits ([`Store::ingest_batching`]).
    ingest_batching: Option<ingest::IngestBatching>,
    /// Publishers' `meta.source`, added to the Slots stored without it ([`origin`]).
    origins: Arc<origin::Origins>,
    /// This installation's id (`urn:uuid:…`), the same for every process on the database.
    instance: Arc<str>,
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The columns of a current resource, in the order [`reader::resource_row`] reads them.
pub(crate) const RESOURCE_COLUMNS: [resource::Column; 7] = [
    resource::Column::ResourceType,
    resource::Column::Id,
    resource::Column::VersionId,
    resource::Column::LastUpdated,
    resource::Column::Deleted,
    resource::Column::Content,
    resource::Column::SyncedMs,
];

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// True for ids FHIR allows: 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

impl Store {
    /// Connects to `url` (`sqlite://file.db?mode=rwc`, `postgres://...`) and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        let mut options = ConnectOptions::new(url.to_string());
        options.sqlx_logging(false);
        if url.starts_with("sqlite:") {
            // Every pooled connection: readers never wait for the writer (WAL), the writer waits
            // for locks instead of failing. sea-orm's SQLite default is a single connection,
            // which serializes all reads; WAL lets them run side by side.
            options.max_connections(SQLITE_CONNECTIONS).map_sqlx_sqlite_opts(|o| {
                o.page_size(SQLITE_PAGE_SIZE)
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .synchronous(SqliteSynchronous::Normal)
            });
        } else if url.starts_with("postgres") {
            // sqlx prepares every statement; after five runs PostgreSQL may keep a generic plan,
            // costed on the statistics of the moment. For tables that start empty (a first ingest)
            // that plan was a sequential scan for every `id IN (...)` lookup, which slowed the
            // ingest of 100,000 Slots to about 1,000 a second and falling. Plan with the values.
            options.map_sqlx_postgres_opts(|o| o.options([("plan_cache_mode", "force_custom_plan")]));
        }
        let db = Database::connect(options).await?;
        migration::migrate(&db).await?;
        let named = sea_orm::Statement::from_string(db.get_database_backend(), "SELECT id FROM instance");
        let instance: String = sea_orm::ConnectionTrait::query_one_raw(&db, named)
            .await?
            .and_then(|row| row.try_get_by_index(0).ok())
            .ok_or_else(|| StoreError::Invalid("the database names no instance".into()))?;
        let sqlite_writer = (db.get_database_backend() == sea_orm::DbBackend::Sqlite).then(|| Arc::new(Mutex::new(())));
        let sqlite_reader = reader::SqliteReader::for_url(url).map(Arc::new);
        let sqlite_bulk = reader::sqlite_path(url).map(|p| Arc::new(bulk::sqlite::SqliteBulk::new(p)));
        Ok(Self {
            db,
            indexer: None,
            sqlite_writer,
            sqlite_reader,
            sqlite_bulk,
            windows: Default::default(),
            periods: Default::default(),
            ingest_batching: None,
            origins: Default::default(),
            instance: instance.into(),
        })
    }

    /// This installation's id (`urn:uuid:…`): made once with the database, the same for every
    /// process on it.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Indexes every write from now on with `indexer`.
    pub fn with_indexer(mut self, indexer: Indexer) -> Self {
        self.indexer = Some(indexer);
        self
    }

    /// Holds this process's SQLite write turn (nothing on PostgreSQL) for one write transaction.
    async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.sqlite_writer {
            Some(lock) => Some(lock.lock().await),
            None => None,
        }
    }

    /// Begins a transaction that will write. On SQLite it takes the database's write lock at
    /// once (`BEGIN IMMEDIATE`, waiting up to the busy timeout): a transaction that read first
    /// would fail at its first write, without waiting, whenever another connection wrote in
    /// between, and other processes and the job queue write outside this process's turn.
    async fn begin_writing(&self) -> Result<sea_orm::DatabaseTransaction, DbErr> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions};
        match self.sqlite_writer {
            Some(_) => {
                self.db
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..Default::default()
                    })
                    .await
            }
            None => self.db.begin().await,
        }
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        match self.db.get_database_backend() {
            sea_orm::DbBackend::Postgres => Backend::Postgres,
            _ => Backend::Sqlite,
        }
    }

    /// Closes the store's connections (the test databases are dropped after).
    pub async fn close(self) {
        self.db.close().await.ok();
    }

    /// The rows of `page` and, if given, the number `count` counts: on SQLite through the
    /// rusqlite read pool (`here`: on the calling thread, for bounded statements), elsewhere
    /// through sea-orm.
    pub(crate) async fn select<T: reader::Row>(
        &self,
        count: Option<&sea_orm::sea_query::SelectStatement>,
        page: &sea_orm::sea_query::SelectStatement,
        here: bool,
    ) -> Result<(i64, Vec<T>), StoreError> {
        if let Some(reader) = &self.sqlite_reader {
            return if here {
                reader.count_and_rows_here(count, page, T::from_sqlite)
            } else {
                reader.count_and_rows(count, page, T::from_sqlite).await
            };
        }
        let total = match count {
            Some(c) => match self.db.query_one(c).await? {
                Some(row) => row.try_get_by_index(0)?,
                None => 0,
            },
            None => 0,
        };
        let rows = self.db.query_all(page).await?.iter().map(T::from_sea_orm).collect::<Result<_, DbErr>>()?;
        Ok((total, rows))
    }
}

/// Inserts `rows` [`BATCH_ROWS`] at a time.
pub(crate) async fn insert_batched<C, A>(txn: &C, rows: std::vec::IntoIter<A>) -> Result<(), StoreError>
where
    C: ConnectionTrait,
    A: sea_orm::ActiveModelTrait,
{
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(BATCH_ROWS).collect();
        A::Entity::insert_many(chunk).exec_without_returning(txn).await?;
    }
    Ok(())
}

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

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::QueryTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use sea_orm_migration::MigratorTrait;
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Which database a [`Store`] runs on (see [`Store::connection`]).
pub use ingest::{Carry, Ingest, IngestBatching, IngestMembers, IngestRow, IngestTally, Publisher};
pub use sea_orm::DbBackend as Backend;

mod bulk;
pub mod entity;
mod ingest;
pub mod migration;
pub mod origin;
mod period;
mod reader;
pub mod search;
#[cfg(feature = "testing")]
pub mod testing;

use entity::{date_index, resource, resource_history, search_index, slot_generation, store_meta};

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
    Database(#[from] DbErr),
}

/// One version of a resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// Its type (`Slot`).
    pub resource_type: String,
    /// Its logical id.
    pub id: String,
    /// Version, from 1.
    pub version_id: i64,
    /// When this version was written.
    pub last_updated: DateTime<Utc>,
    /// True for the version that records a deletion.
    pub deleted: bool,
    /// The resource JSON, with `id`, `meta.versionId` and `meta.lastUpdated` set.
    pub content: Value,
}

/// What range queries read of a live Slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    /// `Slot` id.
    pub id: String,
    /// `Schedule/{id}`.
    pub schedule: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// `Slot.status`.
    pub status: String,
}

/// A live Slot's range columns as read: id, schedule, start, end, status.
type SlotColumns = (String, String, i64, i64, String);

impl From<SlotColumns> for SlotRow {
    fn from((id, schedule, start, end, status): SlotColumns) -> Self {
        SlotRow { id, schedule, start: from_millis(start), end: from_millis(end), status }
    }
}

/// The FHIR Slot status codes.
pub const SLOT_STATUSES: [&str; 5] = ["free", "busy", "busy-tentative", "busy-unavailable", "entered-in-error"];

/// When a Slot is, and its status (one of [`SLOT_STATUSES`], or `unknown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotWindow {
    /// Its Schedule, as an index into the Schedules asked for.
    pub schedule: usize,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// `Slot.status`.
    pub status: &'static str,
}

/// One value of a resource for search: what an [`Indexer`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    /// Search parameter name.
    pub param: String,
    /// Token system, "" when none.
    pub system: String,
    /// As searched.
    pub value: String,
    /// As written.
    pub raw: String,
}

/// One date value of a resource for search: a range of UTC milliseconds `[low, high)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRow {
    /// Search parameter name.
    pub param: String,
    /// Inclusive start.
    pub low: i64,
    /// Exclusive end.
    pub high: i64,
}

/// Everything a resource is searched by, besides its type, id and last update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Indexed {
    /// Token, reference and string values.
    pub terms: Vec<IndexRow>,
    /// Date values.
    pub dates: Vec<DateRow>,
}

/// Extracts the searchable values of a resource. The store calls it on every write so the index
/// changes in the same transaction; it knows nothing of FHIR itself.
#[derive(Debug, Clone, Copy)]
pub struct Indexer {
    /// Values of a resource (type, JSON).
    pub extract: fn(&str, &Value) -> Indexed,
    /// Names the definitions `extract` follows; when it differs from the one the index was built
    /// with, [`Store::reindex_if_stale`] rebuilds the index.
    pub fingerprint: fn() -> String,
    /// The top-level members `extract` reads of a type: a resource given as its members
    /// ([`IngestMembers`]) is extracted from those alone, and has nothing to index without any
    /// of them.
    pub reads: fn(&str) -> &'static [&'static str],
}

/// A resource to write with [`Store::put_many`]: type, id, JSON.
pub type Put = (String, String, Value);

/// Bytes per page of a SQLite file calsync creates (a file keeps the size it was made with).
/// Measured against SQLite's 4,096 (docs/benchmarks.md, "SQLite pages of 8 KB"): a first ingest
/// of 1,000,000 Slots 13-25 % faster (each index page split and written back less often),
/// publishing and Slot search no slower.
const SQLITE_PAGE_SIZE: u32 = 8192;

/// Connections in the SQLite pool (WAL: one writer at a time, readers in parallel).
const SQLITE_CONNECTIONS: u32 = 8;

/// Key in `store_meta` of the fingerprint the search index was built with.
const INDEX_FINGERPRINT: &str = "index_fingerprint";

/// The PostgreSQL advisory lock a search index rebuild holds (any number, the same in every
/// process: "calsync" in ASCII).
const REINDEX_LOCK: i64 = 0x0063_616c_7379_6e63;

/// The PostgreSQL advisory lock the migrations run under ("migrate" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_6967_7261_7465;

/// Applies the pending migrations, once however many processes start together on one database
/// (API replicas, workers): they run in one transaction that first takes SQLite's write lock
/// (`BEGIN IMMEDIATE`) or PostgreSQL's advisory lock [`MIGRATION_LOCK`], and each process after
/// the first finds nothing pending once its turn comes. Without the lock, each created the
/// migrations table and applied the first migrations at once, and all but one died
/// (`duplicate key … "pg_type_typname_nsp_index"`, `no such table: ingested`). A database with
/// nothing pending is only read: a process starting beside a long write does not wait for it.
async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions};
    let pending = migration::Migrator::get_pending_migrations_read_only(db).await;
    if pending.is_ok_and(|p| p.is_empty()) {
        return Ok(());
    }
    let txn = match db.get_database_backend() {
        Backend::Sqlite => {
            let immediate = Some(SqliteTransactionMode::Immediate);
            db.begin_with_options(TransactionOptions { sqlite_transaction_mode: immediate, ..Default::default() })
                .await?
        }
        _ => db.begin().await?,
    };
    if txn.get_database_backend() == Backend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")).await?;
    }
    migration::Migrator::up(&txn, None).await?;
    txn.commit().await
}

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
    windows: Arc<std::sync::Mutex<WindowCache>>,
    /// Remembered periods of Schedules' Slots (see [`Store::schedules_by_period`]).
    periods: Arc<std::sync::Mutex<period::PeriodCache>>,
    /// How ingests are batched, when not as the database suits ([`Store::ingest_batching`]).
    ingest_batching: Option<ingest::IngestBatching>,
    /// Publishers' `meta.source`, added to the Slots stored without it ([`origin`]).
    origins: Arc<origin::Origins>,
}

/// A remembered Slot: start and end (UTC milliseconds) and status.
type CachedWindow = (i64, i64, &'static str);

/// Schedule → (generation, its Slots).
type WindowCache = std::collections::HashMap<String, (i64, Arc<[CachedWindow]>)>;

/// How many Schedules' windows are remembered at most (then the memory starts over).
const WINDOW_CACHE_SCHEDULES: usize = 20_000;

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
        migrate(&db).await?;
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
        })
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

    /// The connection, for the job queue that shares the database.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Stores a new resource under a server-assigned id, as version 1.
    pub async fn create(&self, resource_type: &str, content: Value) -> Result<StoredResource, StoreError> {
        let txn = self.begin().await?;
        let stored = txn.create(resource_type, content).await?;
        txn.commit().await?;
        Ok(stored)
    }

    /// Starts a write transaction: reads inside it see its own writes, and nothing of it is
    /// visible to others until [`StoreTxn::commit`]; dropping it rolls back.
    pub async fn begin(&self) -> Result<StoreTxn<'_>, StoreError> {
        let turn = self.write_turn().await;
        let txn = self.begin_writing().await?;
        Ok(StoreTxn { txn, indexer: self.indexer, origins: self.origins.clone(), _turn: turn })
    }

    /// The current version; `Gone` after a delete, `NotFound` if it never existed.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<StoredResource, StoreError> {
        let stmt = resource::Entity::find_by_id((resource_type.to_string(), id.to_string()))
            .select_only()
            .columns(RESOURCE_COLUMNS)
            .into_query();
        let (_, rows) = self.select::<reader::ResourceRow>(None, &stmt, false).await?;
        let Some((t, id, version, updated, deleted, content, synced)) = rows.into_iter().next() else {
            return Err(StoreError::NotFound(resource_type.into(), id.into()));
        };
        if deleted {
            return Err(StoreError::Gone(t, id));
        }
        let bases = self.origins.bases(&self.db, synced.map(|_| id.as_str()).into_iter()).await?;
        stored(t, id.clone(), version, updated, false, &origin::splice(&content, &id, synced, &bases))
    }

    /// A given version, deleted or not. The history has every earlier version; the current one
    /// is in the history too, except after a bulk ingest, which writes it to the history only
    /// once a newer version replaces it.
    pub async fn vread(&self, resource_type: &str, id: &str, version_id: i64) -> Result<StoredResource, StoreError> {
        let key = (resource_type.to_string(), id.to_string());
        if let Some(row) =
            resource_history::Entity::find_by_id((key.0.clone(), key.1.clone(), version_id)).one(&self.db).await?
        {
            let bases = self.origins.bases(&self.db, row.synced_ms.map(|_| id).into_iter()).await?;
            let content = origin::splice(&row.content, &row.id, row.synced_ms, &bases);
            return stored(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, &content);
        }
        match resource::Entity::find_by_id(key).one(&self.db).await? {
            Some(row) if row.version_id == version_id => {
                let bases = self.origins.bases(&self.db, row.synced_ms.map(|_| id).into_iter()).await?;
                let content = origin::splice(&row.content, &row.id, row.synced_ms, &bases);
                stored(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, &content)
            }
            _ => Err(StoreError::NotFound(resource_type.into(), format!("{id}/_history/{version_id}"))),
        }
    }

    /// Every version, newest first (see [`Store::vread`] for where the current one is).
    pub async fn history(&self, resource_type: &str, id: &str) -> Result<Vec<StoredResource>, StoreError> {
        let versions = resource_history::Entity::find()
            .filter(resource_history::Column::ResourceType.eq(resource_type))
            .filter(resource_history::Column::Id.eq(id))
            .order_by_desc(resource_history::Column::VersionId)
            .all(&self.db)
            .await?;
        let current = resource::Entity::find_by_id((resource_type.to_string(), id.to_string()))
            .one(&self.db)
            .await?
            .filter(|row| versions.first().is_none_or(|newest| newest.version_id < row.version_id));
        let kept_apart = versions.iter().map(|r| r.synced_ms).chain(current.iter().map(|r| r.synced_ms));
        let bases = self.origins.bases(&self.db, kept_apart.flatten().map(|_| id)).await?;
        let whole = |text: String, synced| origin::spliced(text, id, synced, &bases);
        let mut all = Vec::with_capacity(versions.len() + 1);
        if let Some(row) = current {
            let content = whole(row.content, row.synced_ms);
            all.push(stored(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, &content)?);
        }
        for r in versions {
            let content = whole(r.content, r.synced_ms);
            all.push(stored(r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, &content)?);
        }
        Ok(all)
    }

    /// Writes a new version of `id` (creating it if unknown or deleted). With `if_match`, the
    /// current version must be that one. Returns the new version and whether it was created.
    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        content: Value,
        if_match: Option<i64>,
    ) -> Result<(StoredResource, bool), StoreError> {
        let txn = self.begin().await?;
        let written = txn.update(resource_type, id, content, if_match).await?;
        txn.commit().await?;
        Ok(written)
    }

    /// Deletes `id`: a new version marked deleted; reads answer `Gone` afterwards.
    /// Deleting an unknown or deleted resource changes nothing.
    pub async fn delete(&self, resource_type: &str, id: &str) -> Result<(), StoreError> {
        let txn = self.begin().await?;
        txn.delete(resource_type, id).await?;
        txn.commit().await
    }

    /// Writes many resources under their own ids in one transaction, with multi-row statements:
    /// new ones become version 1, changed ones get a new version, and ones whose content is
    /// unchanged are left as they are (same version). Returns how many were written.
    pub async fn put_many(&self, items: Vec<Put>) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_writing().await?;
        let (created, changed) = put_many_in(&txn, self.indexer, items).await?;
        txn.commit().await?;
        Ok(created + changed)
    }

    /// Rebuilds the search index when it was built with other definitions than the indexer's
    /// (or before there was an index). Returns how many resources were reindexed, if any.
    pub async fn reindex_if_stale(&self) -> Result<Option<u64>, StoreError> {
        let Some(indexer) = self.indexer else { return Ok(None) };
        let wanted = (indexer.fingerprint)();
        let built = store_meta::Entity::find_by_id(INDEX_FINGERPRINT.to_string()).one(&self.db).await?;
        if built.is_some_and(|m| m.value == wanted) {
            return Ok(None);
        }
        let _turn = self.write_turn().await;
        let txn = self.begin_writing().await?;
        // Processes starting together (API replicas, a worker) rebuild one after the other, and
        // each checks again once it is its turn: the second finds the index current. SQLite's
        // immediate transaction already takes the write lock; PostgreSQL takes a lock named for
        // the rebuild until the transaction ends.
        if txn.get_database_backend() == Backend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({REINDEX_LOCK})")).await?;
        }
        let built = store_meta::Entity::find_by_id(INDEX_FINGERPRINT.to_string()).one(&txn).await?;
        if built.is_some_and(|m| m.value == wanted) {
            return Ok(None);
        }
        search_index::Entity::delete_many().exec(&txn).await?;
        date_index::Entity::delete_many().exec(&txn).await?;
        let mut after: Option<(String, String)> = None;
        let mut count = 0;
        loop {
            let mut q = resource::Entity::find().filter(resource::Column::Deleted.eq(false));
            if let Some((t, id)) = &after {
                // A row value, which both databases seek the key to: the equivalent `type > … OR
                // (type = … AND id > …)` made SQLite walk every row before the cursor again on
                // each page (a first start on a million ingested Slots never finished).
                let key = Expr::tuple([Expr::col(resource::Column::ResourceType), Expr::col(resource::Column::Id)]);
                q = q.filter(key.gt(Expr::tuple([Expr::value(t.as_str()), Expr::value(id.as_str())])));
            }
            let rows = q
                .order_by_asc(resource::Column::ResourceType)
                .order_by_asc(resource::Column::Id)
                .limit(BATCH_ROWS as u64)
                .all(&txn)
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.resource_type.clone(), last.id.clone()));
            count += rows.len() as u64;
            let mut rows = rows.into_iter().peekable();
            while let Some(first) = rows.peek() {
                let t = first.resource_type.clone();
                let mut same_type = Vec::new();
                while let Some(r) = rows.next_if(|r| r.resource_type == t) {
                    let content: Value = serde_json::from_str(&r.content).unwrap_or(Value::Null);
                    same_type.push((r.id, (indexer.extract)(&t, &content)));
                }
                insert_index(&txn, &t, &same_type).await?;
            }
        }
        store_meta::Entity::insert(store_meta::ActiveModel {
            key: Set(INDEX_FINGERPRINT.to_string()),
            value: Set(wanted),
        })
        .on_conflict(OnConflict::column(store_meta::Column::Key).update_column(store_meta::Column::Value).to_owned())
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(Some(count))
    }
}

impl Store {
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

    /// Free Slots overlapping `[from, to)`, of the given Schedules (`Schedule/{id}`) or of all,
    /// in start order: what a search for mutual times walks.
    pub async fn free_slots(
        &self,
        schedules: Option<&[String]>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotRow>, StoreError> {
        use sea_orm::sea_query::Query;
        if schedules.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        // A free Slot overlapping the window starts no earlier than the window less the longest
        // free Slot of its Schedule: a bounded range of `slot_start_id` (or of each Schedule's
        // `slot_schedule_range`), where `start < to` alone reads every Slot before the window.
        let mut longest = Query::select()
            .expr(Expr::cust("CAST(COALESCE(MAX(longest_free_ms), 0) AS BIGINT)"))
            .from(slot_generation::Entity)
            .to_owned();
        if let Some(list) = schedules {
            longest.and_where(slot_generation::Column::Schedule.is_in(list.iter().cloned()));
        }
        let (_, found) = self.select::<(i64,)>(None, &longest, false).await?;
        let longest = found.first().map_or(0, |(l,)| *l);
        let filter = sea_orm::Condition::all()
            .add(resource::Column::Status.eq("free"))
            .add(resource::Column::StartMs.gte(millis(from).saturating_sub(longest)));
        let filter = match schedules {
            Some(list) => filter.add(resource::Column::Schedule.is_in(list.iter().cloned())),
            None => filter,
        };
        self.slot_rows(filter, from, to).await
    }

    /// The times and statuses of the Slots of `schedules` (`Schedule/{id}`) overlapping
    /// `[from, to)`: what participants' busy time is made of (no ids, nothing else). Each window
    /// names its Schedule by its index in `schedules`.
    ///
    /// Every Slot of an asked Schedule is remembered with the Schedule's generation (bumped in
    /// the transaction of each Slot write, by any process); a later call reads only the
    /// generations and reloads the Schedules that changed. The generations are read before the
    /// Slots, so a write racing with a reload makes the next call reload again, never keeps stale
    /// windows.
    pub async fn slot_windows(
        &self,
        schedules: &[String],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotWindow>, StoreError> {
        use sea_orm::sea_query::Query;
        if schedules.is_empty() {
            return Ok(Vec::new());
        }
        let generations = Query::select()
            .columns([slot_generation::Column::Schedule, slot_generation::Column::Generation])
            .from(slot_generation::Entity)
            .cond_where(slot_generation::Column::Schedule.is_in(schedules.iter().cloned()))
            .to_owned();
        let (_, current) = self.select::<(String, i64)>(None, &generations, false).await?;
        let generation_of = |s: &str| current.iter().find(|(k, _)| k == s).map_or(0, |(_, g)| *g);
        let mut known: Vec<Option<Arc<[CachedWindow]>>> = {
            let cache = self.windows.lock().map_err(|_| StoreError::Invalid("window cache poisoned".into()))?;
            schedules
                .iter()
                .map(|s| cache.get(s).filter(|(g, _)| *g == generation_of(s)).map(|(_, w)| w.clone()))
                .collect()
        };
        let missing: Vec<String> =
            schedules.iter().zip(&known).filter(|(_, k)| k.is_none()).map(|(s, _)| s.clone()).collect();
        if !missing.is_empty() {
            let loaded = self.all_windows(&missing).await?;
            let mut cache = self.windows.lock().map_err(|_| StoreError::Invalid("window cache poisoned".into()))?;
            if cache.len() + missing.len() > WINDOW_CACHE_SCHEDULES {
                cache.clear();
            }
            for (schedule, windows) in missing.iter().zip(loaded) {
                let windows: Arc<[CachedWindow]> = windows.into();
                cache.insert(schedule.clone(), (generation_of(schedule), windows.clone()));
                if let Some(n) = schedules.iter().position(|s| s == schedule) {
                    known[n] = Some(windows);
                }
            }
        }
        let (from, to) = (millis(from), millis(to));
        Ok(known
            .iter()
            .enumerate()
            .flat_map(|(n, windows)| {
                windows.iter().flat_map(|w| w.iter()).filter(move |w| w.0 < to && w.1 > from).map(move |w| SlotWindow {
                    schedule: n,
                    start: from_millis(w.0),
                    end: from_millis(w.1),
                    status: w.2,
                })
            })
            .collect())
    }

    /// Every Slot window of each of `schedules`, in that order.
    async fn all_windows(&self, schedules: &[String]) -> Result<Vec<Vec<CachedWindow>>, StoreError> {
        use sea_orm::sea_query::Query;
        let stmt = Query::select()
            .columns([
                resource::Column::StartMs,
                resource::Column::EndMs,
                resource::Column::Status,
                resource::Column::Schedule,
            ])
            .from(resource::Entity)
            .cond_where(resource::Column::Schedule.is_in(schedules.iter().cloned()))
            .to_owned();
        let (_, rows) = self.select::<(i64, i64, String, String)>(None, &stmt, false).await?;
        let mut out = vec![Vec::new(); schedules.len()];
        for (start, end, status, schedule) in rows {
            let status = SLOT_STATUSES.iter().copied().find(|k| *k == status).unwrap_or("unknown");
            if let Some(list) = schedules.iter().position(|s| *s == schedule).and_then(|n| out.get_mut(n)) {
                list.push((start, end, status));
            }
        }
        Ok(out)
    }

    /// Live Slots overlapping `[from, to)`, of one Schedule if given, in start order.
    pub async fn slots_overlapping(
        &self,
        schedule: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotRow>, StoreError> {
        let filter = sea_orm::Condition::all();
        let filter = match schedule {
            Some(s) => filter.add(resource::Column::Schedule.eq(s)),
            None => filter,
        };
        self.slot_rows(filter, from, to).await
    }

    /// Slot rows matching `filter` and overlapping `[from, to)`, in start order. On SQLite they
    /// are read through the rusqlite pool like the Slot search page.
    async fn slot_rows(
        &self,
        filter: sea_orm::Condition,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotRow>, StoreError> {
        let stmt = sea_orm::sea_query::Query::select()
            .columns([resource::Column::Id, resource::Column::Schedule, resource::Column::StartMs])
            .columns([resource::Column::EndMs, resource::Column::Status])
            .from(resource::Entity)
            .cond_where(
                filter.add(resource::Column::StartMs.lt(millis(to))).add(resource::Column::EndMs.gt(millis(from))),
            )
            // The order of the covering index (schedule, start, end, status, id): one Schedule's
            // rows come out sorted, without a sort step.
            .order_by(resource::Column::StartMs, sea_orm::Order::Asc)
            .order_by(resource::Column::EndMs, sea_orm::Order::Asc)
            .order_by(resource::Column::Status, sea_orm::Order::Asc)
            .order_by(resource::Column::Id, sea_orm::Order::Asc)
            .to_owned();
        let (_, rows) = self.select::<SlotColumns>(None, &stmt, false).await?;
        Ok(rows.into_iter().map(SlotRow::from).collect())
    }
}

/// Connection states that wait for the participant: no worker syncs them by itself.
const PARTICIPANT_STATES: [&str; 2] = ["needs-reconnect", "consent-withdrawn"];

/// Connections per state, and how many synced since an instant (see [`Store::connection_tally`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionTally {
    /// State → number of connections.
    pub states: std::collections::BTreeMap<String, u64>,
    /// Connections whose last successful sync is at or after the instant asked about.
    pub synced_since: u64,
    /// Connections still due at that instant (a finished sync, good or failed, moves its
    /// connection's due time past it).
    pub due: u64,
}

/// A participant's calendar connection as stored (see [`entity::connection`]).
pub type CalendarConnection = entity::connection::Model;

impl Store {
    /// Writes a connection (new or changed) as it is.
    pub async fn save_calendar_connection(&self, c: &CalendarConnection) -> Result<(), StoreError> {
        use sea_orm::IntoActiveModel;
        let _turn = self.write_turn().await;
        let active = c.clone().into_active_model();
        entity::connection::Entity::insert(active)
            .on_conflict(
                OnConflict::column(entity::connection::Column::Id)
                    .update_columns([
                        entity::connection::Column::Participant,
                        entity::connection::Column::Schedule,
                        entity::connection::Column::Kind,
                        entity::connection::Column::Host,
                        entity::connection::Column::Secret,
                        entity::connection::Column::Validator,
                        entity::connection::Column::State,
                        entity::connection::Column::Reason,
                        entity::connection::Column::LastSuccessMs,
                        entity::connection::Column::NextRunMs,
                        entity::connection::Column::Attempts,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// A connection by id.
    pub async fn calendar_connection(&self, id: &str) -> Result<CalendarConnection, StoreError> {
        entity::connection::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound("Connection".into(), id.into()))
    }

    /// Forgets a connection (its busy Slots are the caller's to remove first).
    pub async fn delete_calendar_connection(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        entity::connection::Entity::delete_by_id(id.to_string()).exec(&self.db).await?;
        Ok(())
    }

    /// Which of `keys` are the idempotency keys of jobs of `queue` in apalis' table on PostgreSQL
    /// (`apalis.jobs`, unique on job type and key), whatever their state. apalis-postgres inserts
    /// a batch of jobs without `ON CONFLICT`, so one key already there fails the whole batch: the
    /// worker leaves these out first. On SQLite apalis skips them itself: always empty.
    pub async fn queued_job_keys(
        &self,
        queue: &str,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        if self.db.get_database_backend() != Backend::Postgres || keys.is_empty() {
            return Ok(Default::default());
        }
        let found: Vec<String> = sea_orm::sqlx::query_scalar(
            "SELECT idempotency_key FROM apalis.jobs WHERE job_type = $1 AND idempotency_key = ANY($2)",
        )
        .bind(queue)
        .bind(keys)
        .fetch_all(self.db.get_postgres_connection_pool())
        .await
        .map_err(|e| StoreError::Database(DbErr::Custom(format!("queued jobs: {e}"))))?;
        Ok(found.into_iter().collect())
    }

    /// Connections a worker should sync at `now`: due (`next_run` passed) and in a state that
    /// syncs by itself (not waiting for the participant to reconnect, not withdrawn). Each with
    /// its due time (the job's idempotency key), earliest first, at most `limit`.
    pub async fn connections_due(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<(String, i64)>, StoreError> {
        use entity::connection::Column;
        Ok(entity::connection::Entity::find()
            .select_only()
            .columns([Column::Id, Column::NextRunMs])
            .filter(Column::NextRunMs.lte(millis(now)))
            .filter(Column::State.is_not_in(PARTICIPANT_STATES))
            .order_by_asc(Column::NextRunMs)
            .order_by_asc(Column::Id)
            .limit(limit)
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await?)
    }

    /// The sum of every Schedule's Slot generation: it moves with every Slot write (a version
    /// tag for published availability).
    pub async fn slot_generations_total(&self) -> Result<i64, StoreError> {
        // PostgreSQL sums a bigint as numeric: cast back.
        let total: Option<i64> = entity::slot_generation::Entity::find()
            .select_only()
            .column_as(Expr::cust("CAST(COALESCE(SUM(generation), 0) AS BIGINT)"), "total")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(total.unwrap_or(0))
    }

    /// Marks a connection as being synced now (`syncing`), unless it waits for its participant.
    pub async fn mark_connection_syncing(&self, id: &str) -> Result<(), StoreError> {
        use entity::connection::Column;
        let _turn = self.write_turn().await;
        entity::connection::Entity::update_many()
            .col_expr(Column::State, Expr::value("syncing"))
            .filter(Column::Id.eq(id))
            .filter(Column::State.is_not_in(PARTICIPANT_STATES))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Makes every connection that syncs by itself due at `now` (the nightly run, or "sync all
    /// now"); returns how many.
    pub async fn make_connections_due(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        use entity::connection::Column;
        let _turn = self.write_turn().await;
        let done = entity::connection::Entity::update_many()
            .col_expr(Column::NextRunMs, Expr::value(millis(now)))
            .filter(Column::State.is_not_in(PARTICIPANT_STATES))
            .exec(&self.db)
            .await?;
        Ok(done.rows_affected)
    }

    /// How many connections there are per state, how many synced successfully at or after
    /// `since`, and how many are still due at `since` (progress of a run that started then).
    pub async fn connection_tally(&self, since: DateTime<Utc>) -> Result<ConnectionTally, StoreError> {
        use entity::connection::Column;
        let states: Vec<(String, i64)> = entity::connection::Entity::find()
            .select_only()
            .column(Column::State)
            .column_as(Column::Id.count(), "n")
            .group_by(Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        let synced_since =
            entity::connection::Entity::find().filter(Column::LastSuccessMs.gte(millis(since))).count(&self.db).await?;
        let due = entity::connection::Entity::find()
            .filter(Column::NextRunMs.lte(millis(since)))
            .filter(Column::State.is_not_in(PARTICIPANT_STATES))
            .count(&self.db)
            .await?;
        Ok(ConnectionTally { states: states.into_iter().map(|(s, n)| (s, n as u64)).collect(), synced_since, due })
    }

    /// A participant's connections, by id.
    pub async fn calendar_connections_of(&self, participant: &str) -> Result<Vec<CalendarConnection>, StoreError> {
        Ok(entity::connection::Entity::find()
            .filter(entity::connection::Column::Participant.eq(participant))
            .order_by_asc(entity::connection::Column::Id)
            .all(&self.db)
            .await?)
    }
}

/// An OAuth authorization in flight (see [`entity::authorization`]).
pub type PendingAuthorization = entity::authorization::Model;

impl Store {
    /// Remembers an authorization in flight; expired ones are forgotten on the way.
    pub async fn save_pending_authorization(
        &self,
        a: &PendingAuthorization,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        use sea_orm::IntoActiveModel;
        let _turn = self.write_turn().await;
        entity::authorization::Entity::delete_many()
            .filter(entity::authorization::Column::ExpiresMs.lt(millis(now)))
            .exec(&self.db)
            .await?;
        entity::authorization::Entity::insert(a.clone().into_active_model()).exec_without_returning(&self.db).await?;
        Ok(())
    }

    /// Takes the authorization with this `state`: at most once, and none once expired.
    pub async fn take_pending_authorization(
        &self,
        state: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let _turn = self.write_turn().await;
        let found = entity::authorization::Entity::find_by_id(state.to_string()).one(&self.db).await?;
        let Some(found) = found else { return Ok(None) };
        let taken = entity::authorization::Entity::delete_by_id(state.to_string()).exec(&self.db).await?;
        Ok((taken.rows_affected == 1 && found.expires_ms >= millis(now)).then_some(found))
    }
}

/// A write transaction (see [`Store::begin`]). On SQLite it holds this process's write turn.
pub struct StoreTxn<'a> {
    txn: sea_orm::DatabaseTransaction,
    indexer: Option<Indexer>,
    origins: Arc<origin::Origins>,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl StoreTxn<'_> {
    /// Makes every write of the transaction visible at once.
    /// Deletes many resources of one type (those already deleted or absent are skipped), in
    /// batches: each gets a deleted version in its history, leaves the search index and, for
    /// Slots, the Slot table. Returns how many were deleted.
    pub async fn delete_many(&self, resource_type: &str, ids: &[String]) -> Result<u64, StoreError> {
        delete_many_in(&self.txn, resource_type, ids).await
    }

    /// [`Store::put_many`] inside this transaction.
    pub async fn put_many(&self, items: Vec<Put>) -> Result<u64, StoreError> {
        let (created, changed) = put_many_in(&self.txn, self.indexer, items).await?;
        Ok(created + changed)
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.txn.commit().await?)
    }

    /// The current version as this transaction sees it.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<StoredResource, StoreError> {
        read_current(&self.txn, &self.origins, resource_type, id).await
    }

    /// See [`Store::create`].
    pub async fn create(&self, resource_type: &str, content: Value) -> Result<StoredResource, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        write_version(&self.txn, self.indexer, resource_type, &id, 1, false, content, None, None).await
    }

    /// See [`Store::update`]. A concurrent writer that got there first makes this a
    /// `VersionConflict` (with `if_match`) or `Concurrent` (without).
    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        content: Value,
        if_match: Option<i64>,
    ) -> Result<(StoredResource, bool), StoreError> {
        if !is_valid_id(id) {
            return Err(StoreError::Invalid(format!("{id:?} is not a valid id: 1-64 of A-Z a-z 0-9 - .")));
        }
        let current = resource::Entity::find_by_id((resource_type.to_string(), id.to_string())).one(&self.txn).await?;
        let (version, created) = match &current {
            Some(row) => (row.version_id + 1, row.deleted),
            None => (1, true),
        };
        if let Some(expected) = if_match {
            let actual = current.as_ref().map_or(0, |r| r.version_id);
            if actual != expected {
                return Err(StoreError::VersionConflict { expected, current: actual });
            }
        }
        let previous = current.as_ref().map(|r| r.version_id);
        let written =
            write_version(&self.txn, self.indexer, resource_type, id, version, false, content, previous, None).await;
        match (written, if_match) {
            // The version the client named was current when read, and is not any more.
            (Err(StoreError::Concurrent(..)), Some(expected)) => {
                Err(StoreError::VersionConflict { expected, current: expected + 1 })
            }
            (other, _) => Ok((other?, created)),
        }
    }

    /// See [`Store::delete`].
    pub async fn delete(&self, resource_type: &str, id: &str) -> Result<(), StoreError> {
        let current = resource::Entity::find_by_id((resource_type.to_string(), id.to_string())).one(&self.txn).await?;
        let Some(row) = current.filter(|r| !r.deleted) else {
            return Ok(());
        };
        let content: Value = serde_json::from_str(&row.content).unwrap_or(Value::Null);
        let previous = Some(row.version_id);
        // The deleted version is the stored one: without its origin if that is kept apart.
        let (version, synced) = (row.version_id + 1, row.synced_ms);
        write_version(&self.txn, self.indexer, resource_type, id, version, true, content, previous, synced).await?;
        Ok(())
    }

    /// See [`Store::slots_overlapping`]; sees this transaction's writes.
    pub async fn slots_overlapping(
        &self,
        schedule: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotRow>, StoreError> {
        slots_overlapping(&self.txn, schedule, from, to).await
    }
}

/// [`Store::put_many`] inside a transaction.
/// Returns how many were created and how many got a new version.
async fn put_many_in<C: ConnectionTrait>(
    txn: &C,
    indexer: Option<Indexer>,
    items: Vec<Put>,
) -> Result<(u64, u64), StoreError> {
    if let Some((_, id, _)) = items.iter().find(|(_, id, _)| !is_valid_id(id)) {
        return Err(StoreError::Invalid(format!("{id:?} is not a valid id: 1-64 of A-Z a-z 0-9 - .")));
    }
    let mut by_type: std::collections::BTreeMap<String, Vec<(String, Value)>> = Default::default();
    for (t, id, content) in items {
        by_type.entry(t).or_default().push((id, content));
    }
    let now = from_millis(millis(Utc::now()));
    let (mut created, mut changed) = (0, 0);
    for (t, resources) in by_type {
        for chunk in resources.chunks(BATCH_ROWS) {
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            let current: std::collections::HashMap<String, resource::Model> = resource::Entity::find()
                .filter(resource::Column::ResourceType.eq(t.as_str()))
                .filter(resource::Column::Id.is_in(ids))
                .all(txn)
                .await?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
            let mut fresh: Vec<(String, Value)> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (id, content) in chunk {
                if !seen.insert(id.as_str()) {
                    return Err(StoreError::Invalid(format!("{t}/{id} appears twice in one write")));
                }
                match current.get(id) {
                    None => {
                        let mut content = content.clone();
                        stamp(&mut content, id, 1, now)?;
                        fresh.push((id.clone(), content));
                    }
                    Some(row) => {
                        let old: Value = serde_json::from_str(&row.content).unwrap_or(Value::Null);
                        if row.deleted || !same_content(&old, content) {
                            write_version(
                                txn,
                                indexer,
                                &t,
                                id,
                                row.version_id + 1,
                                false,
                                content.clone(),
                                Some(row.version_id),
                                None,
                            )
                            .await?;
                            changed += 1;
                        }
                    }
                }
            }
            created += fresh.len() as u64;
            insert_fresh(txn, indexer, &t, &fresh, now).await?;
        }
    }
    Ok((created, changed))
}

/// [`StoreTxn::delete_many`]. The current row keeps its last content with `deleted` set and the
/// next version number (reads answer 410 and never show it); the history has the stamped
/// deleted version, as [`StoreTxn::delete`] writes it.
async fn delete_many_in<C: ConnectionTrait>(txn: &C, resource_type: &str, ids: &[String]) -> Result<u64, StoreError> {
    let now = from_millis(millis(Utc::now()));
    let mut deleted = 0;
    for chunk in ids.chunks(BATCH_ROWS) {
        let current = resource::Entity::find()
            .filter(resource::Column::ResourceType.eq(resource_type))
            .filter(resource::Column::Id.is_in(chunk.iter().cloned()))
            .filter(resource::Column::Deleted.eq(false))
            .all(txn)
            .await?;
        if current.is_empty() {
            continue;
        }
        let gone: Vec<String> = current.iter().map(|r| r.id.clone()).collect();
        let mut schedules = Touched::default();
        for s in current.iter().filter_map(|r| r.schedule.as_ref()) {
            schedules.schedule(s);
        }
        let mut history = Vec::with_capacity(current.len());
        for row in current {
            let mut content: Value = serde_json::from_str(&row.content).unwrap_or(Value::Null);
            stamp(&mut content, &row.id, row.version_id + 1, now)?;
            // A Slot stored without its origin keeps it apart in its deleted version too.
            history.push(resource_history::ActiveModel {
                resource_type: Set(resource_type.to_string()),
                id: Set(row.id),
                version_id: Set(row.version_id + 1),
                last_updated: Set(millis(now)),
                deleted: Set(true),
                content: Set(match row.synced_ms {
                    Some(_) => origin::text_with_meta_last(&content)?,
                    None => content.to_string(),
                }),
                synced_ms: Set(row.synced_ms),
            });
        }
        resource::Entity::update_many()
            .col_expr(resource::Column::VersionId, Expr::col(resource::Column::VersionId).add(1))
            .col_expr(resource::Column::LastUpdated, Expr::value(millis(now)))
            .col_expr(resource::Column::Deleted, Expr::value(true))
            .col_expr(resource::Column::Schedule, Expr::value(Option::<String>::None))
            .col_expr(resource::Column::StartMs, Expr::value(Option::<i64>::None))
            .col_expr(resource::Column::EndMs, Expr::value(Option::<i64>::None))
            .col_expr(resource::Column::Status, Expr::value(Option::<String>::None))
            .filter(resource::Column::ResourceType.eq(resource_type))
            .filter(resource::Column::Id.is_in(gone.iter().cloned()))
            .filter(resource::Column::Deleted.eq(false))
            .exec(txn)
            .await?;
        insert_batched(txn, history.into_iter()).await?;
        forget_index(txn, resource_type, &gone).await?;
        bump_generations(txn, schedules).await?;
        deleted += gone.len() as u64;
    }
    Ok(deleted)
}

async fn read_current<C: ConnectionTrait>(
    db: &C,
    origins: &origin::Origins,
    resource_type: &str,
    id: &str,
) -> Result<StoredResource, StoreError> {
    let row = resource::Entity::find_by_id((resource_type.to_string(), id.to_string()))
        .one(db)
        .await?
        .ok_or_else(|| StoreError::NotFound(resource_type.into(), id.into()))?;
    if row.deleted {
        return Err(StoreError::Gone(resource_type.into(), id.into()));
    }
    let bases = origins.bases(db, row.synced_ms.map(|_| id).into_iter()).await?;
    let content = origin::splice(&row.content, &row.id, row.synced_ms, &bases);
    stored(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, &content)
}

async fn slots_overlapping<C: ConnectionTrait>(
    db: &C,
    schedule: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<SlotRow>, StoreError> {
    let mut q = resource::Entity::find()
        .select_only()
        .columns([resource::Column::Id, resource::Column::Schedule, resource::Column::StartMs])
        .columns([resource::Column::EndMs, resource::Column::Status])
        .filter(resource::Column::StartMs.lt(millis(to)))
        .filter(resource::Column::EndMs.gt(millis(from)));
    if let Some(s) = schedule {
        q = q.filter(resource::Column::Schedule.eq(s));
    }
    Ok(q.order_by_asc(resource::Column::StartMs)
        .order_by_asc(resource::Column::Id)
        .into_tuple::<SlotColumns>()
        .all(db)
        .await?
        .into_iter()
        .map(SlotRow::from)
        .collect())
}

fn stored(
    resource_type: String,
    id: String,
    version_id: i64,
    last_updated: i64,
    deleted: bool,
    content: &str,
) -> Result<StoredResource, StoreError> {
    let content = serde_json::from_str(content)
        .map_err(|e| StoreError::Invalid(format!("stored {resource_type}/{id} is not JSON: {e}")))?;
    Ok(StoredResource { resource_type, id, version_id, last_updated: from_millis(last_updated), deleted, content })
}

/// One live version of a resource as the JSON text the store holds, unparsed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredText {
    /// Its type (`Slot`).
    pub resource_type: String,
    /// Its logical id.
    pub id: String,
    /// Version, from 1.
    pub version_id: i64,
    /// When this version was written.
    pub last_updated: DateTime<Utc>,
    /// The resource JSON, with `id`, `meta.versionId` and `meta.lastUpdated` set.
    pub json: String,
}

impl From<StoredResource> for StoredText {
    fn from(r: StoredResource) -> Self {
        let json = r.content.to_string();
        StoredText {
            resource_type: r.resource_type,
            id: r.id,
            version_id: r.version_id,
            last_updated: r.last_updated,
            json,
        }
    }
}

impl StoredText {
    /// The parsed resource.
    pub fn parse(self) -> Result<StoredResource, StoreError> {
        let StoredText { resource_type, id, version_id, last_updated, json } = self;
        let content = serde_json::from_str(&json)
            .map_err(|e| StoreError::Invalid(format!("stored {resource_type}/{id} is not JSON: {e}")))?;
        Ok(StoredResource { resource_type, id, version_id, last_updated, deleted: false, content })
    }
}

/// The range columns of a resource's row: set for a live Slot, none for anything else.
#[derive(Debug, Default, Clone)]
pub(crate) struct SlotRange {
    pub(crate) schedule: Option<String>,
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) status: Option<String>,
}

impl SlotRange {
    /// How long the Slot is if it is free; 0 otherwise.
    pub(crate) fn free_length(&self) -> i64 {
        match (self.status.as_deref(), self.start_ms, self.end_ms) {
            (Some("free"), Some(start), Some(end)) => Ord::max(end - start, 0),
            _ => 0,
        }
    }

    pub(crate) fn of(resource_type: &str, deleted: bool, content: &Value) -> Result<Self, StoreError> {
        if resource_type != "Slot" || deleted {
            return Ok(SlotRange::default());
        }
        let text = |name: &str| content.get(name).and_then(Value::as_str);
        let schedule = content.get("schedule").and_then(|s| s.get("reference")).and_then(Value::as_str);
        SlotRange::live(schedule, text("start"), text("end"), text("status"))
    }

    /// [`SlotRange::of`] a live Slot given as its members, each as JSON.
    pub(crate) fn of_members(members: &[(&str, std::borrow::Cow<'_, RawValue>)]) -> Result<Self, StoreError> {
        let member = |name: &str| members.iter().find(|(n, _)| *n == name).map(|(_, json)| json.get());
        let text =
            |name: &str| member(name).and_then(|json| serde_json::from_str::<std::borrow::Cow<'_, str>>(json).ok());
        let schedule: Option<Value> = member("schedule").and_then(|json| serde_json::from_str(json).ok());
        let reference = schedule.as_ref().and_then(|s| s.get("reference")).and_then(Value::as_str);
        SlotRange::live(reference, text("start").as_deref(), text("end").as_deref(), text("status").as_deref())
    }

    /// What a live Slot's row keeps for range queries: schedule reference, start and end (UTC
    /// milliseconds), status; or why the Slot cannot be stored.
    fn live(
        schedule: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        status: Option<&str>,
    ) -> Result<Self, StoreError> {
        let instant = |name: &str, raw: Option<&str>| -> Result<i64, StoreError> {
            let raw = raw.ok_or_else(|| StoreError::Invalid(format!("Slot.{name} is required")))?;
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.timestamp_millis())
                .map_err(|_| StoreError::Invalid(format!("Slot.{name} {raw:?} is not an instant")))
        };
        let schedule = schedule.ok_or_else(|| StoreError::Invalid("Slot.schedule.reference is required".into()))?;
        let status = status.ok_or_else(|| StoreError::Invalid("Slot.status is required".into()))?;
        Ok(SlotRange {
            schedule: Some(schedule.to_string()),
            start_ms: Some(instant("start", start)?),
            end_ms: Some(instant("end", end)?),
            status: Some(status.to_string()),
        })
    }
}

/// Inserts resources that do not exist yet as version 1 (already stamped), with their history,
/// Slot rows and index, in multi-row statements.
async fn insert_fresh<C: ConnectionTrait>(
    txn: &C,
    indexer: Option<Indexer>,
    resource_type: &str,
    fresh: &[(String, Value)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if fresh.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = fresh.iter().map(|(_, c)| c.to_string()).collect();
    let ranges = fresh.iter().map(|(_, c)| SlotRange::of(resource_type, false, c)).collect::<Result<Vec<_>, _>>()?;
    let mut touched = Touched::default();
    for range in &ranges {
        touched.slot(range);
    }
    let current: Vec<resource::ActiveModel> = fresh
        .iter()
        .zip(&texts)
        .zip(ranges)
        .map(|(((id, _), text), range)| resource::ActiveModel {
            resource_type: Set(resource_type.to_string()),
            id: Set(id.clone()),
            version_id: Set(1),
            last_updated: Set(millis(now)),
            deleted: Set(false),
            content: Set(text.clone()),
            schedule: Set(range.schedule),
            start_ms: Set(range.start_ms),
            end_ms: Set(range.end_ms),
            status: Set(range.status),
            ..Default::default()
        })
        .collect();
    insert_batched(txn, current.into_iter()).await?;
    let history: Vec<resource_history::ActiveModel> = fresh
        .iter()
        .zip(&texts)
        .map(|((id, _), text)| resource_history::ActiveModel {
            resource_type: Set(resource_type.to_string()),
            id: Set(id.clone()),
            version_id: Set(1),
            last_updated: Set(millis(now)),
            deleted: Set(false),
            content: Set(text.clone()),
            synced_ms: Set(None),
        })
        .collect();
    insert_batched(txn, history.into_iter()).await?;
    bump_generations(txn, touched).await?;
    if let Some(indexer) = indexer {
        let values: Vec<(&str, Indexed)> =
            fresh.iter().map(|(id, c)| (id.as_str(), (indexer.extract)(resource_type, c))).collect();
        insert_index(txn, resource_type, &values).await?;
    }
    Ok(())
}

/// The Schedules whose Slots a transaction changes, each with the longest free Slot it wrote (0
/// for none): what `slot_generation` records as the transaction ends ([`bump_generations`]).
#[derive(Debug, Default)]
pub(crate) struct Touched(std::collections::HashMap<String, i64>);

impl Touched {
    /// A Schedule whose Slots changed otherwise (a Slot left it, or was deleted).
    pub(crate) fn schedule(&mut self, schedule: &str) {
        if !self.0.contains_key(schedule) {
            self.0.insert(schedule.to_string(), 0);
        }
    }

    /// A Slot written with `range` (nothing for another resource).
    pub(crate) fn slot(&mut self, range: &SlotRange) {
        let Some(schedule) = &range.schedule else { return };
        let free = range.free_length();
        match self.0.get_mut(schedule) {
            Some(longest) => *longest = Ord::max(*longest, free),
            None => {
                self.0.insert(schedule.clone(), free);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorted by Schedule: transactions lock the Schedules they share in the same order, so one
    /// waits for the other and neither for both.
    pub(crate) fn sorted(self) -> Vec<(String, i64)> {
        let mut all: Vec<(String, i64)> = self.0.into_iter().collect();
        all.sort_unstable();
        all
    }
}

/// Records that the Slots of the `touched` Schedules changed (in the writing transaction): a new
/// generation each, and the longest free Slot each has had.
async fn bump_generations<C: ConnectionTrait>(txn: &C, touched: Touched) -> Result<(), StoreError> {
    if touched.is_empty() {
        return Ok(());
    }
    let rows = touched.sorted().into_iter().map(|(schedule, free)| slot_generation::ActiveModel {
        schedule: sea_orm::ActiveValue::Set(schedule),
        generation: sea_orm::ActiveValue::Set(1),
        longest_free_ms: sea_orm::ActiveValue::Set(free),
    });
    let next = Expr::col((slot_generation::Entity, slot_generation::Column::Generation)).add(1);
    let greatest = match txn.get_database_backend() {
        sea_orm::DbBackend::Postgres => "GREATEST",
        _ => "MAX",
    };
    let longest = Expr::cust(format!("{greatest}(slot_generation.longest_free_ms, excluded.longest_free_ms)"));
    slot_generation::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(slot_generation::Column::Schedule)
                .value(slot_generation::Column::Generation, next)
                .value(slot_generation::Column::LongestFreeMs, longest)
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

/// Sets `id`, `meta.versionId` and `meta.lastUpdated`.
fn stamp(content: &mut Value, id: &str, version: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    let Value::Object(map) = content else {
        return Err(StoreError::Invalid("a resource must be a JSON object".into()));
    };
    map.insert("id".into(), Value::String(id.to_string()));
    let meta = map.entry("meta").or_insert_with(|| Value::Object(Default::default()));
    if let Value::Object(meta) = meta {
        meta.insert("versionId".into(), Value::String(version.to_string()));
        meta.insert("lastUpdated".into(), Value::String(now.to_rfc3339_opts(SecondsFormat::Millis, true)));
    }
    Ok(())
}

/// True when two versions differ only in what the store stamps on them (`id`,
/// `meta.versionId`, `meta.lastUpdated`): a rewrite, not a change.
fn same_content(a: &Value, b: &Value) -> bool {
    let (Value::Object(a), Value::Object(b)) = (a, b) else { return a == b };
    let stamped = |k: &str| k == "id" || k == "meta";
    let meta = |m: Option<&Value>| -> serde_json::Map<String, Value> {
        let mut m = m.and_then(Value::as_object).cloned().unwrap_or_default();
        m.remove("versionId");
        m.remove("lastUpdated");
        m
    };
    a.iter().filter(|(k, _)| !stamped(k)).count() == b.iter().filter(|(k, _)| !stamped(k)).count()
        && a.iter().filter(|(k, _)| !stamped(k)).all(|(k, v)| b.get(k) == Some(v))
        && meta(a.get("meta")) == meta(b.get("meta"))
}

/// Removes the index rows of `ids`.
async fn forget_index<C: ConnectionTrait>(txn: &C, resource_type: &str, ids: &[String]) -> Result<(), StoreError> {
    for chunk in ids.chunks(BATCH_ROWS) {
        search_index::Entity::delete_many()
            .filter(search_index::Column::ResourceType.eq(resource_type))
            .filter(search_index::Column::Id.is_in(chunk.iter().cloned()))
            .exec(txn)
            .await?;
        date_index::Entity::delete_many()
            .filter(date_index::Column::ResourceType.eq(resource_type))
            .filter(date_index::Column::Id.is_in(chunk.iter().cloned()))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Inserts the index rows of resources (id, values), in multi-row statements.
async fn insert_index<C: ConnectionTrait>(
    txn: &C,
    resource_type: &str,
    resources: &[(impl AsRef<str>, Indexed)],
) -> Result<(), StoreError> {
    let terms: Vec<search_index::ActiveModel> = resources
        .iter()
        .flat_map(|(id, ix)| {
            ix.terms.iter().map(move |r| search_index::ActiveModel {
                resource_type: Set(resource_type.to_string()),
                id: Set(id.as_ref().to_string()),
                param: Set(r.param.clone()),
                system: Set(r.system.clone()),
                value: Set(r.value.clone()),
                raw: Set(r.raw.clone()),
                ..Default::default()
            })
        })
        .collect();
    insert_batched(txn, terms.into_iter()).await?;
    let dates: Vec<date_index::ActiveModel> = resources
        .iter()
        .flat_map(|(id, ix)| {
            ix.dates.iter().map(move |d| date_index::ActiveModel {
                resource_type: Set(resource_type.to_string()),
                id: Set(id.as_ref().to_string()),
                param: Set(d.param.clone()),
                low_ms: Set(d.low),
                high_ms: Set(d.high),
                ..Default::default()
            })
        })
        .collect();
    insert_batched(txn, dates.into_iter()).await
}

/// Inserts `rows` [`BATCH_ROWS`] at a time.
async fn insert_batched<C, A>(txn: &C, rows: std::vec::IntoIter<A>) -> Result<(), StoreError>
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

/// Copies version `version` of a resource from `resource` to the history, if it is the current
/// one and not there yet.
async fn keep_in_history<C: ConnectionTrait>(
    txn: &C,
    resource_type: &str,
    id: &str,
    version: i64,
) -> Result<(), StoreError> {
    use sea_orm::sea_query::Query;
    use {resource::Column as R, resource_history::Column as H};
    let current = Query::select()
        .columns([R::ResourceType, R::Id, R::VersionId, R::LastUpdated, R::Deleted, R::Content, R::SyncedMs])
        .from(resource::Entity)
        .and_where(R::ResourceType.eq(resource_type))
        .and_where(R::Id.eq(id))
        .and_where(R::VersionId.eq(version))
        .to_owned();
    let copy = Query::insert()
        .into_table(resource_history::Entity)
        .columns([H::ResourceType, H::Id, H::VersionId, H::LastUpdated, H::Deleted, H::Content, H::SyncedMs])
        .select_from(current)
        .map_err(|e| StoreError::Invalid(e.to_string()))?
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .to_owned();
    txn.execute(&copy).await?;
    Ok(())
}

/// Writes version `version` of a resource inside `txn`: the current row (conditional on
/// `previous` when there was one), the history row; a Slot's range columns with it.
/// `synced_ms` is set only when `content` is an ingested Slot's without its origin (a deletion
/// of one as stored); any other content is whole ([`origin`]).
#[allow(clippy::too_many_arguments)]
async fn write_version<C: ConnectionTrait>(
    txn: &C,
    indexer: Option<Indexer>,
    resource_type: &str,
    id: &str,
    version: i64,
    deleted: bool,
    mut content: Value,
    previous: Option<i64>,
    synced_ms: Option<i64>,
) -> Result<StoredResource, StoreError> {
    let now = from_millis(millis(Utc::now()));
    stamp(&mut content, id, version, now)?;
    let text = match synced_ms {
        Some(_) => origin::text_with_meta_last(&content)?,
        None => content.to_string(),
    };
    let range = SlotRange::of(resource_type, deleted, &content)?;
    // The Schedules whose Slots this write changes: the one the Slot had, the one it has.
    let mut touched = Touched::default();
    if resource_type == "Slot" && previous.is_some() {
        let before: Option<Option<String>> = resource::Entity::find_by_id((resource_type.to_string(), id.to_string()))
            .select_only()
            .column(resource::Column::Schedule)
            .into_tuple()
            .one(txn)
            .await?;
        if let Some(before) = before.flatten() {
            touched.schedule(&before);
        }
    }
    touched.slot(&range);

    let row = resource::ActiveModel {
        resource_type: Set(resource_type.to_string()),
        id: Set(id.to_string()),
        version_id: Set(version),
        last_updated: Set(millis(now)),
        deleted: Set(deleted),
        content: Set(text.clone()),
        schedule: Set(range.schedule.clone()),
        start_ms: Set(range.start_ms),
        end_ms: Set(range.end_ms),
        status: Set(range.status.clone()),
        synced_ms: Set(synced_ms),
        ..Default::default()
    };
    match previous {
        None => {
            resource::Entity::insert(row).exec(txn).await.map_err(|e| match e.sql_err() {
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                    StoreError::Concurrent(resource_type.into(), id.into())
                }
                _ => StoreError::Database(e),
            })?;
        }
        Some(prev) => {
            // The version replaced goes to the history, unless it is there already: an ingest
            // writes a first version to `resource` alone.
            keep_in_history(txn, resource_type, id, prev).await?;
            let done = resource::Entity::update_many()
                .col_expr(resource::Column::VersionId, Expr::value(version))
                .col_expr(resource::Column::LastUpdated, Expr::value(millis(now)))
                .col_expr(resource::Column::Deleted, Expr::value(deleted))
                .col_expr(resource::Column::Content, Expr::value(text.clone()))
                .col_expr(resource::Column::Schedule, Expr::value(range.schedule))
                .col_expr(resource::Column::StartMs, Expr::value(range.start_ms))
                .col_expr(resource::Column::EndMs, Expr::value(range.end_ms))
                .col_expr(resource::Column::Status, Expr::value(range.status))
                .col_expr(resource::Column::SyncedMs, Expr::value(synced_ms))
                .filter(resource::Column::ResourceType.eq(resource_type))
                .filter(resource::Column::Id.eq(id))
                .filter(resource::Column::VersionId.eq(prev))
                .exec(txn)
                .await?;
            if done.rows_affected != 1 {
                return Err(StoreError::Concurrent(resource_type.into(), id.into()));
            }
        }
    }
    resource_history::Entity::insert(resource_history::ActiveModel {
        resource_type: Set(resource_type.to_string()),
        id: Set(id.to_string()),
        version_id: Set(version),
        last_updated: Set(millis(now)),
        deleted: Set(deleted),
        content: Set(text),
        synced_ms: Set(synced_ms),
    })
    .exec(txn)
    .await?;

    if let Some(indexer) = indexer {
        forget_index(txn, resource_type, &[id.to_string()]).await?;
        if !deleted {
            insert_index(txn, resource_type, &[(id, (indexer.extract)(resource_type, &content))]).await?;
        }
    }
    bump_generations(txn, touched).await?;
    Ok(StoredResource {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        version_id: version,
        last_updated: now,
        deleted,
        content,
    })
}

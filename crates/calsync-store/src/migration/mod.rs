//! Schema migrations, one file each, applied in order on every start under a lock ([`migrate`]).
//! The table and column names the migrations share are here.

use sea_orm::{DatabaseConnection, TransactionTrait};
use sea_orm_migration::prelude::*;

/// Declares a migration: its struct, its name in `seaql_migrations`, and as its `up` the function
/// `up` of its module. `all_or_nothing` runs it in a transaction of its own on SQLite too
/// (sea-orm wraps only PostgreSQL's by default; all of them run inside [`migrate`]'s anyway).
macro_rules! migration {
    ($migration:ident, $name:literal) => {
        migration!($migration, $name, None);
    };
    ($migration:ident, $name:literal, all_or_nothing) => {
        migration!($migration, $name, Some(true));
    };
    ($migration:ident, $name:literal, $transaction:expr) => {
        pub(super) struct $migration;

        impl MigrationName for $migration {
            fn name(&self) -> &str {
                $name
            }
        }

        #[async_trait::async_trait]
        impl MigrationTrait for $migration {
            fn use_transaction(&self) -> Option<bool> {
                $transaction
            }

            async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
                up(manager).await
            }
        }
    };
}

mod m000001_create_resources;
mod m000002_create_search_index;
mod m000003_create_date_index;
mod m000004_cover_slot_ranges;
mod m000005_create_slot_generation;
mod m000006_create_connection;
mod m000007_create_authorization;
mod m000008_index_slot_starts;
mod m000009_create_publisher;
mod m000010_drop_slot_start;
mod m000011_index_ingested_by_publisher;
mod m000012_one_row_per_resource;
mod m000013_keys_in_byte_order;
mod m000014_generation_of_every_slot_schedule;
mod m000015_create_ingest_seen;
mod m000016_longest_free_slot;
mod m000017_origin_per_publisher;
mod m000018_create_instance;
mod m000019_create_proposal;

use m000001_create_resources::CreateResources;
use m000002_create_search_index::CreateSearchIndex;
use m000003_create_date_index::CreateDateIndex;
use m000004_cover_slot_ranges::CoverSlotRanges;
use m000005_create_slot_generation::CreateSlotGeneration;
use m000006_create_connection::CreateConnection;
use m000007_create_authorization::CreateAuthorization;
use m000008_index_slot_starts::IndexSlotStarts;
use m000009_create_publisher::CreatePublisher;
use m000010_drop_slot_start::DropSlotStart;
use m000011_index_ingested_by_publisher::IndexIngestedByPublisher;
use m000012_one_row_per_resource::OneRowPerResource;
use m000013_keys_in_byte_order::KeysInByteOrder;
use m000014_generation_of_every_slot_schedule::GenerationOfEverySlotSchedule;
use m000015_create_ingest_seen::CreateIngestSeen;
use m000016_longest_free_slot::LongestFreeSlot;
use m000017_origin_per_publisher::OriginPerPublisher;
use m000018_create_instance::CreateInstance;
use m000019_create_proposal::CreateProposal;

/// All migrations of the store.
pub struct Migrator;

impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateResources),
            Box::new(CreateSearchIndex),
            Box::new(CreateDateIndex),
            Box::new(CoverSlotRanges),
            Box::new(CreateSlotGeneration),
            Box::new(CreateConnection),
            Box::new(CreateAuthorization),
            Box::new(IndexSlotStarts),
            Box::new(CreatePublisher),
            Box::new(DropSlotStart),
            Box::new(IndexIngestedByPublisher),
            Box::new(OneRowPerResource),
            Box::new(KeysInByteOrder),
            Box::new(GenerationOfEverySlotSchedule),
            Box::new(CreateIngestSeen),
            Box::new(LongestFreeSlot),
            Box::new(OriginPerPublisher),
            Box::new(CreateInstance),
            Box::new(CreateProposal),
        ]
    }
}

/// Creates `table`, unless it exists, with the columns and keys `define` adds.
async fn create_table(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    define: impl FnOnce(&mut TableCreateStatement),
) -> Result<(), DbErr> {
    let mut statement = Table::create();
    statement.table(table).if_not_exists();
    define(&mut statement);
    manager.create_table(statement).await
}

/// Creates index `name` over `columns` of `table`, unless it exists.
async fn create_index<C: IntoIndexColumn>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: impl IntoIterator<Item = C>,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.if_not_exists().name(name).table(table);
    for column in columns {
        index.col(column);
    }
    manager.create_index(index).await
}

/// The PostgreSQL advisory lock the migrations run under ("migrate" in ASCII).
const MIGRATION_LOCK: i64 = 0x006d_6967_7261_7465;

/// Applies the pending migrations, once however many processes start together on one database
/// (API replicas, workers): they run in one transaction that first takes SQLite's write lock
/// (`BEGIN IMMEDIATE`) or PostgreSQL's advisory lock [`MIGRATION_LOCK`], and each process after
/// the first finds nothing pending once its turn comes. Without the lock, each created the
/// migrations table and applied the first migrations at once, and all but one died
/// (`duplicate key … "pg_type_typname_nsp_index"`, `no such table: ingested`). A database with
/// nothing pending is only read: a process starting beside a long write does not wait for it.
pub(crate) async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use sea_orm::{DbBackend, SqliteTransactionMode, TransactionOptions};
    let pending = Migrator::get_pending_migrations_read_only(db).await;
    if pending.is_ok_and(|p| p.is_empty()) {
        return Ok(());
    }
    let txn = match db.get_database_backend() {
        DbBackend::Sqlite => {
            let immediate = Some(SqliteTransactionMode::Immediate);
            db.begin_with_options(TransactionOptions { sqlite_transaction_mode: immediate, ..Default::default() })
                .await?
        }
        _ => db.begin().await?,
    };
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")).await?;
    }
    Migrator::up(&txn, None).await?;
    txn.commit().await
}

// `ResourceType` names the column `resource_type` of table `resource`.
#[allow(clippy::enum_variant_names)]
#[derive(DeriveIden)]
enum Resource {
    Table,
    ResourceType,
    Id,
    VersionId,
    LastUpdated,
    Deleted,
    Content,
}

#[derive(DeriveIden)]
enum ResourceHistory {
    Table,
}

#[derive(DeriveIden)]
enum Slot {
    Table,
    Id,
    Schedule,
    StartMs,
    EndMs,
    Status,
}

#[derive(DeriveIden)]
enum SearchIndex {
    Table,
    RowId,
    ResourceType,
    Id,
    Param,
    System,
    Value,
    Raw,
}

#[derive(DeriveIden)]
enum DateIndex {
    Table,
    RowId,
    ResourceType,
    Id,
    Param,
    LowMs,
    HighMs,
}

#[derive(DeriveIden)]
enum StoreMeta {
    Table,
    Key,
    Value,
}

#[derive(DeriveIden)]
enum SlotGeneration {
    Table,
    Schedule,
    Generation,
}

#[derive(DeriveIden)]
enum Connection {
    Table,
    Id,
    Participant,
    Schedule,
    Kind,
    Host,
    Secret,
    Validator,
    State,
    Reason,
    LastSuccessMs,
    NextRunMs,
    Attempts,
}

#[derive(DeriveIden)]
enum Authorization {
    Table,
    State,
    Provider,
    Participant,
    Verifier,
    ExpiresMs,
}

#[derive(DeriveIden)]
enum Publisher {
    Table,
    Id,
    ManifestUrl,
    Options,
    State,
    Reason,
    Report,
    Etag,
    LastModified,
    Since,
    Polls,
    LastPollMs,
    NextRunMs,
}

#[derive(DeriveIden)]
enum Ingested {
    Table,
    ResourceType,
    Id,
    Publisher,
    Digest,
    Poll,
}

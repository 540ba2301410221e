//! Schema migrations, applied in order on every start (under a lock: see `crate::migrate`).

use sea_orm_migration::prelude::*;

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
        ]
    }
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

/// Resources, their history, and the Slot range table (moved onto `resource` by
/// [`OneRowPerResource`]).
struct CreateResources;

impl MigrationName for CreateResources {
    fn name(&self) -> &str {
        "m20261124_000001_create_resources"
    }
}

fn versioned(table: impl IntoIden, with_version_in_key: bool) -> TableCreateStatement {
    let mut key = Index::create();
    key.col(Resource::ResourceType).col(Resource::Id);
    if with_version_in_key {
        key.col(Resource::VersionId);
    }
    Table::create()
        .table(table)
        .if_not_exists()
        .col(ColumnDef::new(Resource::ResourceType).string_len(64).not_null())
        .col(ColumnDef::new(Resource::Id).string_len(64).not_null())
        .col(ColumnDef::new(Resource::VersionId).big_integer().not_null())
        .col(ColumnDef::new(Resource::LastUpdated).big_integer().not_null())
        .col(ColumnDef::new(Resource::Deleted).boolean().not_null())
        .col(ColumnDef::new(Resource::Content).text().not_null())
        .primary_key(&mut key)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateResources {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(versioned(Resource::Table, false)).await?;
        manager.create_table(versioned(ResourceHistory::Table, true)).await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("resource_last_updated")
                    .table(Resource::Table)
                    .col(Resource::ResourceType)
                    .col(Resource::LastUpdated)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Slot::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Slot::Id).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Slot::Schedule).string_len(128).not_null())
                    .col(ColumnDef::new(Slot::StartMs).big_integer().not_null())
                    .col(ColumnDef::new(Slot::EndMs).big_integer().not_null())
                    .col(ColumnDef::new(Slot::Status).string_len(32).not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in
            [("slot_schedule_start", vec![Slot::Schedule, Slot::StartMs]), ("slot_start", vec![Slot::StartMs])]
        {
            let mut index = Index::create();
            index.if_not_exists().name(name).table(Slot::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }
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

/// One row per indexed token, reference or string value.
struct CreateSearchIndex;

impl MigrationName for CreateSearchIndex {
    fn name(&self) -> &str {
        "m20261124_000002_create_search_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSearchIndex {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SearchIndex::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(SearchIndex::RowId).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(SearchIndex::ResourceType).string_len(64).not_null())
                    .col(ColumnDef::new(SearchIndex::Id).string_len(64).not_null())
                    .col(ColumnDef::new(SearchIndex::Param).string_len(64).not_null())
                    .col(ColumnDef::new(SearchIndex::System).text().not_null())
                    .col(ColumnDef::new(SearchIndex::Value).text().not_null())
                    .col(ColumnDef::new(SearchIndex::Raw).text().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("search_index_lookup", vec![SearchIndex::ResourceType, SearchIndex::Param, SearchIndex::Value]),
            ("search_index_owner", vec![SearchIndex::ResourceType, SearchIndex::Id]),
        ] {
            let mut index = Index::create();
            index.if_not_exists().name(name).table(SearchIndex::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }
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

/// Date ranges for date search parameters, and the store's own facts.
struct CreateDateIndex;

impl MigrationName for CreateDateIndex {
    fn name(&self) -> &str {
        "m20261124_000003_create_date_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDateIndex {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DateIndex::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DateIndex::RowId).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(DateIndex::ResourceType).string_len(64).not_null())
                    .col(ColumnDef::new(DateIndex::Id).string_len(64).not_null())
                    .col(ColumnDef::new(DateIndex::Param).string_len(64).not_null())
                    .col(ColumnDef::new(DateIndex::LowMs).big_integer().not_null())
                    .col(ColumnDef::new(DateIndex::HighMs).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("date_index_lookup", vec![DateIndex::ResourceType, DateIndex::Param, DateIndex::LowMs]),
            ("date_index_owner", vec![DateIndex::ResourceType, DateIndex::Id]),
        ] {
            let mut index = Index::create();
            index.if_not_exists().name(name).table(DateIndex::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(StoreMeta::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(StoreMeta::Key).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(StoreMeta::Value).text().not_null())
                    .to_owned(),
            )
            .await
    }
}

/// The Slot range index covers what overlap queries read (schedule, start, end, status, id), so
/// walking a Schedule's Slots never visits the table: measured on 1,000,000 Slots, the lookups
/// of each row in the table were most of the time of a `$find-mutual` (docs/benchmarks.md).
struct CoverSlotRanges;

impl MigrationName for CoverSlotRanges {
    fn name(&self) -> &str {
        "m20261124_000004_cover_slot_ranges"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CoverSlotRanges {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("slot_schedule_range")
                    .table(Slot::Table)
                    .col(Slot::Schedule)
                    .col(Slot::StartMs)
                    .col(Slot::EndMs)
                    .col(Slot::Status)
                    .col(Slot::Id)
                    .to_owned(),
            )
            .await?;
        manager.drop_index(Index::drop().if_exists().name("slot_schedule_start").table(Slot::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SlotGeneration {
    Table,
    Schedule,
    Generation,
}

/// A change counter per Schedule, so cached Slot windows can be checked for staleness.
struct CreateSlotGeneration;

impl MigrationName for CreateSlotGeneration {
    fn name(&self) -> &str {
        "m20261124_000005_create_slot_generation"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSlotGeneration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SlotGeneration::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(SlotGeneration::Schedule).string_len(128).not_null().primary_key())
                    .col(ColumnDef::new(SlotGeneration::Generation).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }
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

/// Participants' calendar connections and their sync status.
struct CreateConnection;

impl MigrationName for CreateConnection {
    fn name(&self) -> &str {
        "m20261124_000006_create_connection"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateConnection {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Connection::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Connection::Id).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Connection::Participant).string_len(128).not_null())
                    .col(ColumnDef::new(Connection::Schedule).string_len(64).not_null())
                    .col(ColumnDef::new(Connection::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Connection::Host).string_len(255).not_null())
                    .col(ColumnDef::new(Connection::Secret).text().null())
                    .col(ColumnDef::new(Connection::Validator).text().null())
                    .col(ColumnDef::new(Connection::State).string_len(32).not_null())
                    .col(ColumnDef::new(Connection::Reason).text().null())
                    .col(ColumnDef::new(Connection::LastSuccessMs).big_integer().null())
                    .col(ColumnDef::new(Connection::NextRunMs).big_integer().null())
                    .col(ColumnDef::new(Connection::Attempts).integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("connection_participant")
                    .table(Connection::Table)
                    .col(Connection::Participant)
                    .to_owned(),
            )
            .await
    }
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

/// OAuth authorizations in flight: between `/connect/{provider}/start` and its callback.
struct CreateAuthorization;

impl MigrationName for CreateAuthorization {
    fn name(&self) -> &str {
        "m20261124_000007_create_authorization"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuthorization {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Authorization::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Authorization::State).string_len(128).not_null().primary_key())
                    .col(ColumnDef::new(Authorization::Provider).string_len(16).not_null())
                    .col(ColumnDef::new(Authorization::Participant).string_len(128).not_null())
                    .col(ColumnDef::new(Authorization::Verifier).text().not_null())
                    .col(ColumnDef::new(Authorization::ExpiresMs).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }
}

/// Slots in time order across all Schedules, with the id that breaks ties (the weekly files of
/// `$bulk-publish` walk it page by page with a `(start, id)` cursor).
struct IndexSlotStarts;

impl MigrationName for IndexSlotStarts {
    fn name(&self) -> &str {
        "m20261124_000008_index_slot_starts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexSlotStarts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("slot_start_id")
                    .table(Slot::Table)
                    .col(Slot::StartMs)
                    .col(Slot::Id)
                    .to_owned(),
            )
            .await
    }
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

/// SMART Scheduling Links publishers calsync ingests, and what came from each.
struct CreatePublisher;

impl MigrationName for CreatePublisher {
    fn name(&self) -> &str {
        "m20261124_000009_create_publisher"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePublisher {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Publisher::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Publisher::Id).string_len(32).not_null().primary_key())
                    .col(ColumnDef::new(Publisher::ManifestUrl).text().not_null().unique_key())
                    .col(ColumnDef::new(Publisher::Options).text().not_null())
                    .col(ColumnDef::new(Publisher::State).string_len(16).not_null())
                    .col(ColumnDef::new(Publisher::Reason).text())
                    .col(ColumnDef::new(Publisher::Report).text())
                    .col(ColumnDef::new(Publisher::Etag).text())
                    .col(ColumnDef::new(Publisher::LastModified).text())
                    .col(ColumnDef::new(Publisher::Since).text())
                    .col(ColumnDef::new(Publisher::Polls).big_integer().not_null())
                    .col(ColumnDef::new(Publisher::LastPollMs).big_integer())
                    .col(ColumnDef::new(Publisher::NextRunMs).big_integer())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Ingested::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Ingested::ResourceType).string_len(64).not_null())
                    .col(ColumnDef::new(Ingested::Id).string_len(64).not_null())
                    .col(ColumnDef::new(Ingested::Publisher).string_len(32).not_null())
                    .col(ColumnDef::new(Ingested::Digest).big_integer().not_null())
                    .col(ColumnDef::new(Ingested::Poll).big_integer().not_null())
                    .primary_key(Index::create().col(Ingested::ResourceType).col(Ingested::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ingested_publisher_poll")
                    .table(Ingested::Table)
                    .col(Ingested::Publisher)
                    .col(Ingested::Poll)
                    .to_owned(),
            )
            .await
    }
}

/// `slot_start (start_ms)` is a prefix of `slot_start_id (start_ms, id)`: every query it served,
/// the other serves, and each Slot write paid for both (an ingest writes a million).
struct DropSlotStart;

impl MigrationName for DropSlotStart {
    fn name(&self) -> &str {
        "m20261124_000010_drop_slot_start"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for DropSlotStart {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().if_exists().name("slot_start").table(Slot::Table).to_owned()).await
    }
}

/// `ingested_publisher_poll (publisher, poll)` becomes `ingested_publisher (publisher)`: every
/// poll marks each unchanged resource seen by writing its `poll`, and with `poll` in an index
/// each of those writes changed the index too (on PostgreSQL, a new index entry per row and
/// poll: no heap-only update). A sweep finds the publisher's rows by the new index and reads
/// their `poll` from the table. On SQLite the table is rebuilt `WITHOUT ROWID`: its rows are
/// small and always found by their key, so the key's index is the table (one b-tree less to
/// write per ingested resource).
struct IndexIngestedByPublisher;

impl MigrationName for IndexIngestedByPublisher {
    fn name(&self) -> &str {
        "m20261124_000011_index_ingested_by_publisher"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexIngestedByPublisher {
    /// All or nothing on SQLite too (sea-orm wraps only PostgreSQL's migrations by default): a
    /// rebuild cut off half-way would leave no `ingested` table.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().if_exists().name("ingested_publisher_poll").table(Ingested::Table).to_owned())
            .await?;
        if manager.get_database_backend() == sea_orm::DbBackend::Sqlite {
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE TABLE ingested_keyed (resource_type varchar(64) NOT NULL, id varchar(64) NOT NULL, \
                     publisher varchar(32) NOT NULL, digest bigint NOT NULL, poll bigint NOT NULL, \
                     PRIMARY KEY (resource_type, id)) WITHOUT ROWID; \
                     INSERT INTO ingested_keyed SELECT resource_type, id, publisher, digest, poll FROM ingested; \
                     DROP TABLE ingested; \
                     ALTER TABLE ingested_keyed RENAME TO ingested;",
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ingested_publisher")
                    .table(Ingested::Table)
                    .col(Ingested::Publisher)
                    .to_owned(),
            )
            .await
    }
}

/// A resource is one row: the Slot range columns (`schedule`, `start_ms`, `end_ms`, `status`, set
/// on a live Slot's row only) and what calsync ingested it from (`publisher`, `digest`, `poll`,
/// set on an ingested resource's row only) move onto `resource`, and the tables `slot` and
/// `ingested` go. An ingested Slot was three rows in three tables (nine b-trees on SQLite); now
/// it is one row, and the range indexes are partial (`… WHERE start_ms IS NOT NULL`), so they
/// hold Slots only. A publisher's rows are found by their ids (`{publisher}.…`), a range of the
/// primary key: no index of their own (docs/benchmarks.md, "One row per resource").
struct OneRowPerResource;

impl MigrationName for OneRowPerResource {
    fn name(&self) -> &str {
        "m20261124_000012_one_row_per_resource"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OneRowPerResource {
    /// All or nothing on SQLite too: cut off half-way, Slots would have no range columns.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (column, kind) in [
            ("schedule", "varchar(128)"),
            ("start_ms", "bigint"),
            ("end_ms", "bigint"),
            ("status", "varchar(32)"),
            ("publisher", "varchar(32)"),
            ("digest", "bigint"),
            ("poll", "bigint"),
        ] {
            db.execute_unprepared(&format!("ALTER TABLE resource ADD COLUMN {column} {kind} NULL")).await?;
        }
        db.execute_unprepared(
            "UPDATE resource SET schedule = s.schedule, start_ms = s.start_ms, end_ms = s.end_ms, status = s.status \
             FROM slot s WHERE resource.resource_type = 'Slot' AND resource.id = s.id AND NOT resource.deleted",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE resource SET publisher = i.publisher, digest = i.digest, poll = i.poll FROM ingested i \
             WHERE resource.resource_type = i.resource_type AND resource.id = i.id",
        )
        .await?;
        db.execute_unprepared("DROP TABLE slot").await?;
        db.execute_unprepared("DROP TABLE ingested").await?;
        db.execute_unprepared(
            "CREATE INDEX slot_schedule_range ON resource (schedule, start_ms, end_ms, status, id) \
             WHERE schedule IS NOT NULL",
        )
        .await?;
        db.execute_unprepared("CREATE INDEX slot_start_id ON resource (start_ms, id) WHERE start_ms IS NOT NULL")
            .await?;
        Ok(())
    }
}

/// PostgreSQL: the text columns of keys and search values compare bytes (`COLLATE "C"`), as
/// SQLite's do, whatever the database's own collation. Two gains: ids, references and search
/// values sort alike on both databases (a page of results, a publisher's range of ids), and every
/// comparison in those indexes is a `memcmp`, where a locale's collation copies both strings and
/// calls `strcoll` (a fifth of PostgreSQL's time in an ingest; 9 % more rows a second inserted
/// into `resource`, docs/benchmarks.md, "Keys in byte order"). Under `C.UTF-8` the order is the
/// same as before; under a linguistic collation, ids now sort by code point. A no-op on SQLite.
struct KeysInByteOrder;

impl MigrationName for KeysInByteOrder {
    fn name(&self) -> &str {
        "m20261125_000013_keys_in_byte_order"
    }
}

/// The key and search-value columns, per table, with their types.
const BYTE_ORDER_COLUMNS: &[(&str, &[(&str, &str)])] = &[
    (
        "resource",
        &[
            ("resource_type", "varchar(64)"),
            ("id", "varchar(64)"),
            ("schedule", "varchar(128)"),
            ("status", "varchar(32)"),
            ("publisher", "varchar(32)"),
        ],
    ),
    ("resource_history", &[("resource_type", "varchar(64)"), ("id", "varchar(64)")]),
    (
        "search_index",
        &[
            ("resource_type", "varchar(64)"),
            ("id", "varchar(64)"),
            ("param", "varchar(64)"),
            ("system", "text"),
            ("value", "text"),
        ],
    ),
    ("date_index", &[("resource_type", "varchar(64)"), ("id", "varchar(64)"), ("param", "varchar(64)")]),
    ("slot_generation", &[("schedule", "varchar(128)")]),
];

#[async_trait::async_trait]
impl MigrationTrait for KeysInByteOrder {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        for (table, columns) in BYTE_ORDER_COLUMNS {
            // One statement per table: its indexes are rebuilt once.
            let alter: Vec<String> =
                columns.iter().map(|(c, kind)| format!("ALTER COLUMN {c} TYPE {kind} COLLATE \"C\"")).collect();
            manager.get_connection().execute_unprepared(&format!("ALTER TABLE {table} {}", alter.join(", "))).await?;
        }
        Ok(())
    }
}

/// Every Schedule with live Slots has a Slot generation: Slots written before there were
/// generations (migration 5) had none, and what is remembered by generation (the periods of
/// `Store::schedules_by_period`) would have left them out.
struct GenerationOfEverySlotSchedule;

impl MigrationName for GenerationOfEverySlotSchedule {
    fn name(&self) -> &str {
        "m20261125_000014_generation_of_every_slot_schedule"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for GenerationOfEverySlotSchedule {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO slot_generation (schedule, generation) \
                 SELECT DISTINCT schedule, 1 FROM resource r WHERE r.schedule IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM slot_generation g WHERE g.schedule = r.schedule)",
            )
            .await?;
        Ok(())
    }
}

/// `ingest_seen`: the stored resources a poll found unchanged, until the poll's sweep. On
/// PostgreSQL a poll used to mark each one seen by writing its row's `poll`, and an update of a
/// full page writes a whole new row and an entry in each of its indexes (10,000 rows: 385 ms;
/// into this table: 38 ms; docs/benchmarks.md). Unlogged there: it only matters while a poll
/// runs, and a poll cut short by a crash is read again. SQLite writes `poll` in place and leaves
/// the table empty.
struct CreateIngestSeen;

impl MigrationName for CreateIngestSeen {
    fn name(&self) -> &str {
        "m20261125_000015_create_ingest_seen"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateIngestSeen {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let (unlogged, bytes) = match manager.get_database_backend() {
            sea_orm::DbBackend::Postgres => ("UNLOGGED ", " COLLATE \"C\""),
            _ => ("", ""),
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE {unlogged}TABLE IF NOT EXISTS ingest_seen (publisher varchar(32){bytes} NOT NULL, \
                 poll bigint NOT NULL, resource_type varchar(64){bytes} NOT NULL, id text{bytes} NOT NULL, \
                 PRIMARY KEY (publisher, poll, resource_type, id))"
            ))
            .await?;
        Ok(())
    }
}

/// `slot_generation.longest_free_ms`: a bound on how long any free Slot of the Schedule is, or
/// was (it only grows). The free Slots overlapping a window then start no earlier than the window
/// less the longest of them, and both databases read a bounded range of `slot_start_id`, where
/// `start < to AND end > from` read every Slot that starts before the window's end (2.2 s for
/// `Appointment/$find` naming no provider over a million Slots; docs/benchmarks.md).
struct LongestFreeSlot;

impl MigrationName for LongestFreeSlot {
    fn name(&self) -> &str {
        "m20261125_000016_longest_free_slot"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for LongestFreeSlot {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE slot_generation ADD COLUMN longest_free_ms bigint NOT NULL DEFAULT 0")
            .await?;
        db.execute_unprepared(
            "UPDATE slot_generation SET longest_free_ms = COALESCE((SELECT MAX(r.end_ms - r.start_ms) FROM resource r \
             WHERE r.schedule = slot_generation.schedule AND r.status = 'free'), 0)",
        )
        .await?;
        Ok(())
    }
}

/// `synced_ms` on `resource` and `resource_history`: set on an ingested Slot stored without its
/// origin (`meta.source` and the lastSourceSync extension), which is then the publisher's
/// manifest, the Slot's id in it and this instant, added back wherever the row is read
/// (`crate::origin`). The origin was 185 of the 436 bytes of a Slot's row, the same in every row
/// of a publisher; without it a first ingest into SQLite is a tenth to a fifth faster
/// (docs/benchmarks.md, "The origin in every row"). Rows stored before keep their origin in the
/// JSON.
struct OriginPerPublisher;

impl MigrationName for OriginPerPublisher {
    fn name(&self) -> &str {
        "m20261125_000017_origin_per_publisher"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for OriginPerPublisher {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("ALTER TABLE resource ADD COLUMN synced_ms bigint NULL").await?;
        db.execute_unprepared("ALTER TABLE resource_history ADD COLUMN synced_ms bigint NULL").await?;
        Ok(())
    }
}

//! `ingest_seen`: the stored resources a poll found unchanged, until the poll's sweep. On
//! PostgreSQL a poll used to mark each one seen by writing its row's `poll`, and an update of a
//! full page writes a whole new row and an entry in each of its indexes (10,000 rows: 385 ms;
//! into this table: 38 ms; docs/benchmarks-log.md). Unlogged there: it only matters while a poll
//! runs, and a poll cut short by a crash is read again. SQLite writes `poll` in place and leaves
//! the table empty.

use sea_orm_migration::prelude::*;

migration!(CreateIngestSeen, "m20261125_000015_create_ingest_seen");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
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

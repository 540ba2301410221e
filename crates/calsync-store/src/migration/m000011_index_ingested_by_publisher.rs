//! `ingested_publisher_poll (publisher, poll)` becomes `ingested_publisher (publisher)`: every
//! poll marks each unchanged resource seen by writing its `poll`, and with `poll` in an index
//! each of those writes changed the index too (on PostgreSQL, a new index entry per row and
//! poll: no heap-only update). A sweep finds the publisher's rows by the new index and reads
//! their `poll` from the table. On SQLite the table is rebuilt `WITHOUT ROWID`: its rows are
//! small and always found by their key, so the key's index is the table (one b-tree less to
//! write per ingested resource).
//!
//! All or nothing on SQLite too (sea-orm wraps only PostgreSQL's migrations by default): a
//! rebuild cut off half-way would leave no `ingested` table.

use sea_orm_migration::prelude::*;

use super::*;

migration!(IndexIngestedByPublisher, "m20261124_000011_index_ingested_by_publisher", all_or_nothing);

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
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
    create_index(manager, "ingested_publisher", Ingested::Table, [Ingested::Publisher]).await
}

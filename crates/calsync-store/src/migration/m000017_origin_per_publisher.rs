//! `synced_ms` on `resource` and `resource_history`: set on an ingested Slot stored without its
//! origin (`meta.source` and the lastSourceSync extension), which is then the publisher's
//! manifest, the Slot's id in it and this instant, added back wherever the row is read
//! (`crate::origin`). The origin was 185 of the 436 bytes of a Slot's row, the same in every row
//! of a publisher; without it a first ingest into SQLite is a tenth to a fifth faster
//! (docs/benchmarks-log.md, "The origin in every row"). Rows stored before keep their origin in the
//! JSON.

use sea_orm_migration::prelude::*;

migration!(OriginPerPublisher, "m20261125_000017_origin_per_publisher", all_or_nothing);

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared("ALTER TABLE resource ADD COLUMN synced_ms bigint NULL").await?;
    db.execute_unprepared("ALTER TABLE resource_history ADD COLUMN synced_ms bigint NULL").await?;
    Ok(())
}

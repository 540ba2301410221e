//! A resource is one row: the Slot range columns (`schedule`, `start_ms`, `end_ms`, `status`, set
//! on a live Slot's row only) and what calsync ingested it from (`publisher`, `digest`, `poll`,
//! set on an ingested resource's row only) move onto `resource`, and the tables `slot` and
//! `ingested` go. An ingested Slot was three rows in three tables (nine b-trees on SQLite); now
//! it is one row, and the range indexes are partial (`… WHERE start_ms IS NOT NULL`), so they
//! hold Slots only. A publisher's rows are found by their ids (`{publisher}.…`), a range of the
//! primary key: no index of their own (docs/benchmarks-log.md, "One row per resource").
//!
//! All or nothing on SQLite too: cut off half-way, Slots would have no range columns.

use sea_orm_migration::prelude::*;

migration!(OneRowPerResource, "m20261124_000012_one_row_per_resource", all_or_nothing);

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
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
    db.execute_unprepared("CREATE INDEX slot_start_id ON resource (start_ms, id) WHERE start_ms IS NOT NULL").await?;
    Ok(())
}

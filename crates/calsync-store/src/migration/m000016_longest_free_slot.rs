//! `slot_generation.longest_free_ms`: a bound on how long any free Slot of the Schedule is, or
//! was (it only grows). The free Slots overlapping a window then start no earlier than the window
//! less the longest of them, and both databases read a bounded range of `slot_start_id`, where
//! `start < to AND end > from` read every Slot that starts before the window's end (2.2 s for
//! `Appointment/$find` naming no provider over a million Slots; docs/benchmarks-log.md).

use sea_orm_migration::prelude::*;

migration!(LongestFreeSlot, "m20261125_000016_longest_free_slot", all_or_nothing);

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared("ALTER TABLE slot_generation ADD COLUMN longest_free_ms bigint NOT NULL DEFAULT 0").await?;
    db.execute_unprepared(
        "UPDATE slot_generation SET longest_free_ms = COALESCE((SELECT MAX(r.end_ms - r.start_ms) FROM resource r \
         WHERE r.schedule = slot_generation.schedule AND r.status = 'free'), 0)",
    )
    .await?;
    Ok(())
}

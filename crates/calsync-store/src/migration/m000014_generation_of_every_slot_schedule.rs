//! Every Schedule with live Slots has a Slot generation: Slots written before there were
//! generations (migration 5) had none, and what is remembered by generation (the periods of
//! `Store::schedules_by_period`) would have left them out.

use sea_orm_migration::prelude::*;

migration!(GenerationOfEverySlotSchedule, "m20261125_000014_generation_of_every_slot_schedule");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
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

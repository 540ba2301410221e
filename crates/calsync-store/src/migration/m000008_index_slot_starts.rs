//! Slots in time order across all Schedules, with the id that breaks ties (the weekly files of
//! `$bulk-publish` walk it page by page with a `(start, id)` cursor).

use sea_orm_migration::prelude::*;

use super::*;

migration!(IndexSlotStarts, "m20261124_000008_index_slot_starts");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_index(manager, "slot_start_id", Slot::Table, [Slot::StartMs, Slot::Id]).await
}

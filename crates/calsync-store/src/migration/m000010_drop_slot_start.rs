//! `slot_start (start_ms)` is a prefix of `slot_start_id (start_ms, id)`: every query it served,
//! the other serves, and each Slot write paid for both (an ingest writes a million).

use sea_orm_migration::prelude::*;

use super::*;

migration!(DropSlotStart, "m20261124_000010_drop_slot_start");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager.drop_index(Index::drop().if_exists().name("slot_start").table(Slot::Table).to_owned()).await
}

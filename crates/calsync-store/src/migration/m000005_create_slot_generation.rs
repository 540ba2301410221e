//! A change counter per Schedule, so cached Slot windows can be checked for staleness.

use sea_orm_migration::prelude::*;

use super::*;

migration!(CreateSlotGeneration, "m20261124_000005_create_slot_generation");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(manager, SlotGeneration::Table, |t| {
        t.col(ColumnDef::new(SlotGeneration::Schedule).string_len(128).not_null().primary_key())
            .col(ColumnDef::new(SlotGeneration::Generation).big_integer().not_null());
    })
    .await
}

use sea_orm_migration::prelude::*;

use super::*;

/// A change counter per Schedule, so cached Slot windows can be checked for staleness.
pub(super) struct CreateSlotGeneration;

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

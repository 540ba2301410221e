use sea_orm_migration::prelude::*;

use super::*;

/// Slots in time order across all Schedules, with the id that breaks ties (the weekly files of
/// `$bulk-publish` walk it page by page with a `(start, id)` cursor).
pub(super) struct IndexSlotStarts;

impl MigrationName for IndexSlotStarts {
    fn name(&self) -> &str {
        "m20261124_000008_index_slot_starts"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for IndexSlotStarts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("slot_start_id")
                    .table(Slot::Table)
                    .col(Slot::StartMs)
                    .col(Slot::Id)
                    .to_owned(),
            )
            .await
    }
}

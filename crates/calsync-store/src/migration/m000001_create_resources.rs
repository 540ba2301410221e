use sea_orm_migration::prelude::*;

use super::*;

/// Resources, their history, and the Slot range table (moved onto `resource` by
/// [`OneRowPerResource`]).
pub(super) struct CreateResources;

impl MigrationName for CreateResources {
    fn name(&self) -> &str {
        "m20261124_000001_create_resources"
    }
}

fn versioned(table: impl IntoIden, with_version_in_key: bool) -> TableCreateStatement {
    let mut key = Index::create();
    key.col(Resource::ResourceType).col(Resource::Id);
    if with_version_in_key {
        key.col(Resource::VersionId);
    }
    Table::create()
        .table(table)
        .if_not_exists()
        .col(ColumnDef::new(Resource::ResourceType).string_len(64).not_null())
        .col(ColumnDef::new(Resource::Id).string_len(64).not_null())
        .col(ColumnDef::new(Resource::VersionId).big_integer().not_null())
        .col(ColumnDef::new(Resource::LastUpdated).big_integer().not_null())
        .col(ColumnDef::new(Resource::Deleted).boolean().not_null())
        .col(ColumnDef::new(Resource::Content).text().not_null())
        .primary_key(&mut key)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateResources {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.create_table(versioned(Resource::Table, false)).await?;
        manager.create_table(versioned(ResourceHistory::Table, true)).await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("resource_last_updated")
                    .table(Resource::Table)
                    .col(Resource::ResourceType)
                    .col(Resource::LastUpdated)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Slot::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Slot::Id).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Slot::Schedule).string_len(128).not_null())
                    .col(ColumnDef::new(Slot::StartMs).big_integer().not_null())
                    .col(ColumnDef::new(Slot::EndMs).big_integer().not_null())
                    .col(ColumnDef::new(Slot::Status).string_len(32).not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in
            [("slot_schedule_start", vec![Slot::Schedule, Slot::StartMs]), ("slot_start", vec![Slot::StartMs])]
        {
            let mut index = Index::create();
            index.if_not_exists().name(name).table(Slot::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }
}

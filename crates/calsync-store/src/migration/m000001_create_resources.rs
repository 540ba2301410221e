//! Resources, their history, and the Slot range table (moved onto `resource` by
//! `OneRowPerResource` (migration 000012)).

use sea_orm_migration::prelude::*;

use super::*;

migration!(CreateResources, "m20261124_000001_create_resources");

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

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    manager.create_table(versioned(Resource::Table, false)).await?;
    manager.create_table(versioned(ResourceHistory::Table, true)).await?;
    create_index(manager, "resource_last_updated", Resource::Table, [Resource::ResourceType, Resource::LastUpdated])
        .await?;
    create_table(manager, Slot::Table, |t| {
        t.col(ColumnDef::new(Slot::Id).string_len(64).not_null().primary_key())
            .col(ColumnDef::new(Slot::Schedule).string_len(128).not_null())
            .col(ColumnDef::new(Slot::StartMs).big_integer().not_null())
            .col(ColumnDef::new(Slot::EndMs).big_integer().not_null())
            .col(ColumnDef::new(Slot::Status).string_len(32).not_null());
    })
    .await?;
    create_index(manager, "slot_schedule_start", Slot::Table, [Slot::Schedule, Slot::StartMs]).await?;
    create_index(manager, "slot_start", Slot::Table, [Slot::StartMs]).await?;
    Ok(())
}

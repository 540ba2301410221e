//! Date ranges for date search parameters, and the store's own facts.

use sea_orm_migration::prelude::*;

use super::*;

migration!(CreateDateIndex, "m20261124_000003_create_date_index");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(manager, DateIndex::Table, |t| {
        t.col(ColumnDef::new(DateIndex::RowId).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(DateIndex::ResourceType).string_len(64).not_null())
            .col(ColumnDef::new(DateIndex::Id).string_len(64).not_null())
            .col(ColumnDef::new(DateIndex::Param).string_len(64).not_null())
            .col(ColumnDef::new(DateIndex::LowMs).big_integer().not_null())
            .col(ColumnDef::new(DateIndex::HighMs).big_integer().not_null());
    })
    .await?;
    create_index(
        manager,
        "date_index_lookup",
        DateIndex::Table,
        [DateIndex::ResourceType, DateIndex::Param, DateIndex::LowMs],
    )
    .await?;
    create_index(manager, "date_index_owner", DateIndex::Table, [DateIndex::ResourceType, DateIndex::Id]).await?;
    create_table(manager, StoreMeta::Table, |t| {
        t.col(ColumnDef::new(StoreMeta::Key).string_len(64).not_null().primary_key())
            .col(ColumnDef::new(StoreMeta::Value).text().not_null());
    })
    .await
}

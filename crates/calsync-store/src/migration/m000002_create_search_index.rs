//! One row per indexed token, reference or string value.

use sea_orm_migration::prelude::*;

use super::*;

migration!(CreateSearchIndex, "m20261124_000002_create_search_index");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(manager, SearchIndex::Table, |t| {
        t.col(ColumnDef::new(SearchIndex::RowId).big_integer().not_null().auto_increment().primary_key())
            .col(ColumnDef::new(SearchIndex::ResourceType).string_len(64).not_null())
            .col(ColumnDef::new(SearchIndex::Id).string_len(64).not_null())
            .col(ColumnDef::new(SearchIndex::Param).string_len(64).not_null())
            .col(ColumnDef::new(SearchIndex::System).text().not_null())
            .col(ColumnDef::new(SearchIndex::Value).text().not_null())
            .col(ColumnDef::new(SearchIndex::Raw).text().not_null());
    })
    .await?;
    create_index(
        manager,
        "search_index_lookup",
        SearchIndex::Table,
        [SearchIndex::ResourceType, SearchIndex::Param, SearchIndex::Value],
    )
    .await?;
    create_index(manager, "search_index_owner", SearchIndex::Table, [SearchIndex::ResourceType, SearchIndex::Id])
        .await?;
    Ok(())
}

use sea_orm_migration::prelude::*;

use super::*;

/// One row per indexed token, reference or string value.
pub(super) struct CreateSearchIndex;

impl MigrationName for CreateSearchIndex {
    fn name(&self) -> &str {
        "m20261124_000002_create_search_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSearchIndex {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SearchIndex::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(SearchIndex::RowId).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(SearchIndex::ResourceType).string_len(64).not_null())
                    .col(ColumnDef::new(SearchIndex::Id).string_len(64).not_null())
                    .col(ColumnDef::new(SearchIndex::Param).string_len(64).not_null())
                    .col(ColumnDef::new(SearchIndex::System).text().not_null())
                    .col(ColumnDef::new(SearchIndex::Value).text().not_null())
                    .col(ColumnDef::new(SearchIndex::Raw).text().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("search_index_lookup", vec![SearchIndex::ResourceType, SearchIndex::Param, SearchIndex::Value]),
            ("search_index_owner", vec![SearchIndex::ResourceType, SearchIndex::Id]),
        ] {
            let mut index = Index::create();
            index.if_not_exists().name(name).table(SearchIndex::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }
}

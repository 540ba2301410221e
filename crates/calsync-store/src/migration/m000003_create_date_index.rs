use sea_orm_migration::prelude::*;

use super::*;

/// Date ranges for date search parameters, and the store's own facts.
pub(super) struct CreateDateIndex;

impl MigrationName for CreateDateIndex {
    fn name(&self) -> &str {
        "m20261124_000003_create_date_index"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDateIndex {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DateIndex::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(DateIndex::RowId).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(DateIndex::ResourceType).string_len(64).not_null())
                    .col(ColumnDef::new(DateIndex::Id).string_len(64).not_null())
                    .col(ColumnDef::new(DateIndex::Param).string_len(64).not_null())
                    .col(ColumnDef::new(DateIndex::LowMs).big_integer().not_null())
                    .col(ColumnDef::new(DateIndex::HighMs).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("date_index_lookup", vec![DateIndex::ResourceType, DateIndex::Param, DateIndex::LowMs]),
            ("date_index_owner", vec![DateIndex::ResourceType, DateIndex::Id]),
        ] {
            let mut index = Index::create();
            index.if_not_exists().name(name).table(DateIndex::Table);
            for c in cols {
                index.col(c);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(StoreMeta::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(StoreMeta::Key).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(StoreMeta::Value).text().not_null())
                    .to_owned(),
            )
            .await
    }
}

use sea_orm_migration::prelude::*;

use super::*;

/// SMART Scheduling Links publishers calsync ingests, and what came from each.
pub(super) struct CreatePublisher;

impl MigrationName for CreatePublisher {
    fn name(&self) -> &str {
        "m20261124_000009_create_publisher"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePublisher {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Publisher::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Publisher::Id).string_len(32).not_null().primary_key())
                    .col(ColumnDef::new(Publisher::ManifestUrl).text().not_null().unique_key())
                    .col(ColumnDef::new(Publisher::Options).text().not_null())
                    .col(ColumnDef::new(Publisher::State).string_len(16).not_null())
                    .col(ColumnDef::new(Publisher::Reason).text())
                    .col(ColumnDef::new(Publisher::Report).text())
                    .col(ColumnDef::new(Publisher::Etag).text())
                    .col(ColumnDef::new(Publisher::LastModified).text())
                    .col(ColumnDef::new(Publisher::Since).text())
                    .col(ColumnDef::new(Publisher::Polls).big_integer().not_null())
                    .col(ColumnDef::new(Publisher::LastPollMs).big_integer())
                    .col(ColumnDef::new(Publisher::NextRunMs).big_integer())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Ingested::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Ingested::ResourceType).string_len(64).not_null())
                    .col(ColumnDef::new(Ingested::Id).string_len(64).not_null())
                    .col(ColumnDef::new(Ingested::Publisher).string_len(32).not_null())
                    .col(ColumnDef::new(Ingested::Digest).big_integer().not_null())
                    .col(ColumnDef::new(Ingested::Poll).big_integer().not_null())
                    .primary_key(Index::create().col(Ingested::ResourceType).col(Ingested::Id))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("ingested_publisher_poll")
                    .table(Ingested::Table)
                    .col(Ingested::Publisher)
                    .col(Ingested::Poll)
                    .to_owned(),
            )
            .await
    }
}

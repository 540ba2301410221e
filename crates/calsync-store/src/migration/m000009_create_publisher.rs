//! SMART Scheduling Links publishers calsync ingests, and what came from each.

use sea_orm_migration::prelude::*;

use super::*;

migration!(CreatePublisher, "m20261124_000009_create_publisher");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(manager, Publisher::Table, |t| {
        t.col(ColumnDef::new(Publisher::Id).string_len(32).not_null().primary_key())
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
            .col(ColumnDef::new(Publisher::NextRunMs).big_integer());
    })
    .await?;
    create_table(manager, Ingested::Table, |t| {
        t.col(ColumnDef::new(Ingested::ResourceType).string_len(64).not_null())
            .col(ColumnDef::new(Ingested::Id).string_len(64).not_null())
            .col(ColumnDef::new(Ingested::Publisher).string_len(32).not_null())
            .col(ColumnDef::new(Ingested::Digest).big_integer().not_null())
            .col(ColumnDef::new(Ingested::Poll).big_integer().not_null())
            .primary_key(Index::create().col(Ingested::ResourceType).col(Ingested::Id));
    })
    .await?;
    create_index(manager, "ingested_publisher_poll", Ingested::Table, [Ingested::Publisher, Ingested::Poll]).await
}

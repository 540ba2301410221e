//! Participants' calendar connections and their sync status.

use sea_orm_migration::prelude::*;

use super::*;

migration!(CreateConnection, "m20261124_000006_create_connection");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(manager, Connection::Table, |t| {
        t.col(ColumnDef::new(Connection::Id).string_len(64).not_null().primary_key())
            .col(ColumnDef::new(Connection::Participant).string_len(128).not_null())
            .col(ColumnDef::new(Connection::Schedule).string_len(64).not_null())
            .col(ColumnDef::new(Connection::Kind).string_len(16).not_null())
            .col(ColumnDef::new(Connection::Host).string_len(255).not_null())
            .col(ColumnDef::new(Connection::Secret).text().null())
            .col(ColumnDef::new(Connection::Validator).text().null())
            .col(ColumnDef::new(Connection::State).string_len(32).not_null())
            .col(ColumnDef::new(Connection::Reason).text().null())
            .col(ColumnDef::new(Connection::LastSuccessMs).big_integer().null())
            .col(ColumnDef::new(Connection::NextRunMs).big_integer().null())
            .col(ColumnDef::new(Connection::Attempts).integer().not_null());
    })
    .await?;
    create_index(manager, "connection_participant", Connection::Table, [Connection::Participant]).await
}

use sea_orm_migration::prelude::*;

use super::*;

/// Participants' calendar connections and their sync status.
pub(super) struct CreateConnection;

impl MigrationName for CreateConnection {
    fn name(&self) -> &str {
        "m20261124_000006_create_connection"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateConnection {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Connection::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Connection::Id).string_len(64).not_null().primary_key())
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
                    .col(ColumnDef::new(Connection::Attempts).integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("connection_participant")
                    .table(Connection::Table)
                    .col(Connection::Participant)
                    .to_owned(),
            )
            .await
    }
}

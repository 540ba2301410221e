use sea_orm_migration::prelude::*;

use super::*;

/// OAuth authorizations in flight: between `/connect/{provider}/start` and its callback.
pub(super) struct CreateAuthorization;

impl MigrationName for CreateAuthorization {
    fn name(&self) -> &str {
        "m20261124_000007_create_authorization"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAuthorization {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Authorization::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Authorization::State).string_len(128).not_null().primary_key())
                    .col(ColumnDef::new(Authorization::Provider).string_len(16).not_null())
                    .col(ColumnDef::new(Authorization::Participant).string_len(128).not_null())
                    .col(ColumnDef::new(Authorization::Verifier).text().not_null())
                    .col(ColumnDef::new(Authorization::ExpiresMs).big_integer().not_null())
                    .to_owned(),
            )
            .await
    }
}

//! OAuth authorizations in flight: between `/connect/{provider}/start` and its callback.

use sea_orm_migration::prelude::*;

use super::*;

migration!(CreateAuthorization, "m20261124_000007_create_authorization");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(manager, Authorization::Table, |t| {
        t.col(ColumnDef::new(Authorization::State).string_len(128).not_null().primary_key())
            .col(ColumnDef::new(Authorization::Provider).string_len(16).not_null())
            .col(ColumnDef::new(Authorization::Participant).string_len(128).not_null())
            .col(ColumnDef::new(Authorization::Verifier).text().not_null())
            .col(ColumnDef::new(Authorization::ExpiresMs).big_integer().not_null());
    })
    .await
}

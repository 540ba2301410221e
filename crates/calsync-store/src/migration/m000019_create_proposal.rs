//! `proposal`: the options an IHE `$find` offered, by the id it gave each, until they expire (a
//! hold's time), so that `$hold` and `$book` can take them by `appointment-reference`.

use sea_orm_migration::prelude::*;

migration!(CreateProposal, "m20261205_000019_create_proposal");

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS proposal (id varchar(64) PRIMARY KEY, content text NOT NULL, \
         expires_ms bigint NOT NULL)",
    )
    .await?;
    db.execute_unprepared("CREATE INDEX IF NOT EXISTS proposal_expires ON proposal (expires_ms)").await?;
    Ok(())
}

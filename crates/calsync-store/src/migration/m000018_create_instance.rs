//! `instance`: the one row naming this calsync installation (a random UUID made when the table
//! is), shared by every process on the database; and `publisher.instance`, the installation a
//! publisher's manifest names, if it is one. What calsync publishes carries them, so that a feed
//! that brings calsync's own availability back (its own `$bulk-publish` registered as a
//! publisher, two installations ingesting each other) is recognised and not stored twice.

use sea_orm_migration::prelude::*;

migration!(CreateInstance, "m20261205_000018_create_instance", all_or_nothing);

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS instance (singleton integer PRIMARY KEY CHECK (singleton = 1), \
         id varchar(64) NOT NULL)",
    )
    .await?;
    db.execute_unprepared("ALTER TABLE publisher ADD COLUMN instance text").await?;
    let id = uuid::Uuid::new_v4();
    db.execute_unprepared(&format!(
        "INSERT INTO instance (singleton, id) VALUES (1, 'urn:uuid:{id}') ON CONFLICT DO NOTHING"
    ))
    .await?;
    Ok(())
}

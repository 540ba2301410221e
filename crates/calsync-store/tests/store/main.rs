//! Store behaviour, on SQLite (always) and on PostgreSQL when CALSYNC_TEST_POSTGRES_URL is set
//! (e.g. postgres://root@127.0.0.1:5432/test), one module per aggregate. Every test gets its own
//! fresh database.

mod connections;
mod harness;
mod index;
mod ingest;
mod migrations;
mod slots;
mod versions;

//! Ingest of SMART Scheduling Links feeds served over loopback HTTP into a fresh database
//! (SQLite, or PostgreSQL when CALSYNC_TEST_POSTGRES_URL is set), one module per concern.

mod bad_feeds;
mod examples;
mod harness;
mod polls;

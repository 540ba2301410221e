//! PostgreSQL: the text columns of keys and search values compare bytes (`COLLATE "C"`), as
//! SQLite's do, whatever the database's own collation. Two gains: ids, references and search
//! values sort alike on both databases (a page of results, a publisher's range of ids), and every
//! comparison in those indexes is a `memcmp`, where a locale's collation copies both strings and
//! calls `strcoll` (a fifth of PostgreSQL's time in an ingest; 9 % more rows a second inserted
//! into `resource`, docs/benchmarks-log.md, "Keys in byte order"). Under `C.UTF-8` the order is the
//! same as before; under a linguistic collation, ids now sort by code point. A no-op on SQLite.

use sea_orm_migration::prelude::*;

migration!(KeysInByteOrder, "m20261125_000013_keys_in_byte_order");

/// The key and search-value columns, per table, with their types.
const BYTE_ORDER_COLUMNS: &[(&str, &[(&str, &str)])] = &[
    (
        "resource",
        &[
            ("resource_type", "varchar(64)"),
            ("id", "varchar(64)"),
            ("schedule", "varchar(128)"),
            ("status", "varchar(32)"),
            ("publisher", "varchar(32)"),
        ],
    ),
    ("resource_history", &[("resource_type", "varchar(64)"), ("id", "varchar(64)")]),
    (
        "search_index",
        &[
            ("resource_type", "varchar(64)"),
            ("id", "varchar(64)"),
            ("param", "varchar(64)"),
            ("system", "text"),
            ("value", "text"),
        ],
    ),
    ("date_index", &[("resource_type", "varchar(64)"), ("id", "varchar(64)"), ("param", "varchar(64)")]),
    ("slot_generation", &[("schedule", "varchar(128)")]),
];

async fn up(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    for (table, columns) in BYTE_ORDER_COLUMNS {
        // One statement per table: its indexes are rebuilt once.
        let alter: Vec<String> =
            columns.iter().map(|(c, kind)| format!("ALTER COLUMN {c} TYPE {kind} COLLATE \"C\"")).collect();
        manager.get_connection().execute_unprepared(&format!("ALTER TABLE {table} {}", alter.join(", "))).await?;
    }
    Ok(())
}

//! [`crate::Store::ingest`] on SQLite.
//!
//! Measured (docs/benchmarks.md): through sea-orm a batch of ingested Slots spent most of its
//! time building, cloning and binding `ActiveModel` values and JSON, 24,000 Slots a second. Here
//! the same rows are written with prepared statements on one rusqlite connection to the same
//! file, in a blocking task, inside `BEGIN IMMEDIATE` and the store's write turn, so it is one
//! writer among the others exactly like a sea-orm transaction.

use std::collections::HashSet;
use std::sync::Mutex;

use super::next_version;
use crate::ingest::{Carry, Ingest, IngestTally};
use crate::{Indexer, StoreError, slot_fields, stamp};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(sea_orm::DbErr::Custom(format!("sqlite bulk write: {e}")))
}

/// One write connection to a SQLite file, opened on first use.
#[derive(Debug)]
pub(crate) struct SqliteBulk {
    path: String,
    connection: Mutex<Option<rusqlite::Connection>>,
}

impl SqliteBulk {
    pub(crate) fn new(path: String) -> Self {
        SqliteBulk { path, connection: Mutex::new(None) }
    }

    /// Runs `ingest_with` on the write connection in a blocking task.
    pub(crate) async fn ingest(
        self: &std::sync::Arc<Self>,
        indexer: Option<Indexer>,
        publisher: String,
        poll: i64,
        items: Vec<Ingest>,
        carry: Carry,
        now_ms: i64,
    ) -> Result<IngestTally, StoreError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = me.connection.lock().map_err(failed)?;
            if slot.is_none() {
                let c = rusqlite::Connection::open(&me.path).map_err(failed)?;
                c.busy_timeout(crate::SQLITE_BUSY_TIMEOUT).map_err(failed)?;
                c.pragma_update(None, "synchronous", "NORMAL").map_err(failed)?;
                // A batch touches pages all over the indexes: 64 MB of page cache, not 2.
                c.pragma_update(None, "cache_size", -65536).map_err(failed)?;
                *slot = Some(c);
            }
            let c = slot.as_mut().ok_or_else(|| failed("no connection"))?;
            let result = ingest_with(c, indexer, &publisher, poll, items, carry, now_ms);
            if result.is_err() {
                // A connection whose transaction failed half-way is not reused.
                *slot = None;
            }
            result
        })
        .await
        .map_err(failed)?
    }
}

#[allow(clippy::too_many_arguments)]
fn ingest_with(
    c: &mut rusqlite::Connection,
    indexer: Option<Indexer>,
    publisher: &str,
    poll: i64,
    items: Vec<Ingest>,
    carry: Carry,
    now_ms: i64,
) -> Result<IngestTally, StoreError> {
    let now = crate::from_millis(now_ms);
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
    let mut tally = IngestTally::default();
    let mut touched: HashSet<String> = HashSet::new();
    {
        let mut known = tx
            .prepare_cached("SELECT publisher, digest FROM ingested WHERE resource_type = ?1 AND id = ?2")
            .map_err(failed)?;
        let mut seen =
            tx.prepare_cached("UPDATE ingested SET poll = ?3 WHERE resource_type = ?1 AND id = ?2").map_err(failed)?;
        let mut current = tx
            .prepare_cached("SELECT version_id, deleted, content FROM resource WHERE resource_type = ?1 AND id = ?2")
            .map_err(failed)?;
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content) \
                 VALUES (?1, ?2, ?3, ?4, false, ?5)",
            )
            .map_err(failed)?;
        let mut update = tx
            .prepare_cached(
                "UPDATE resource SET version_id = ?3, last_updated = ?4, deleted = false, content = ?5 \
                 WHERE resource_type = ?1 AND id = ?2",
            )
            .map_err(failed)?;
        // The version being replaced goes to the history (it may be there already: other write
        // paths put every version there as they write it).
        let mut history = tx
            .prepare_cached(
                "INSERT INTO resource_history (resource_type, id, version_id, last_updated, deleted, content) \
                 SELECT resource_type, id, version_id, last_updated, deleted, content FROM resource \
                 WHERE resource_type = ?1 AND id = ?2 ON CONFLICT DO NOTHING",
            )
            .map_err(failed)?;
        let mut old_slot = tx.prepare_cached("SELECT schedule FROM slot WHERE id = ?1").map_err(failed)?;
        let mut drop_slot = tx.prepare_cached("DELETE FROM slot WHERE id = ?1").map_err(failed)?;
        let mut add_slot = tx
            .prepare_cached("INSERT INTO slot (id, schedule, start_ms, end_ms, status) VALUES (?1, ?2, ?3, ?4, ?5)")
            .map_err(failed)?;
        let mut forget_terms =
            tx.prepare_cached("DELETE FROM search_index WHERE resource_type = ?1 AND id = ?2").map_err(failed)?;
        let mut forget_dates =
            tx.prepare_cached("DELETE FROM date_index WHERE resource_type = ?1 AND id = ?2").map_err(failed)?;
        let mut add_term = tx
            .prepare_cached(
                "INSERT INTO search_index (resource_type, id, param, system, value, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(failed)?;
        let mut add_date = tx
            .prepare_cached(
                "INSERT INTO date_index (resource_type, id, param, low_ms, high_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(failed)?;
        let mut record = tx
            .prepare_cached(
                "INSERT INTO ingested (resource_type, id, publisher, digest, poll) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (resource_type, id) DO UPDATE SET publisher = excluded.publisher, \
                 digest = excluded.digest, poll = excluded.poll",
            )
            .map_err(failed)?;

        // One buffer for every resource's JSON text.
        let mut text: Vec<u8> = Vec::with_capacity(4096);
        for Ingest { resource_type: t, id, digest, mut content } in items {
            let known_as: Option<(String, i64)> =
                known.query_row(params![t, id], |r| Ok((r.get(0)?, r.get(1)?))).optional().map_err(failed)?;
            if known_as.as_ref().is_some_and(|(p, d)| p == publisher && *d == digest) {
                seen.execute(params![t, id, poll]).map_err(failed)?;
                tally.unchanged += 1;
                continue;
            }
            let stored: Option<(i64, bool, String)> = current
                .query_row(params![t, id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()
                .map_err(failed)?;
            let Some(version) =
                next_version(stored.as_ref().map(|(v, d, old)| (*v, *d, old.as_str())), &mut content, carry)
            else {
                tally.unchanged += 1;
                record.execute(params![t, id, publisher, digest, poll]).map_err(failed)?;
                continue;
            };
            stamp(&mut content, &id, version, now)?;
            text.clear();
            serde_json::to_writer(&mut text, &content).map_err(failed)?;
            let text = std::str::from_utf8(&text).map_err(failed)?;
            if version == 1 {
                insert.execute(params![t, id, version, now_ms, text]).map_err(failed)?;
                tally.created += 1;
            } else {
                history.execute(params![t, id]).map_err(failed)?;
                update.execute(params![t, id, version, now_ms, text]).map_err(failed)?;
                tally.changed += 1;
            }
            if t == "Slot" {
                let (schedule, start, end, status) = slot_fields(&content)?;
                if version > 1 {
                    if let Some(before) =
                        old_slot.query_row(params![id], |r| r.get::<_, String>(0)).optional().map_err(failed)?
                    {
                        touched.insert(before);
                    }
                    drop_slot.execute(params![id]).map_err(failed)?;
                }
                add_slot.execute(params![id, schedule, start, end, status]).map_err(failed)?;
                if !touched.contains(schedule) {
                    touched.insert(schedule.to_string());
                }
            }
            if let Some(indexer) = indexer {
                if version > 1 {
                    forget_terms.execute(params![t, id]).map_err(failed)?;
                    forget_dates.execute(params![t, id]).map_err(failed)?;
                }
                let values = (indexer.extract)(&t, &content);
                for r in &values.terms {
                    add_term.execute(params![t, id, r.param, r.system, r.value, r.raw]).map_err(failed)?;
                }
                for d in &values.dates {
                    add_date.execute(params![t, id, d.param, d.low, d.high]).map_err(failed)?;
                }
            }
            record.execute(params![t, id, publisher, digest, poll]).map_err(failed)?;
        }
        let mut bump = tx
            .prepare_cached(
                "INSERT INTO slot_generation (schedule, generation) VALUES (?1, 1) \
                 ON CONFLICT (schedule) DO UPDATE SET generation = generation + 1",
            )
            .map_err(failed)?;
        for schedule in &touched {
            bump.execute(params![schedule]).map_err(failed)?;
        }
    }
    tx.commit().map_err(failed)?;
    Ok(tally)
}

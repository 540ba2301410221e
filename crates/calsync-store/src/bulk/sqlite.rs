//! [`crate::Store::ingest`] on SQLite.
//!
//! Measured (docs/benchmarks-log.md): through sea-orm a batch of ingested Slots spent most of its
//! time building, cloning and binding `ActiveModel` values and JSON, 24,000 Slots a second. Here
//! the same rows are written with prepared statements on one rusqlite connection to the same
//! file, in a blocking task, inside `BEGIN IMMEDIATE` and the store's write turn, so it is one
//! writer among the others exactly like a sea-orm transaction. A new resource arrives as its
//! row, made on the caller's thread, and is one `INSERT` (docs/benchmarks-log.md, "One row per
//! resource").

use std::sync::Mutex;

use super::{Carry, IngestRow, IngestTally};
use super::{Rewritten, rewrite};
use crate::{Indexed, Indexer, StoreError, Touched};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::from(sea_orm::DbErr::Custom(format!("sqlite bulk write: {e}")))
}

/// WAL pages this connection's commits leave before one of them copies them into the database
/// file (SQLite's default is 1,000). Each commit of an ingest writes every page it dirtied to the
/// WAL, and a batch dirties most of `slot_start_id`; the checkpoint after it copied all of them
/// into the file again, batch after batch. Every 20,000 pages (about 160 MB of WAL at 8 KB a page)
/// a page dirtied by several batches is copied once: the 1M feed's first ingest 10 % faster, the
/// same memory, and another process's writes waited no longer (docs/benchmarks-log.md, "Checkpoints
/// every 20,000 pages"). The other connections keep the default, so a write after the ingest (the
/// publisher's state, at the end of a poll) copies what is left.
const CHECKPOINT_PAGES: i64 = 20_000;

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
        items: Vec<IngestRow>,
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
                c.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES).map_err(failed)?;
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

/// What is stored under an incoming resource's id.
enum Stored {
    /// This publisher's, from the same source line.
    Same,
    /// Something else: (version, deleted, JSON text, the Schedule of a live Slot).
    Other(i64, bool, String, Option<String>),
}

#[allow(clippy::too_many_arguments)]
fn ingest_with(
    c: &mut rusqlite::Connection,
    indexer: Option<Indexer>,
    publisher: &str,
    poll: i64,
    items: Vec<IngestRow>,
    carry: Carry,
    now_ms: i64,
) -> Result<IngestTally, StoreError> {
    let now = crate::from_millis(now_ms);
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed)?;
    let mut tally = IngestTally::default();
    let mut touched = Touched::default();
    {
        let mut probe = tx
            .prepare_cached(
                "SELECT publisher, digest, version_id, deleted, content, schedule FROM resource \
                 WHERE resource_type = ?1 AND id = ?2",
            )
            .map_err(failed)?;
        let mut seen =
            tx.prepare_cached("UPDATE resource SET poll = ?3 WHERE resource_type = ?1 AND id = ?2").map_err(failed)?;
        let mut record = tx
            .prepare_cached(
                "UPDATE resource SET publisher = ?3, digest = ?4, poll = ?5 WHERE resource_type = ?1 AND id = ?2",
            )
            .map_err(failed)?;
        // A new resource is one row, and one statement: the insert is also the lookup (nothing is
        // stored when the id is taken).
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content, \
                 schedule, start_ms, end_ms, status, publisher, digest, poll, synced_ms) \
                 VALUES (?1, ?2, 1, ?3, false, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT DO NOTHING",
            )
            .map_err(failed)?;
        let mut update = tx
            .prepare_cached(
                "UPDATE resource SET version_id = ?3, last_updated = ?4, deleted = false, content = ?5, \
                 schedule = ?6, start_ms = ?7, end_ms = ?8, status = ?9, publisher = ?10, digest = ?11, poll = ?12, \
                 synced_ms = ?13 WHERE resource_type = ?1 AND id = ?2",
            )
            .map_err(failed)?;
        // The version being replaced goes to the history (it may be there already: other write
        // paths put every version there as they write it).
        let mut history = tx
            .prepare_cached(
                "INSERT INTO resource_history (resource_type, id, version_id, last_updated, deleted, content, synced_ms) \
                 SELECT resource_type, id, version_id, last_updated, deleted, content, synced_ms FROM resource \
                 WHERE resource_type = ?1 AND id = ?2 ON CONFLICT DO NOTHING",
            )
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
        let mut add_index = |t: &str, id: &str, index: &Option<Indexed>| -> Result<(), StoreError> {
            for r in index.iter().flat_map(|i| &i.terms) {
                add_term.execute(params![t, id, r.param, r.system, r.value, r.raw]).map_err(failed)?;
            }
            for d in index.iter().flat_map(|i| &i.dates) {
                add_date.execute(params![t, id, d.param, d.low, d.high]).map_err(failed)?;
            }
            Ok(())
        };

        // Whether the last resource was new: then the next is inserted first and looked up only
        // when its id is taken (a first ingest), else looked up first (a poll of what is stored).
        let mut expect_new = true;
        for row in items {
            let (t, id, r) = (row.resource_type.as_str(), row.id.as_str(), &row.range);
            let mut insert_new = || {
                insert
                    .execute(params![
                        t,
                        id,
                        row.last_updated,
                        row.text,
                        r.schedule,
                        r.start_ms,
                        r.end_ms,
                        r.status,
                        publisher,
                        row.digest,
                        poll,
                        row.synced_ms
                    ])
                    .map_err(failed)
            };
            let inserted = if expect_new { insert_new()? } else { 0 };
            let created = inserted == 1 || {
                let stored = probe
                    .query_row(params![t, id], |r| {
                        let (p, d) = (r.get_ref(0)?.as_str_or_null()?, r.get::<_, Option<i64>>(1)?);
                        Ok(if p == Some(publisher) && d == Some(row.digest) {
                            Stored::Same
                        } else {
                            Stored::Other(r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)
                        })
                    })
                    .optional()
                    .map_err(failed)?;
                match stored {
                    None if insert_new()? == 1 => true,
                    None => return Err(failed(format!("{t}/{id} was neither found nor inserted"))),
                    Some(Stored::Same) => {
                        seen.execute(params![t, id, poll]).map_err(failed)?;
                        tally.unchanged += 1;
                        false
                    }
                    Some(Stored::Other(version, deleted, old, before)) => {
                        match rewrite(&row, (version, deleted, &old), carry, indexer, now)? {
                            None => {
                                record.execute(params![t, id, publisher, row.digest, poll]).map_err(failed)?;
                                tally.unchanged += 1;
                            }
                            Some(Rewritten { version, text, range: r, index }) => {
                                history.execute(params![t, id]).map_err(failed)?;
                                update
                                    .execute(params![
                                        t,
                                        id,
                                        version,
                                        now_ms,
                                        text,
                                        r.schedule,
                                        r.start_ms,
                                        r.end_ms,
                                        r.status,
                                        publisher,
                                        row.digest,
                                        poll,
                                        row.synced_ms
                                    ])
                                    .map_err(failed)?;
                                if let Some(before) = &before {
                                    touched.schedule(before);
                                }
                                touched.slot(&r);
                                if indexer.is_some() {
                                    forget_terms.execute(params![t, id]).map_err(failed)?;
                                    forget_dates.execute(params![t, id]).map_err(failed)?;
                                    add_index(t, id, &index)?;
                                }
                                tally.changed += 1;
                            }
                        }
                        false
                    }
                }
            };
            expect_new = created;
            if created {
                tally.created += 1;
                touched.slot(&row.range);
                add_index(t, id, &row.index)?;
            }
        }
        let mut bump = tx
            .prepare_cached(
                "INSERT INTO slot_generation (schedule, generation, longest_free_ms) VALUES (?1, 1, ?2) \
                 ON CONFLICT (schedule) DO UPDATE SET generation = generation + 1, \
                 longest_free_ms = MAX(longest_free_ms, excluded.longest_free_ms)",
            )
            .map_err(failed)?;
        for (schedule, longest_free) in touched.sorted() {
            bump.execute(params![schedule, longest_free]).map_err(failed)?;
        }
    }
    tx.commit().map_err(failed)?;
    Ok(tally)
}

//! [`crate::Store::ingest`] on PostgreSQL.
//!
//! Measured (docs/benchmarks-log.md): the general write path sent a statement per changed version
//! and multi-row inserts whose every value was a bound parameter, 7,000 Slots a second. Here a
//! batch is a fixed handful of statements whatever its size: each carries its rows as arrays,
//! one per column, that PostgreSQL turns back into rows with `UNNEST`.

use std::collections::{BTreeMap, HashMap};

use sea_orm::sqlx::{self, PgPool, Postgres, Transaction};

use super::{Carry, IngestRow, IngestTally};
use super::{Rewritten, rewrite};
use crate::{Indexed, Indexer, SlotRange, StoreError, Touched};

fn failed(e: sqlx::Error) -> StoreError {
    StoreError::from(sea_orm::DbErr::Custom(format!("postgres bulk write: {e}")))
}

/// A resource to write, stamped, as its JSON text, with its range and search values.
struct Written<'a> {
    id: &'a str,
    version: i64,
    last_updated: i64,
    digest: i64,
    text: &'a str,
    range: &'a SlotRange,
    index: &'a Option<Indexed>,
    synced_ms: Option<i64>,
}

/// `resource` columns of written resources (range columns `None` but for Slots), for `UNNEST`.
struct Columns<'a> {
    id: Vec<&'a str>,
    version: Vec<i64>,
    last_updated: Vec<i64>,
    text: Vec<&'a str>,
    schedule: Vec<Option<&'a str>>,
    start: Vec<Option<i64>>,
    end: Vec<Option<i64>>,
    status: Vec<Option<&'a str>>,
    digest: Vec<i64>,
    synced_ms: Vec<Option<i64>>,
}

impl<'a> Columns<'a> {
    /// The columns of `written`.
    fn of(written: &[Written<'a>]) -> Self {
        let mut c = Columns {
            id: Vec::with_capacity(written.len()),
            version: Vec::with_capacity(written.len()),
            last_updated: Vec::with_capacity(written.len()),
            text: Vec::with_capacity(written.len()),
            schedule: Vec::with_capacity(written.len()),
            start: Vec::with_capacity(written.len()),
            end: Vec::with_capacity(written.len()),
            status: Vec::with_capacity(written.len()),
            digest: Vec::with_capacity(written.len()),
            synced_ms: Vec::with_capacity(written.len()),
        };
        for w in written {
            c.id.push(w.id);
            c.version.push(w.version);
            c.last_updated.push(w.last_updated);
            c.text.push(w.text);
            c.schedule.push(w.range.schedule.as_deref());
            c.start.push(w.range.start_ms);
            c.end.push(w.range.end_ms);
            c.status.push(w.range.status.as_deref());
            c.digest.push(w.digest);
            c.synced_ms.push(w.synced_ms);
        }
        c
    }

    /// Binds, from `$4` on: id, version, last updated, JSON, schedule, start, end, status, digest,
    /// the instant of an origin kept apart.
    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.id)
            .bind(&self.version)
            .bind(&self.last_updated)
            .bind(&self.text)
            .bind(&self.schedule)
            .bind(&self.start)
            .bind(&self.end)
            .bind(&self.status)
            .bind(&self.digest)
            .bind(&self.synced_ms)
    }
}

/// The rows of `UNNEST($4 … $13)` as [`Columns::bind`] binds them (a macro: statements are
/// literals).
macro_rules! written_rows {
    () => {
        "UNNEST($4::text[], $5::int8[], $6::int8[], $7::text[], $8::text[], $9::int8[], $10::int8[], \
         $11::text[], $12::int8[], $13::int8[]) \
         AS u(id, version, last_updated, content, schedule, start_ms, end_ms, status, digest, synced_ms)"
    };
}

/// `search_index` rows as columns.
#[derive(Default)]
struct TermColumns<'a> {
    id: Vec<&'a str>,
    param: Vec<&'a str>,
    system: Vec<&'a str>,
    value: Vec<&'a str>,
    raw: Vec<&'a str>,
}

/// `date_index` rows as columns.
#[derive(Default)]
struct DateColumns<'a> {
    id: Vec<&'a str>,
    param: Vec<&'a str>,
    low: Vec<i64>,
    high: Vec<i64>,
}

/// Writes one batch in one transaction.
pub(crate) async fn ingest(
    pool: &PgPool,
    indexer: Option<Indexer>,
    publisher: &str,
    poll: i64,
    items: Vec<IngestRow>,
    carry: Carry,
    now_ms: i64,
) -> Result<IngestTally, StoreError> {
    // By type; the last line of one id wins (a feed may repeat a line).
    let mut by_type: BTreeMap<String, (Vec<IngestRow>, HashMap<String, usize>)> = BTreeMap::new();
    for item in items {
        let (list, at) = by_type.entry(item.resource_type.clone()).or_default();
        match at.get(&item.id) {
            Some(i) => list[*i] = item,
            None => {
                at.insert(item.id.clone(), list.len());
                list.push(item);
            }
        }
    }
    refresh_statistics(pool).await?;
    let mut tx = pool.begin().await.map_err(failed)?;
    // A batch is not waited on to reach the disk: if the server stops, the last batches may be
    // lost, never half of one, and the publisher's poll, saved after them with a synchronous
    // commit, waits for them (the write-ahead log is flushed in order). The next poll then
    // reads the feed again from the last complete one.
    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await.map_err(failed)?;
    let mut tally = IngestTally::default();
    let mut touched = Touched::default();
    for (t, (items, _)) in by_type {
        tally += ingest_type(&mut tx, indexer, publisher, poll, &t, items, carry, now_ms, &mut touched).await?;
    }
    if !touched.is_empty() {
        // In order: batches written at once lock the Schedules they share in the same order, so
        // one waits for the other and neither for both.
        let (schedules, longest_free): (Vec<String>, Vec<i64>) = touched.sorted().into_iter().unzip();
        sqlx::query(
            "INSERT INTO slot_generation (schedule, generation, longest_free_ms) \
             SELECT s, 1, l FROM UNNEST($1::text[], $2::int8[]) AS u (s, l) ORDER BY s \
             ON CONFLICT (schedule) DO UPDATE SET generation = slot_generation.generation + 1, \
             longest_free_ms = GREATEST(slot_generation.longest_free_ms, excluded.longest_free_ms)",
        )
        .bind(&schedules)
        .bind(&longest_free)
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
    }
    tx.commit().await.map_err(failed)?;
    Ok(tally)
}

/// Gathers statistics of the tables an ingest grows once they changed by as many rows as they
/// had (at least 10,000) when last gathered: a few times per ingest, however large.
///
/// Every lookup here is by primary key, a batch's worth of keys at a time, and the planner costs
/// it on statistics. During a first ingest they describe tables far smaller than they have grown
/// (autovacuum looks a minute later at the earliest): believing few Slots exist, the planner
/// walked all of them by the `resource_type` prefix of another index for each batch, slower with
/// each batch (measured: 50 ms per lookup at 250,000 Slots; docs/benchmarks-log.md).
async fn refresh_statistics(pool: &PgPool) -> Result<(), StoreError> {
    let stale: Vec<(String,)> = sqlx::query_as(
        "SELECT s.relname::text FROM pg_stat_user_tables AS s JOIN pg_class AS c ON c.oid = s.relid \
         WHERE s.schemaname = current_schema() AND s.relname = 'resource' \
         AND s.n_mod_since_analyze > GREATEST(10000, c.reltuples)",
    )
    .fetch_all(pool)
    .await
    .map_err(failed)?;
    if !stale.is_empty() {
        // Only what the lookups are planned on (the number of rows, the key's columns), from a
        // small sample: 15-25 ms at 250,000 Slots where a full `ANALYZE` took 300-380 ms, a fifth
        // of PostgreSQL's time in an ingest (docs/benchmarks-log.md). Autovacuum gathers the rest.
        let mut tx = pool.begin().await.map_err(failed)?;
        sqlx::query("SET LOCAL default_statistics_target = 10").execute(&mut *tx).await.map_err(failed)?;
        sqlx::query("ANALYZE resource (resource_type, id)").execute(&mut *tx).await.map_err(failed)?;
        tx.commit().await.map_err(failed)?;
    }
    Ok(())
}

/// Runs a statement on resources of type `t` (`$1`) with ids `ids` (`$2`).
async fn for_ids(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    t: &str,
    ids: &[&str],
) -> Result<(), StoreError> {
    sqlx::query(sql).bind(t).bind(ids).execute(&mut **tx).await.map_err(failed)?;
    Ok(())
}

/// The rows a query of resources of type `t` (`$1`) with ids `ids` (`$2`) returns.
async fn rows_for_ids<R>(
    tx: &mut Transaction<'static, Postgres>,
    sql: &'static str,
    t: &str,
    ids: &[&str],
) -> Result<Vec<R>, StoreError>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    sqlx::query_as::<_, R>(sql).bind(t).bind(ids).fetch_all(&mut **tx).await.map_err(failed)
}

/// Whether a batch looks new: neither its first nor its last id is stored (the first ingest of a
/// feed). One round trip, however large the batch.
async fn looks_new(tx: &mut Transaction<'static, Postgres>, t: &str, items: &[IngestRow]) -> Result<bool, StoreError> {
    let (Some(first), Some(last)) = (items.first(), items.last()) else { return Ok(false) };
    let (stored,): (i64,) = sqlx::query_as("SELECT count(*) FROM resource WHERE resource_type = $1 AND id = ANY($2)")
        .bind(t)
        .bind([first.id.as_str(), last.id.as_str()])
        .fetch_one(&mut **tx)
        .await
        .map_err(failed)?;
    Ok(stored == 0)
}

/// A new resource's first version, as its row was made.
fn first_version(row: &IngestRow) -> Written<'_> {
    Written {
        id: &row.id,
        version: 1,
        last_updated: row.last_updated,
        digest: row.digest,
        text: &row.text,
        range: &row.range,
        index: &row.index,
        synced_ms: row.synced_ms,
    }
}

/// Inserts `written` as new rows of `publisher` seen by `poll` (the error as it came: a taken
/// id is one the caller handles).
async fn insert(
    tx: &mut Transaction<'static, Postgres>,
    t: &str,
    publisher: &str,
    poll: i64,
    written: &[Written<'_>],
) -> Result<(), sqlx::Error> {
    const INSERT: &str = concat!(
        "INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content, \
         schedule, start_ms, end_ms, status, publisher, digest, poll, synced_ms) \
         SELECT $1, u.id, u.version, u.last_updated, false, u.content, u.schedule, u.start_ms, u.end_ms, \
         u.status, $2, u.digest, $3, u.synced_ms FROM ",
        written_rows!()
    );
    Columns::of(written).bind(sqlx::query(INSERT).bind(t).bind(publisher).bind(poll)).execute(&mut **tx).await?;
    Ok(())
}

/// Runs a statement that takes no parameters.
async fn run(tx: &mut Transaction<'static, Postgres>, sql: &'static str) -> Result<(), StoreError> {
    sqlx::query(sql).execute(&mut **tx).await.map_err(failed)?;
    Ok(())
}

/// Writes the search values of `written` (their old ones, if any, are gone already).
async fn add_index(
    tx: &mut Transaction<'static, Postgres>,
    t: &str,
    written: &[Written<'_>],
) -> Result<(), StoreError> {
    let (mut terms, mut dates) = (TermColumns::default(), DateColumns::default());
    for w in written {
        for r in w.index.iter().flat_map(|i| &i.terms) {
            terms.id.push(w.id);
            terms.param.push(&r.param);
            terms.system.push(&r.system);
            terms.value.push(&r.value);
            terms.raw.push(&r.raw);
        }
        for d in w.index.iter().flat_map(|i| &i.dates) {
            dates.id.push(w.id);
            dates.param.push(&d.param);
            dates.low.push(d.low);
            dates.high.push(d.high);
        }
    }
    if !terms.id.is_empty() {
        sqlx::query(
            "INSERT INTO search_index (resource_type, id, param, system, value, raw) \
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::text[], $5::text[], $6::text[])",
        )
        .bind(t)
        .bind(&terms.id)
        .bind(&terms.param)
        .bind(&terms.system)
        .bind(&terms.value)
        .bind(&terms.raw)
        .execute(&mut **tx)
        .await
        .map_err(failed)?;
    }
    if !dates.id.is_empty() {
        sqlx::query(
            "INSERT INTO date_index (resource_type, id, param, low_ms, high_ms) \
             SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::int8[], $5::int8[])",
        )
        .bind(t)
        .bind(&dates.id)
        .bind(&dates.param)
        .bind(&dates.low)
        .bind(&dates.high)
        .execute(&mut **tx)
        .await
        .map_err(failed)?;
    }
    Ok(())
}

/// Records the Schedules of written Slots as touched.
fn touch(written: &[Written<'_>], touched: &mut Touched) {
    for w in written {
        touched.slot(w.range);
    }
}

#[allow(clippy::too_many_arguments)]
async fn ingest_type(
    tx: &mut Transaction<'static, Postgres>,
    indexer: Option<Indexer>,
    publisher: &str,
    poll: i64,
    t: &str,
    items: Vec<IngestRow>,
    carry: Carry,
    now_ms: i64,
    touched: &mut Touched,
) -> Result<IngestTally, StoreError> {
    let mut tally = IngestTally::default();
    // A first ingest inserts at once, without looking anything up; should an id be taken after
    // all, the batch goes the way of one that is not new. Not `ON CONFLICT DO NOTHING`: checking
    // every row for a conflict made the insert 40 % slower (docs/benchmarks-log.md).
    if looks_new(tx, t, &items).await? {
        let written: Vec<Written> = items.iter().map(first_version).collect();
        run(tx, "SAVEPOINT new_rows").await?;
        match insert(tx, t, publisher, poll, &written).await {
            Ok(()) => {
                run(tx, "RELEASE SAVEPOINT new_rows").await?;
                touch(&written, touched);
                if indexer.is_some() {
                    add_index(tx, t, &written).await?;
                }
                tally.created += written.len() as u64;
                return Ok(tally);
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                run(tx, "ROLLBACK TO SAVEPOINT new_rows").await?;
            }
            Err(e) => return Err(failed(e)),
        }
    }
    let ids: Vec<&str> = items.iter().map(|i| i.id.as_str()).collect();
    // What is stored of each: its publisher and digest decide whether it is unchanged.
    let known: HashMap<String, (Option<String>, Option<i64>)> = rows_for_ids::<(String, Option<String>, Option<i64>)>(
        tx,
        "SELECT id, publisher, digest FROM resource WHERE resource_type = $1 AND id = ANY($2)",
        t,
        &ids,
    )
    .await?
    .into_iter()
    .map(|(id, p, d)| (id, (p, d)))
    .collect();
    let unchanged =
        |i: &IngestRow| known.get(&i.id).is_some_and(|(p, d)| p.as_deref() == Some(publisher) && *d == Some(i.digest));
    let (same, rest): (Vec<IngestRow>, Vec<IngestRow>) = items.into_iter().partition(unchanged);
    if !same.is_empty() {
        // Seen, not written: the sweep keeps what this poll saw (migration 000015).
        let same: Vec<&str> = same.iter().map(|i| i.id.as_str()).collect();
        sqlx::query(
            "INSERT INTO ingest_seen (publisher, poll, resource_type, id) \
             SELECT $1, $2, $3, u FROM UNNEST($4::text[]) AS u ON CONFLICT DO NOTHING",
        )
        .bind(publisher)
        .bind(poll)
        .bind(t)
        .bind(&same)
        .execute(&mut **tx)
        .await
        .map_err(failed)?;
        tally.unchanged += same.len() as u64;
    }
    if rest.is_empty() {
        return Ok(tally);
    }

    // The stored versions of those that exist but may have changed.
    let ids: Vec<&str> = rest.iter().map(|i| i.id.as_str()).filter(|id| known.contains_key(*id)).collect();
    let stored: HashMap<String, (i64, bool, String, Option<String>)> = if ids.is_empty() {
        HashMap::new()
    } else {
        rows_for_ids::<(String, i64, bool, String, Option<String>)>(
            tx,
            "SELECT id, version_id, deleted, content, schedule FROM resource WHERE resource_type = $1 AND id = ANY($2)",
            t,
            &ids,
        )
        .await?
        .into_iter()
        .map(|(id, v, d, c, s)| (id, (v, d, c, s)))
        .collect()
    };
    let now = crate::from_millis(now_ms);
    let mut rewritten: Vec<(&IngestRow, Rewritten)> = Vec::new();
    let mut fresh: Vec<Written> = Vec::new();
    // Stored as they are, now the publisher's with this digest (their content was the same).
    let mut recorded: (Vec<&str>, Vec<i64>) = (Vec::new(), Vec::new());
    for row in &rest {
        let Some((version, deleted, old, before)) = stored.get(&row.id) else {
            fresh.push(first_version(row));
            continue;
        };
        match rewrite(row, (*version, *deleted, old), carry, indexer, now)? {
            None => {
                tally.unchanged += 1;
                recorded.0.push(&row.id);
                recorded.1.push(row.digest);
            }
            Some(next) => {
                if let Some(before) = before {
                    touched.schedule(before);
                }
                rewritten.push((row, next));
            }
        }
    }
    let changed: Vec<Written> = rewritten
        .iter()
        .map(|(row, next)| Written {
            id: &row.id,
            version: next.version,
            last_updated: now_ms,
            digest: row.digest,
            text: &next.text,
            range: &next.range,
            index: &next.index,
            synced_ms: row.synced_ms,
        })
        .collect();
    tally.created += fresh.len() as u64;
    tally.changed += changed.len() as u64;

    if !recorded.0.is_empty() {
        sqlx::query(
            "UPDATE resource AS r SET publisher = $2, digest = u.digest, poll = $3 \
             FROM UNNEST($4::text[], $5::int8[]) AS u(id, digest) WHERE r.resource_type = $1 AND r.id = u.id",
        )
        .bind(t)
        .bind(publisher)
        .bind(poll)
        .bind(&recorded.0)
        .bind(&recorded.1)
        .execute(&mut **tx)
        .await
        .map_err(failed)?;
    }
    if !changed.is_empty() {
        let ids: Vec<&str> = changed.iter().map(|w| w.id).collect();
        // The versions being replaced go to the history (other write paths may have put them
        // there already), then the current rows take the new ones.
        for_ids(
            tx,
            "INSERT INTO resource_history (resource_type, id, version_id, last_updated, deleted, content, synced_ms) \
             SELECT resource_type, id, version_id, last_updated, deleted, content, synced_ms FROM resource \
             WHERE resource_type = $1 AND id = ANY($2) ON CONFLICT DO NOTHING",
            t,
            &ids,
        )
        .await?;
        touch(&changed, touched);
        let columns = Columns::of(&changed);
        let update = concat!(
            "UPDATE resource AS r SET version_id = u.version, last_updated = u.last_updated, deleted = false, \
             content = u.content, schedule = u.schedule, start_ms = u.start_ms, end_ms = u.end_ms, \
             status = u.status, publisher = $2, digest = u.digest, poll = $3, synced_ms = u.synced_ms FROM ",
            written_rows!(),
            " WHERE r.resource_type = $1 AND r.id = u.id"
        );
        columns
            .bind(sqlx::query(update).bind(t).bind(publisher).bind(poll))
            .execute(&mut **tx)
            .await
            .map_err(failed)?;
        if indexer.is_some() {
            for forget in [
                "DELETE FROM search_index WHERE resource_type = $1 AND id = ANY($2)",
                "DELETE FROM date_index WHERE resource_type = $1 AND id = ANY($2)",
            ] {
                for_ids(tx, forget, t, &ids).await?;
            }
        }
    }
    if !fresh.is_empty() {
        touch(&fresh, touched);
        insert(tx, t, publisher, poll, &fresh).await.map_err(failed)?;
    }
    if indexer.is_some() {
        add_index(tx, t, &fresh).await?;
        add_index(tx, t, &changed).await?;
    }
    Ok(tally)
}

//! What calsync ingests from SMART Scheduling Links publishers: the publishers themselves, and
//! bulk writes that remember which resource came from which publisher, by what source line.
//!
//! An ingested resource's row says so itself (`publisher`, `digest`, `poll` on `resource`), and
//! its id starts with `{publisher}.`: a publisher's resources of one type are a range of the
//! primary key, found without an index of their own.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

pub use crate::bulk::{Carry, IngestRow, IngestTally};
use crate::entity::{publisher, resource};
use crate::{BATCH_ROWS, Indexed, SlotRange, Store, StoreError, delete_many_in, millis, stamp};

/// A publisher as stored (see [`publisher::Model`]).
pub type Publisher = publisher::Model;

/// One resource read from a publisher's feed, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Ingest {
    /// `Slot`, `Location`, ...
    pub resource_type: String,
    /// The id it is stored under (in the publisher's namespace).
    pub id: String,
    /// A digest of what it was made from: the same digest on the next poll means unchanged, and
    /// the resource is neither parsed again by the caller nor rewritten.
    pub digest: i64,
    /// The resource.
    pub content: Value,
}

/// A resource read from a feed as its top-level members, each as the JSON text it was read as
/// (or rewritten to), in the order written: [`Store::prepare_ingest_members`] makes it ready to
/// store without building the whole resource as a `Value` (docs/benchmarks-log.md, "The feed
/// reader"). It is the same resource as an [`Ingest`] whose `content` has these members, with
/// `meta` holding `meta_members` as well.
#[derive(Debug, Clone)]
pub struct IngestMembers<'a> {
    /// `Slot`, `Location`, ...
    pub resource_type: &'a str,
    /// The id it is stored under: written as the `id` member, wherever `members` has it.
    pub id: String,
    /// As [`Ingest::digest`].
    pub digest: i64,
    /// (name, JSON) in order, with `id` among them and without `meta`.
    pub members: Vec<(&'a str, Cow<'a, RawValue>)>,
    /// The members of `meta` (`"source":…,"extension":[…]`), without braces; the store adds
    /// `versionId` and `lastUpdated`.
    pub meta_members: String,
    /// Set, with `meta_members` empty, for a Slot stored without its origin: the transaction time
    /// of the poll, UTC milliseconds ([`crate::origin`]; its id must be `{publisher}.{their id}`).
    pub synced_ms: Option<i64>,
}

/// Rows per ingest transaction on SQLite ([`Store::ingest_batching`]).
const SQLITE_INGEST_ROWS: usize = 25_000;

/// How a feed's rows are best sent to [`Store::ingest`] on a database (docs/benchmarks-log.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestBatching {
    /// Rows per call (one transaction each).
    pub rows: usize,
    /// Calls that may be under way at once, on batches that share no id.
    pub concurrent: usize,
}

impl Store {
    /// Writes a publisher (new or changed) as it is.
    pub async fn save_publisher(&self, p: &Publisher) -> Result<(), StoreError> {
        use publisher::Column as C;
        use sea_orm::IntoActiveModel;
        let _turn = self.write_turn().await;
        publisher::Entity::insert(p.clone().into_active_model())
            .on_conflict(
                OnConflict::column(C::Id)
                    .update_columns([
                        C::ManifestUrl,
                        C::Options,
                        C::State,
                        C::Reason,
                        C::Report,
                        C::Etag,
                        C::LastModified,
                        C::Since,
                        C::Polls,
                        C::LastPollMs,
                        C::NextRunMs,
                        C::Instance,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Takes the turn to poll publisher `id` at `now` when its last poll started `gap` or more
    /// before (or never): the turn is recorded at once, so of two callers at the same moment one
    /// gets it. Otherwise the start of the last poll.
    pub async fn claim_publisher_poll(
        &self,
        id: &str,
        now: DateTime<Utc>,
        gap: chrono::TimeDelta,
    ) -> Result<Result<(), DateTime<Utc>>, StoreError> {
        use publisher::Column as C;
        let _turn = self.write_turn().await;
        let claimed = publisher::Entity::update_many()
            .col_expr(C::LastPollMs, Expr::value(millis(now)))
            .filter(C::Id.eq(id))
            .filter(C::LastPollMs.is_null().or(C::LastPollMs.lte(millis(now - gap))))
            .exec(&self.db)
            .await?;
        if claimed.rows_affected == 1 {
            return Ok(Ok(()));
        }
        let last = self.publisher(id).await?.last_poll_ms.unwrap_or_default();
        Ok(Err(DateTime::from_timestamp_millis(last).unwrap_or(now)))
    }

    /// A publisher by id.
    pub async fn publisher(&self, id: &str) -> Result<Publisher, StoreError> {
        publisher::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
            .ok_or_else(|| StoreError::NotFound("Publisher".into(), id.into()))
    }

    /// Every publisher, by id.
    pub async fn publishers(&self) -> Result<Vec<Publisher>, StoreError> {
        Ok(publisher::Entity::find().order_by_asc(publisher::Column::Id).all(&self.db).await?)
    }

    /// Publishers to poll at `now`, each with its due time (the job's idempotency key), earliest
    /// first, at most `limit`.
    pub async fn publishers_due(&self, now: DateTime<Utc>, limit: u64) -> Result<Vec<(String, i64)>, StoreError> {
        use publisher::Column as C;
        Ok(publisher::Entity::find()
            .select_only()
            .columns([C::Id, C::NextRunMs])
            .filter(C::NextRunMs.lte(millis(now)))
            .order_by_asc(C::NextRunMs)
            .order_by_asc(C::Id)
            .limit(limit)
            .into_tuple::<(String, i64)>()
            .all(&self.db)
            .await?)
    }

    /// Forgets a publisher and deletes everything of `types` ingested from it; returns how many
    /// resources.
    pub async fn delete_publisher(&self, id: &str, types: &[&str], now: DateTime<Utc>) -> Result<u64, StoreError> {
        let removed = self.ingest_sweep(id, types, i64::MAX, now).await?;
        let _turn = self.write_turn().await;
        publisher::Entity::delete_by_id(id.to_string()).exec(&self.db).await?;
        self.origins.forget();
        Ok(removed)
    }

    /// How to batch an ingest here, unless set ([`Store::with_ingest_batching`]). SQLite has one
    /// writer, and each commit writes every page it dirtied to the WAL again: a Slot's start lands
    /// anywhere in `slot_start_id`, so a batch dirties most of that index whatever its size, and
    /// fewer, larger batches write it fewer times. 25,000 rows: a quarter faster than 10,000 at
    /// the same memory, while another writer waits at most about a tenth of a second for the
    /// lock (docs/benchmarks-log.md, "Batches of 25,000 rows on SQLite"). PostgreSQL writes two
    /// batches at once, on two connections, while the next is read.
    pub fn ingest_batching(&self) -> IngestBatching {
        if let Some(batching) = self.ingest_batching {
            return batching;
        }
        if self.sqlite_bulk.is_some() {
            IngestBatching { rows: SQLITE_INGEST_ROWS, concurrent: 1 }
        } else {
            IngestBatching { rows: 2_000, concurrent: 2 }
        }
    }

    /// This store, batching ingests as set (at least one row, one batch at a time).
    pub fn with_ingest_batching(mut self, batching: IngestBatching) -> Self {
        self.ingest_batching =
            Some(IngestBatching { rows: batching.rows.max(1), concurrent: batching.concurrent.max(1) });
        self
    }

    /// Makes `item` ready for [`Store::ingest`] as a new resource written at `now`; an error
    /// when it cannot be stored (a Slot without a schedule, start, end or status).
    pub fn prepare_ingest(&self, item: Ingest, now: DateTime<Utc>) -> Result<IngestRow, StoreError> {
        let Ingest { resource_type, id, digest, mut content } = item;
        let now = crate::from_millis(millis(now));
        stamp(&mut content, &id, 1, now)?;
        let range = SlotRange::of(&resource_type, false, &content)?;
        let index = self.indexer.map(|indexer| (indexer.extract)(&resource_type, &content));
        let text = serde_json::to_string(&content).map_err(|e| StoreError::Invalid(e.to_string()))?;
        Ok(IngestRow { resource_type, id, digest, text, last_updated: millis(now), range, index, synced_ms: None })
    }

    /// [`Store::prepare_ingest`] for a resource given as its members. Its Slot range is read
    /// from its members, its search values from a `Value` of only the members the indexer
    /// reads; its text is the members as given, `id` and the stamped `meta` (version 1, written
    /// at `now`) included. `meta_members` is taken as given: the caller makes it JSON.
    pub fn prepare_ingest_members(&self, item: IngestMembers<'_>, now: DateTime<Utc>) -> Result<IngestRow, StoreError> {
        let IngestMembers { resource_type, id, digest, members, meta_members, synced_ms } = item;
        if synced_ms.is_some() && (resource_type != "Slot" || !meta_members.is_empty()) {
            return Err(StoreError::Invalid(format!("{resource_type}/{id}: only a Slot's origin is kept apart")));
        }
        let invalid = |e: serde_json::Error| StoreError::Invalid(e.to_string());
        let range = match resource_type {
            "Slot" => SlotRange::of_members(&members)?,
            _ => SlotRange::default(),
        };
        let index = match self.indexer {
            Some(indexer) => {
                let reads = (indexer.reads)(resource_type);
                let mut read = serde_json::Map::new();
                for (name, json) in members.iter().filter(|(name, _)| reads.contains(name)) {
                    read.insert(name.to_string(), serde_json::from_str(json.get()).map_err(invalid)?);
                }
                // Without any of the members it reads, a resource has nothing to index.
                Some(match read.is_empty() {
                    true => Indexed::default(),
                    false => (indexer.extract)(resource_type, &Value::Object(read)),
                })
            }
            None => None,
        };
        let now = crate::from_millis(millis(now));
        let size = members.iter().map(|(n, j)| n.len() + j.get().len() + 4).sum::<usize>() + meta_members.len() + 80;
        let mut text = String::with_capacity(size);
        text.push('{');
        let mut has_id = false;
        for (n, (name, json)) in members.iter().enumerate() {
            if *name == "meta" {
                return Err(StoreError::Invalid("meta is given apart from the members".into()));
            }
            if n > 0 {
                text.push(',');
            }
            push_json_string(&mut text, name);
            text.push(':');
            if *name == "id" {
                has_id = true;
                push_json_string(&mut text, &id);
            } else {
                text.push_str(json.get());
            }
        }
        if !has_id {
            return Err(StoreError::Invalid(format!("{resource_type}/{id}: the members have no id")));
        }
        text.push_str(",\"meta\":{");
        text.push_str(&meta_members);
        if !meta_members.is_empty() {
            text.push(',');
        }
        text.push_str("\"versionId\":\"1\",\"lastUpdated\":");
        push_json_string(&mut text, &now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        text.push_str("}}");
        Ok(IngestRow {
            resource_type: resource_type.to_string(),
            id,
            digest,
            text,
            last_updated: millis(now),
            range,
            index,
            synced_ms,
        })
    }

    /// Stores resources of `publisher` seen by poll number `poll`, in one transaction: a
    /// resource whose digest is the one stored is only marked seen; others are written new, as a
    /// new version, or not at all when the same as stored, after `carry` took over what calsync
    /// recorded on the stored version (`crate::bulk`). Needs a SQLite file or PostgreSQL.
    pub async fn ingest(
        &self,
        publisher: &str,
        poll: i64,
        items: Vec<IngestRow>,
        carry: Carry,
        now: DateTime<Utc>,
    ) -> Result<IngestTally, StoreError> {
        let _turn = self.write_turn().await;
        let now = millis(now);
        if let Some(bulk) = &self.sqlite_bulk {
            return bulk.ingest(self.indexer, publisher.to_string(), poll, items, carry, now).await;
        }
        if self.db.get_database_backend() == sea_orm::DbBackend::Postgres {
            let pool = self.db.get_postgres_connection_pool();
            return crate::bulk::postgres::ingest(pool, self.indexer, publisher, poll, items, carry, now).await;
        }
        Err(StoreError::Invalid("ingesting a feed needs a SQLite file or PostgreSQL, not a database in memory".into()))
    }

    /// Marks resources of `publisher` as seen by poll `poll` without writing them: their lines
    /// were bad this time, and what was stored from an earlier, good version of each stays until
    /// a full data set no longer lists it. Returns how many were stored.
    pub async fn ingest_keep(
        &self,
        publisher: &str,
        poll: i64,
        resource_type: &str,
        ids: &[String],
    ) -> Result<u64, StoreError> {
        let mut kept = 0;
        for chunk in ids.chunks(BATCH_ROWS) {
            let _turn = self.write_turn().await;
            kept += resource::Entity::update_many()
                .col_expr(resource::Column::Poll, Expr::value(poll))
                .filter(resource::Column::ResourceType.eq(resource_type))
                .filter(resource::Column::Id.is_in(chunk.iter().cloned()))
                .filter(resource::Column::Publisher.eq(publisher))
                .exec(&self.db)
                .await?
                .rows_affected;
        }
        Ok(kept)
    }

    /// The live resources of one type ingested from `publisher`: (id, JSON).
    pub async fn ingested_contents(
        &self,
        publisher: &str,
        resource_type: &str,
    ) -> Result<Vec<(String, Value)>, StoreError> {
        let rows: Vec<(String, String, Option<i64>)> = resource::Entity::find()
            .select_only()
            .columns([resource::Column::Id, resource::Column::Content, resource::Column::SyncedMs])
            .filter(of_publisher(publisher, resource_type))
            .filter(resource::Column::Deleted.eq(false))
            .into_tuple()
            .all(&self.db)
            .await?;
        let bases = self.origins.bases(&self.db, rows.iter().filter(|r| r.2.is_some()).map(|r| r.0.as_str())).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, json, synced)| {
                let content = serde_json::from_str(&crate::origin::splice(&json, &id, synced, &bases)).ok()?;
                Some((id, content))
            })
            .collect())
    }

    /// Deletes what `publisher` published before, of `types`, but poll `poll` (a full data set)
    /// did not have; returns how many resources. Each is no longer the publisher's: should it
    /// come back, it is written as a new version. What the poll found unchanged is known by its
    /// row's `poll` (SQLite) or by `ingest_seen` (PostgreSQL), which is emptied for the
    /// publisher afterwards: a sweep is for the poll that just ended, once.
    ///
    /// The publisher's ids are walked once, a page at a time by the key alone, with the seen ids
    /// of the same range of the key beside them, and compared here: two range reads of a key
    /// per page, whatever the planner knows of the tables (a join of the two was planned as a
    /// nested loop over all seen rows, docs/benchmarks-log.md).
    pub async fn ingest_sweep(
        &self,
        publisher: &str,
        types: &[&str],
        poll: i64,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        use sea_orm::sea_query::{Alias, Query};
        let mut removed = 0;
        let (first, end) = (format!("{publisher}."), format!("{publisher}/"));
        let seen = Alias::new("ingest_seen");
        let column = |name: &str| Expr::col((seen.clone(), Alias::new(name)));
        for t in types {
            // What the poll did not write is either seen or stale: when as many are seen, none
            // is stale, and the walk is saved (a first ingest, an unchanged poll).
            let unwritten = resource::Entity::find()
                .filter(of_publisher(publisher, t))
                .filter(resource::Column::Poll.lt(poll))
                .count(&self.db)
                .await?;
            let seen_count = Query::select()
                .expr(Expr::col(Alias::new("id")).count())
                .from(seen.clone())
                .and_where(column("publisher").eq(publisher))
                .and_where(column("poll").eq(poll))
                .and_where(column("resource_type").eq(*t))
                .to_owned();
            let (_, counted) = self.select::<(i64,)>(None, &seen_count, false).await?;
            if unwritten <= counted.first().map_or(0, |(n,)| *n as u64) {
                continue;
            }
            let mut after: Option<String> = None;
            loop {
                let mut page = resource::Entity::find()
                    .select_only()
                    .columns([resource::Column::Id, resource::Column::Publisher, resource::Column::Poll])
                    .filter(resource::Column::ResourceType.eq(*t))
                    .filter(resource::Column::Id.lt(end.as_str()));
                page = match &after {
                    Some(id) => page.filter(resource::Column::Id.gt(id.as_str())),
                    None => page.filter(resource::Column::Id.gte(first.as_str())),
                };
                let page: Vec<(String, Option<String>, Option<i64>)> =
                    page.order_by_asc(resource::Column::Id).limit(BATCH_ROWS as u64).into_tuple().all(&self.db).await?;
                let Some((last, ..)) = page.last() else { break };
                let mut seen_ids = Query::select()
                    .expr(column("id"))
                    .from(seen.clone())
                    .and_where(column("publisher").eq(publisher))
                    .and_where(column("poll").eq(poll))
                    .and_where(column("resource_type").eq(*t))
                    .and_where(column("id").lte(last.as_str()))
                    .to_owned();
                seen_ids.and_where(match &after {
                    Some(id) => column("id").gt(id.as_str()),
                    None => column("id").gte(first.as_str()),
                });
                let (_, seen_ids) = self.select::<(String,)>(None, &seen_ids, false).await?;
                let seen_ids: std::collections::HashSet<String> = seen_ids.into_iter().map(|(id,)| id).collect();
                let stale: Vec<String> = page
                    .iter()
                    .filter(|(id, p, q)| {
                        p.as_deref() == Some(publisher) && q.is_some_and(|q| q < poll) && !seen_ids.contains(id)
                    })
                    .map(|(id, ..)| id.clone())
                    .collect();
                after = Some(last.clone());
                if stale.is_empty() {
                    continue;
                }
                let _turn = self.write_turn().await;
                let txn = self.begin_writing().await?;
                removed += delete_many_in(&txn, t, &stale, crate::from_millis(millis(now))).await?;
                resource::Entity::update_many()
                    .col_expr(resource::Column::Publisher, Expr::value(Option::<String>::None))
                    .col_expr(resource::Column::Digest, Expr::value(Option::<i64>::None))
                    .col_expr(resource::Column::Poll, Expr::value(Option::<i64>::None))
                    .filter(resource::Column::ResourceType.eq(*t))
                    .filter(resource::Column::Id.is_in(stale))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
            }
        }
        self.forget_seen(publisher).await?;
        Ok(removed)
    }

    /// Empties `ingest_seen` of `publisher`: after its sweep, and before a poll (what an earlier
    /// poll that ended without one left there).
    pub async fn forget_seen(&self, publisher: &str) -> Result<(), StoreError> {
        use sea_orm::ConnectionTrait;
        let _turn = self.write_turn().await;
        let statement = sea_orm::Statement::from_sql_and_values(
            self.db.get_database_backend(),
            match &self.db.get_database_backend() {
                sea_orm::DbBackend::Postgres => "DELETE FROM ingest_seen WHERE publisher = $1",
                _ => "DELETE FROM ingest_seen WHERE publisher = ?",
            },
            [sea_orm::Value::from(publisher)],
        );
        self.db.execute_raw(statement).await?;
        Ok(())
    }
}

/// The rows of one type ingested from `publisher`: a range of the primary key (their ids start
/// with `{publisher}.`; `/` follows `.`), then the publisher column.
fn of_publisher(publisher: &str, resource_type: &str) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(resource::Column::ResourceType.eq(resource_type))
        .add(resource::Column::Id.gte(format!("{publisher}.")))
        .add(resource::Column::Id.lt(format!("{publisher}/")))
        .add(resource::Column::Publisher.eq(publisher))
}

/// Appends `s` as a JSON string.
fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&Value::from(s).to_string());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

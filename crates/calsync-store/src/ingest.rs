//! What calsync ingests from SMART Scheduling Links publishers: the publishers themselves, and
//! bulk writes that remember which resource came from which publisher, by what source line.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use crate::entity::{ingested, publisher, resource};
use crate::{BATCH_ROWS, Store, StoreError, delete_many_in, millis};

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

/// What an [`Store::ingest`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestTally {
    /// New resources.
    pub created: u64,
    /// Resources written as a new version.
    pub changed: u64,
    /// Resources whose digest (or content) was the same as stored.
    pub unchanged: u64,
}

impl std::ops::AddAssign for IngestTally {
    fn add_assign(&mut self, o: Self) {
        self.created += o.created;
        self.changed += o.changed;
        self.unchanged += o.unchanged;
    }
}

/// Carries what calsync itself recorded on a stored resource (holds and bookings of a Slot's
/// places) into the publisher's new version of it, before the two are compared.
pub type Carry = fn(stored: &Value, incoming: &mut Value);

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
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.connection())
            .await?;
        Ok(())
    }

    /// A publisher by id.
    pub async fn publisher(&self, id: &str) -> Result<Publisher, StoreError> {
        publisher::Entity::find_by_id(id.to_string())
            .one(self.connection())
            .await?
            .ok_or_else(|| StoreError::NotFound("Publisher".into(), id.into()))
    }

    /// Every publisher, by id.
    pub async fn publishers(&self) -> Result<Vec<Publisher>, StoreError> {
        Ok(publisher::Entity::find().order_by_asc(publisher::Column::Id).all(self.connection()).await?)
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
            .all(self.connection())
            .await?)
    }

    /// Forgets a publisher and deletes everything ingested from it; returns how many resources.
    pub async fn delete_publisher(&self, id: &str) -> Result<u64, StoreError> {
        let removed = self.ingest_sweep(id, i64::MAX).await?;
        let _turn = self.write_turn().await;
        publisher::Entity::delete_by_id(id.to_string()).exec(self.connection()).await?;
        Ok(removed)
    }

    /// Stores resources of `publisher` seen by poll number `poll`, in one transaction: a
    /// resource whose digest is the one stored is only marked seen; others are written new, as a
    /// new version, or not at all when the same as stored, after `carry` took over what calsync
    /// recorded on the stored version (`crate::bulk`). Needs a SQLite file or PostgreSQL.
    pub async fn ingest(
        &self,
        publisher: &str,
        poll: i64,
        items: Vec<Ingest>,
        carry: Carry,
    ) -> Result<IngestTally, StoreError> {
        let _turn = self.write_turn().await;
        let now = millis(Utc::now());
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
            kept += ingested::Entity::update_many()
                .col_expr(ingested::Column::Poll, Expr::value(poll))
                .filter(ingested::Column::Publisher.eq(publisher))
                .filter(ingested::Column::ResourceType.eq(resource_type))
                .filter(ingested::Column::Id.is_in(chunk.iter().cloned()))
                .exec(self.connection())
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
        let ids: Vec<String> = ingested::Entity::find()
            .select_only()
            .column(ingested::Column::Id)
            .filter(ingested::Column::Publisher.eq(publisher))
            .filter(ingested::Column::ResourceType.eq(resource_type))
            .into_tuple()
            .all(self.connection())
            .await?;
        let mut found = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(BATCH_ROWS) {
            let rows = resource::Entity::find()
                .filter(resource::Column::ResourceType.eq(resource_type))
                .filter(resource::Column::Id.is_in(chunk.iter().cloned()))
                .filter(resource::Column::Deleted.eq(false))
                .all(self.connection())
                .await?;
            found.extend(rows.into_iter().filter_map(|r| Some((r.id, serde_json::from_str(&r.content).ok()?))));
        }
        Ok(found)
    }

    /// Deletes what `publisher` published before but poll `poll` (a full data set) did not
    /// have; returns how many resources.
    pub async fn ingest_sweep(&self, publisher: &str, poll: i64) -> Result<u64, StoreError> {
        let mut removed = 0;
        loop {
            let _turn = self.write_turn().await;
            let txn = self.begin_writing().await?;
            let stale: Vec<(String, String)> = ingested::Entity::find()
                .select_only()
                .columns([ingested::Column::ResourceType, ingested::Column::Id])
                .filter(ingested::Column::Publisher.eq(publisher))
                .filter(ingested::Column::Poll.lt(poll))
                .limit(BATCH_ROWS as u64)
                .into_tuple()
                .all(&txn)
                .await?;
            if stale.is_empty() {
                return Ok(removed);
            }
            let mut by_type: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for (t, id) in stale {
                by_type.entry(t).or_default().push(id);
            }
            for (t, ids) in by_type {
                removed += delete_many_in(&txn, &t, &ids).await?;
                ingested::Entity::delete_many()
                    .filter(ingested::Column::ResourceType.eq(t.as_str()))
                    .filter(ingested::Column::Id.is_in(ids))
                    .exec(&txn)
                    .await?;
            }
            txn.commit().await?;
        }
    }
}

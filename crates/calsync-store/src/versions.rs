//! Resources and their versions: read, vread, history, create, update (with `If-Match`
//! semantics), delete, bulk `put_many`, and [`StoreTxn`], a write transaction that composes them
//! (`$book` and `$cancel` use it). Every version is stamped with the `now` its writer gives.

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::QueryTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;
use std::sync::Arc;

use crate::entity::{resource, resource_history};
use crate::index::{Indexed, Indexer, forget_index, insert_index};
use crate::slots::{SlotRange, SlotRow, Touched, bump_generations, slots_overlapping};
use crate::{
    BATCH_ROWS, RESOURCE_COLUMNS, Store, StoreError, from_millis, insert_batched, is_valid_id, millis, origin, reader,
};

/// One version of a resource as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// Its type (`Slot`).
    pub resource_type: String,
    /// Its logical id.
    pub id: String,
    /// Version, from 1.
    pub version_id: i64,
    /// When this version was written.
    pub last_updated: DateTime<Utc>,
    /// True for the version that records a deletion.
    pub deleted: bool,
    /// The resource JSON, with `id`, `meta.versionId` and `meta.lastUpdated` set.
    pub content: Value,
}

/// A resource to write with [`Store::put_many`]: type, id, JSON.
pub type Put = (String, String, Value);

impl Store {
    /// Stores a new resource under a server-assigned id, as version 1.
    pub async fn create(
        &self,
        resource_type: &str,
        content: Value,
        now: DateTime<Utc>,
    ) -> Result<StoredResource, StoreError> {
        let txn = self.begin(now).await?;
        let stored = txn.create(resource_type, content).await?;
        txn.commit().await?;
        Ok(stored)
    }

    /// Starts a write transaction whose writes are stamped `now`: reads inside it see its own
    /// writes, and nothing of it is visible to others until [`StoreTxn::commit`]; dropping it
    /// rolls back.
    pub async fn begin(&self, now: DateTime<Utc>) -> Result<StoreTxn<'_>, StoreError> {
        let turn = self.write_turn().await;
        let txn = self.begin_writing().await?;
        let now = from_millis(millis(now));
        Ok(StoreTxn { txn, indexer: self.indexer, origins: self.origins.clone(), now, _turn: turn })
    }

    /// The current version; `Gone` after a delete, `NotFound` if it never existed.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<StoredResource, StoreError> {
        let stmt = resource::Entity::find_by_id((resource_type.to_string(), id.to_string()))
            .select_only()
            .columns(RESOURCE_COLUMNS)
            .into_query();
        let (_, rows) = self.select::<reader::ResourceRow>(None, &stmt, false).await?;
        let Some((t, id, version, updated, deleted, content, synced)) = rows.into_iter().next() else {
            return Err(StoreError::NotFound(resource_type.into(), id.into()));
        };
        if deleted {
            return Err(StoreError::Gone(t, id));
        }
        let bases = self.origins.bases(&self.db, synced.map(|_| id.as_str()).into_iter()).await?;
        stored(t, id.clone(), version, updated, false, &origin::splice(&content, &id, synced, &bases))
    }

    /// A given version, deleted or not. The history has every earlier version; the current one
    /// is in the history too, except after a bulk ingest, which writes it to the history only
    /// once a newer version replaces it.
    pub async fn vread(&self, resource_type: &str, id: &str, version_id: i64) -> Result<StoredResource, StoreError> {
        let key = (resource_type.to_string(), id.to_string());
        if let Some(row) =
            resource_history::Entity::find_by_id((key.0.clone(), key.1.clone(), version_id)).one(&self.db).await?
        {
            let bases = self.origins.bases(&self.db, row.synced_ms.map(|_| id).into_iter()).await?;
            let content = origin::splice(&row.content, &row.id, row.synced_ms, &bases);
            return stored(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, &content);
        }
        match resource::Entity::find_by_id(key).one(&self.db).await? {
            Some(row) if row.version_id == version_id => {
                let bases = self.origins.bases(&self.db, row.synced_ms.map(|_| id).into_iter()).await?;
                let content = origin::splice(&row.content, &row.id, row.synced_ms, &bases);
                stored(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, &content)
            }
            _ => Err(StoreError::NotFound(resource_type.into(), format!("{id}/_history/{version_id}"))),
        }
    }

    /// Every version, newest first (see [`Store::vread`] for where the current one is).
    pub async fn history(&self, resource_type: &str, id: &str) -> Result<Vec<StoredResource>, StoreError> {
        let versions = resource_history::Entity::find()
            .filter(resource_history::Column::ResourceType.eq(resource_type))
            .filter(resource_history::Column::Id.eq(id))
            .order_by_desc(resource_history::Column::VersionId)
            .all(&self.db)
            .await?;
        let current = resource::Entity::find_by_id((resource_type.to_string(), id.to_string()))
            .one(&self.db)
            .await?
            .filter(|row| versions.first().is_none_or(|newest| newest.version_id < row.version_id));
        let kept_apart = versions.iter().map(|r| r.synced_ms).chain(current.iter().map(|r| r.synced_ms));
        let bases = self.origins.bases(&self.db, kept_apart.flatten().map(|_| id)).await?;
        let whole = |text: String, synced| origin::spliced(text, id, synced, &bases);
        let mut all = Vec::with_capacity(versions.len() + 1);
        if let Some(row) = current {
            let content = whole(row.content, row.synced_ms);
            all.push(stored(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, &content)?);
        }
        for r in versions {
            let content = whole(r.content, r.synced_ms);
            all.push(stored(r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, &content)?);
        }
        Ok(all)
    }

    /// Writes a new version of `id` (creating it if unknown or deleted). With `if_match`, the
    /// current version must be that one. Returns the new version and whether it was created.
    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        content: Value,
        if_match: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<(StoredResource, bool), StoreError> {
        let txn = self.begin(now).await?;
        let written = txn.update(resource_type, id, content, if_match).await?;
        txn.commit().await?;
        Ok(written)
    }

    /// Deletes `id`: a new version marked deleted; reads answer `Gone` afterwards.
    /// Deleting an unknown or deleted resource changes nothing.
    pub async fn delete(&self, resource_type: &str, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let txn = self.begin(now).await?;
        txn.delete(resource_type, id).await?;
        txn.commit().await
    }

    /// Writes many resources under their own ids in one transaction, with multi-row statements:
    /// new ones become version 1, changed ones get a new version, and ones whose content is
    /// unchanged are left as they are (same version). Returns how many were written.
    pub async fn put_many(&self, items: Vec<Put>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        let txn = self.begin_writing().await?;
        let (created, changed) = put_many_in(&txn, self.indexer, items, from_millis(millis(now))).await?;
        txn.commit().await?;
        Ok(created + changed)
    }
}

/// A write transaction (see [`Store::begin`]). On SQLite it holds this process's write turn.
pub struct StoreTxn<'a> {
    txn: sea_orm::DatabaseTransaction,
    indexer: Option<Indexer>,
    origins: Arc<origin::Origins>,
    /// What every write of the transaction is stamped with (`meta.lastUpdated`).
    now: DateTime<Utc>,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl StoreTxn<'_> {
    /// Deletes many resources of one type (those already deleted or absent are skipped), in
    /// batches: each gets a deleted version in its history, leaves the search index and, for
    /// Slots, the Slot table. Returns how many were deleted.
    pub async fn delete_many(&self, resource_type: &str, ids: &[String]) -> Result<u64, StoreError> {
        delete_many_in(&self.txn, resource_type, ids, self.now).await
    }

    /// [`Store::put_many`] inside this transaction.
    pub async fn put_many(&self, items: Vec<Put>) -> Result<u64, StoreError> {
        let (created, changed) = put_many_in(&self.txn, self.indexer, items, self.now).await?;
        Ok(created + changed)
    }

    /// Makes every write of the transaction visible at once.
    pub async fn commit(self) -> Result<(), StoreError> {
        Ok(self.txn.commit().await?)
    }

    /// The current version as this transaction sees it.
    pub async fn read(&self, resource_type: &str, id: &str) -> Result<StoredResource, StoreError> {
        read_current(&self.txn, &self.origins, resource_type, id).await
    }

    /// See [`Store::create`].
    pub async fn create(&self, resource_type: &str, content: Value) -> Result<StoredResource, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let version = Version { number: 1, deleted: false, previous: None, synced_ms: None, now: self.now };
        write_version(&self.txn, self.indexer, resource_type, &id, content, version).await
    }

    /// See [`Store::update`]. A concurrent writer that got there first makes this a
    /// `VersionConflict` (with `if_match`) or `Concurrent` (without).
    pub async fn update(
        &self,
        resource_type: &str,
        id: &str,
        content: Value,
        if_match: Option<i64>,
    ) -> Result<(StoredResource, bool), StoreError> {
        if !is_valid_id(id) {
            return Err(StoreError::Invalid(format!("{id:?} is not a valid id: 1-64 of A-Z a-z 0-9 - .")));
        }
        let current = resource::Entity::find_by_id((resource_type.to_string(), id.to_string())).one(&self.txn).await?;
        let (version, created) = match &current {
            Some(row) => (row.version_id + 1, row.deleted),
            None => (1, true),
        };
        if let Some(expected) = if_match {
            let actual = current.as_ref().map_or(0, |r| r.version_id);
            if actual != expected {
                return Err(StoreError::VersionConflict { expected, current: actual });
            }
        }
        let previous = current.as_ref().map(|r| r.version_id);
        let version = Version { number: version, deleted: false, previous, synced_ms: None, now: self.now };
        let written = write_version(&self.txn, self.indexer, resource_type, id, content, version).await;
        match (written, if_match) {
            // The version the client named was current when read, and is not any more.
            (Err(StoreError::Concurrent(..)), Some(expected)) => {
                Err(StoreError::VersionConflict { expected, current: expected + 1 })
            }
            (other, _) => Ok((other?, created)),
        }
    }

    /// See [`Store::delete`].
    pub async fn delete(&self, resource_type: &str, id: &str) -> Result<(), StoreError> {
        let current = resource::Entity::find_by_id((resource_type.to_string(), id.to_string())).one(&self.txn).await?;
        let Some(row) = current.filter(|r| !r.deleted) else {
            return Ok(());
        };
        let content: Value = serde_json::from_str(&row.content).unwrap_or(Value::Null);
        let previous = Some(row.version_id);
        // The deleted version is the stored one: without its origin if that is kept apart.
        let version =
            Version { number: row.version_id + 1, deleted: true, previous, synced_ms: row.synced_ms, now: self.now };
        write_version(&self.txn, self.indexer, resource_type, id, content, version).await?;
        Ok(())
    }

    /// See [`Store::slots_overlapping`]; sees this transaction's writes.
    pub async fn slots_overlapping(
        &self,
        schedule: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotRow>, StoreError> {
        slots_overlapping(&self.txn, schedule, from, to).await
    }
}

/// [`Store::put_many`] inside a transaction.
/// Returns how many were created and how many got a new version.
async fn put_many_in<C: ConnectionTrait>(
    txn: &C,
    indexer: Option<Indexer>,
    items: Vec<Put>,
    now: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    if let Some((_, id, _)) = items.iter().find(|(_, id, _)| !is_valid_id(id)) {
        return Err(StoreError::Invalid(format!("{id:?} is not a valid id: 1-64 of A-Z a-z 0-9 - .")));
    }
    let mut by_type: std::collections::BTreeMap<String, Vec<(String, Value)>> = Default::default();
    for (t, id, content) in items {
        by_type.entry(t).or_default().push((id, content));
    }
    let (mut created, mut changed) = (0, 0);
    for (t, resources) in by_type {
        for chunk in resources.chunks(BATCH_ROWS) {
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            let current: std::collections::HashMap<String, resource::Model> = resource::Entity::find()
                .filter(resource::Column::ResourceType.eq(t.as_str()))
                .filter(resource::Column::Id.is_in(ids))
                .all(txn)
                .await?
                .into_iter()
                .map(|r| (r.id.clone(), r))
                .collect();
            let mut fresh: Vec<(String, Value)> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (id, content) in chunk {
                if !seen.insert(id.as_str()) {
                    return Err(StoreError::Invalid(format!("{t}/{id} appears twice in one write")));
                }
                match current.get(id) {
                    None => {
                        let mut content = content.clone();
                        stamp(&mut content, id, 1, now)?;
                        fresh.push((id.clone(), content));
                    }
                    Some(row) => {
                        let old: Value = serde_json::from_str(&row.content).unwrap_or(Value::Null);
                        if row.deleted || !same_content(&old, content) {
                            let previous = Some(row.version_id);
                            let version =
                                Version { number: row.version_id + 1, deleted: false, previous, synced_ms: None, now };
                            write_version(txn, indexer, &t, id, content.clone(), version).await?;
                            changed += 1;
                        }
                    }
                }
            }
            created += fresh.len() as u64;
            insert_fresh(txn, indexer, &t, &fresh, now).await?;
        }
    }
    Ok((created, changed))
}

/// [`StoreTxn::delete_many`]. The current row keeps its last content with `deleted` set and the
/// next version number (reads answer 410 and never show it); the history has the stamped
/// deleted version, as [`StoreTxn::delete`] writes it.
pub(crate) async fn delete_many_in<C: ConnectionTrait>(
    txn: &C,
    resource_type: &str,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for chunk in ids.chunks(BATCH_ROWS) {
        let current = resource::Entity::find()
            .filter(resource::Column::ResourceType.eq(resource_type))
            .filter(resource::Column::Id.is_in(chunk.iter().cloned()))
            .filter(resource::Column::Deleted.eq(false))
            .all(txn)
            .await?;
        if current.is_empty() {
            continue;
        }
        let gone: Vec<String> = current.iter().map(|r| r.id.clone()).collect();
        let mut schedules = Touched::default();
        for s in current.iter().filter_map(|r| r.schedule.as_ref()) {
            schedules.schedule(s);
        }
        let mut history = Vec::with_capacity(current.len());
        for row in current {
            let mut content: Value = serde_json::from_str(&row.content).unwrap_or(Value::Null);
            stamp(&mut content, &row.id, row.version_id + 1, now)?;
            // A Slot stored without its origin keeps it apart in its deleted version too.
            history.push(resource_history::ActiveModel {
                resource_type: Set(resource_type.to_string()),
                id: Set(row.id),
                version_id: Set(row.version_id + 1),
                last_updated: Set(millis(now)),
                deleted: Set(true),
                content: Set(match row.synced_ms {
                    Some(_) => origin::text_with_meta_last(&content)?,
                    None => content.to_string(),
                }),
                synced_ms: Set(row.synced_ms),
            });
        }
        resource::Entity::update_many()
            .col_expr(resource::Column::VersionId, Expr::col(resource::Column::VersionId).add(1))
            .col_expr(resource::Column::LastUpdated, Expr::value(millis(now)))
            .col_expr(resource::Column::Deleted, Expr::value(true))
            .col_expr(resource::Column::Schedule, Expr::value(Option::<String>::None))
            .col_expr(resource::Column::StartMs, Expr::value(Option::<i64>::None))
            .col_expr(resource::Column::EndMs, Expr::value(Option::<i64>::None))
            .col_expr(resource::Column::Status, Expr::value(Option::<String>::None))
            .filter(resource::Column::ResourceType.eq(resource_type))
            .filter(resource::Column::Id.is_in(gone.iter().cloned()))
            .filter(resource::Column::Deleted.eq(false))
            .exec(txn)
            .await?;
        insert_batched(txn, history.into_iter()).await?;
        forget_index(txn, resource_type, &gone).await?;
        bump_generations(txn, schedules).await?;
        deleted += gone.len() as u64;
    }
    Ok(deleted)
}

async fn read_current<C: ConnectionTrait>(
    db: &C,
    origins: &origin::Origins,
    resource_type: &str,
    id: &str,
) -> Result<StoredResource, StoreError> {
    let row = resource::Entity::find_by_id((resource_type.to_string(), id.to_string()))
        .one(db)
        .await?
        .ok_or_else(|| StoreError::NotFound(resource_type.into(), id.into()))?;
    if row.deleted {
        return Err(StoreError::Gone(resource_type.into(), id.into()));
    }
    let bases = origins.bases(db, row.synced_ms.map(|_| id).into_iter()).await?;
    let content = origin::splice(&row.content, &row.id, row.synced_ms, &bases);
    stored(row.resource_type, row.id, row.version_id, row.last_updated, row.deleted, &content)
}

pub(crate) fn stored(
    resource_type: String,
    id: String,
    version_id: i64,
    last_updated: i64,
    deleted: bool,
    content: &str,
) -> Result<StoredResource, StoreError> {
    let content = serde_json::from_str(content)
        .map_err(|e| StoreError::Invalid(format!("stored {resource_type}/{id} is not JSON: {e}")))?;
    Ok(StoredResource { resource_type, id, version_id, last_updated: from_millis(last_updated), deleted, content })
}

/// One live version of a resource as the JSON text the store holds, unparsed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredText {
    /// Its type (`Slot`).
    pub resource_type: String,
    /// Its logical id.
    pub id: String,
    /// Version, from 1.
    pub version_id: i64,
    /// When this version was written.
    pub last_updated: DateTime<Utc>,
    /// The resource JSON, with `id`, `meta.versionId` and `meta.lastUpdated` set.
    pub json: String,
}

impl From<StoredResource> for StoredText {
    fn from(r: StoredResource) -> Self {
        let json = r.content.to_string();
        StoredText {
            resource_type: r.resource_type,
            id: r.id,
            version_id: r.version_id,
            last_updated: r.last_updated,
            json,
        }
    }
}

impl StoredText {
    /// The parsed resource.
    pub fn parse(self) -> Result<StoredResource, StoreError> {
        let StoredText { resource_type, id, version_id, last_updated, json } = self;
        let content = serde_json::from_str(&json)
            .map_err(|e| StoreError::Invalid(format!("stored {resource_type}/{id} is not JSON: {e}")))?;
        Ok(StoredResource { resource_type, id, version_id, last_updated, deleted: false, content })
    }
}

/// Inserts resources that do not exist yet as version 1 (already stamped), with their history,
/// Slot rows and index, in multi-row statements.
async fn insert_fresh<C: ConnectionTrait>(
    txn: &C,
    indexer: Option<Indexer>,
    resource_type: &str,
    fresh: &[(String, Value)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if fresh.is_empty() {
        return Ok(());
    }
    let texts: Vec<String> = fresh.iter().map(|(_, c)| c.to_string()).collect();
    let ranges = fresh.iter().map(|(_, c)| SlotRange::of(resource_type, false, c)).collect::<Result<Vec<_>, _>>()?;
    let mut touched = Touched::default();
    for range in &ranges {
        touched.slot(range);
    }
    let current: Vec<resource::ActiveModel> = fresh
        .iter()
        .zip(&texts)
        .zip(ranges)
        .map(|(((id, _), text), range)| resource::ActiveModel {
            resource_type: Set(resource_type.to_string()),
            id: Set(id.clone()),
            version_id: Set(1),
            last_updated: Set(millis(now)),
            deleted: Set(false),
            content: Set(text.clone()),
            schedule: Set(range.schedule),
            start_ms: Set(range.start_ms),
            end_ms: Set(range.end_ms),
            status: Set(range.status),
            ..Default::default()
        })
        .collect();
    insert_batched(txn, current.into_iter()).await?;
    let history: Vec<resource_history::ActiveModel> = fresh
        .iter()
        .zip(&texts)
        .map(|((id, _), text)| resource_history::ActiveModel {
            resource_type: Set(resource_type.to_string()),
            id: Set(id.clone()),
            version_id: Set(1),
            last_updated: Set(millis(now)),
            deleted: Set(false),
            content: Set(text.clone()),
            synced_ms: Set(None),
        })
        .collect();
    insert_batched(txn, history.into_iter()).await?;
    bump_generations(txn, touched).await?;
    if let Some(indexer) = indexer {
        let values: Vec<(&str, Indexed)> =
            fresh.iter().map(|(id, c)| (id.as_str(), (indexer.extract)(resource_type, c))).collect();
        insert_index(txn, resource_type, &values).await?;
    }
    Ok(())
}

/// Sets `id`, `meta.versionId` and `meta.lastUpdated`.
pub(crate) fn stamp(content: &mut Value, id: &str, version: i64, now: DateTime<Utc>) -> Result<(), StoreError> {
    let Value::Object(map) = content else {
        return Err(StoreError::Invalid("a resource must be a JSON object".into()));
    };
    map.insert("id".into(), Value::String(id.to_string()));
    let meta = map.entry("meta").or_insert_with(|| Value::Object(Default::default()));
    if let Value::Object(meta) = meta {
        meta.insert("versionId".into(), Value::String(version.to_string()));
        meta.insert("lastUpdated".into(), Value::String(now.to_rfc3339_opts(SecondsFormat::Millis, true)));
    }
    Ok(())
}

/// True when two versions differ only in what the store stamps on them (`id`,
/// `meta.versionId`, `meta.lastUpdated`): a rewrite, not a change.
pub(crate) fn same_content(a: &Value, b: &Value) -> bool {
    let (Value::Object(a), Value::Object(b)) = (a, b) else { return a == b };
    let stamped = |k: &str| k == "id" || k == "meta";
    let meta = |m: Option<&Value>| -> serde_json::Map<String, Value> {
        let mut m = m.and_then(Value::as_object).cloned().unwrap_or_default();
        m.remove("versionId");
        m.remove("lastUpdated");
        m
    };
    a.iter().filter(|(k, _)| !stamped(k)).count() == b.iter().filter(|(k, _)| !stamped(k)).count()
        && a.iter().filter(|(k, _)| !stamped(k)).all(|(k, v)| b.get(k) == Some(v))
        && meta(a.get("meta")) == meta(b.get("meta"))
}

/// Copies version `version` of a resource from `resource` to the history, if it is the current
/// one and not there yet.
async fn keep_in_history<C: ConnectionTrait>(
    txn: &C,
    resource_type: &str,
    id: &str,
    version: i64,
) -> Result<(), StoreError> {
    use resource::Column as R;
    use sea_orm::sea_query::Query;
    // The history has the current row's columns, under the same names.
    let current = Query::select()
        .columns(RESOURCE_COLUMNS)
        .from(resource::Entity)
        .and_where(R::ResourceType.eq(resource_type))
        .and_where(R::Id.eq(id))
        .and_where(R::VersionId.eq(version))
        .to_owned();
    let copy = Query::insert()
        .into_table(resource_history::Entity)
        .columns(RESOURCE_COLUMNS.map(|c| sea_orm::sea_query::Alias::new(sea_orm::IdenStatic::as_str(&c))))
        .select_from(current)
        .map_err(|e| StoreError::Invalid(e.to_string()))?
        .on_conflict(OnConflict::new().do_nothing().to_owned())
        .to_owned();
    txn.execute(&copy).await?;
    Ok(())
}

/// The version [`write_version`] writes.
struct Version {
    /// Its number.
    number: i64,
    /// True for the version that records a deletion.
    deleted: bool,
    /// The version it replaces, if any (the write is conditional on it).
    previous: Option<i64>,
    /// Set only when the content is an ingested Slot's without its origin (a deletion of one as
    /// stored); any other content is whole ([`origin`]).
    synced_ms: Option<i64>,
    /// Its `meta.lastUpdated`.
    now: DateTime<Utc>,
}

/// Writes `version` of a resource inside `txn`: the current row (conditional on the previous
/// version when there was one), the history row; a Slot's range columns with it.
async fn write_version<C: ConnectionTrait>(
    txn: &C,
    indexer: Option<Indexer>,
    resource_type: &str,
    id: &str,
    mut content: Value,
    version: Version,
) -> Result<StoredResource, StoreError> {
    let Version { number: version, deleted, previous, synced_ms, now } = version;
    stamp(&mut content, id, version, now)?;
    let text = match synced_ms {
        Some(_) => origin::text_with_meta_last(&content)?,
        None => content.to_string(),
    };
    let range = SlotRange::of(resource_type, deleted, &content)?;
    // The Schedules whose Slots this write changes: the one the Slot had, the one it has.
    let mut touched = Touched::default();
    if resource_type == "Slot" && previous.is_some() {
        let before: Option<Option<String>> = resource::Entity::find_by_id((resource_type.to_string(), id.to_string()))
            .select_only()
            .column(resource::Column::Schedule)
            .into_tuple()
            .one(txn)
            .await?;
        if let Some(before) = before.flatten() {
            touched.schedule(&before);
        }
    }
    touched.slot(&range);

    let row = resource::ActiveModel {
        resource_type: Set(resource_type.to_string()),
        id: Set(id.to_string()),
        version_id: Set(version),
        last_updated: Set(millis(now)),
        deleted: Set(deleted),
        content: Set(text.clone()),
        schedule: Set(range.schedule.clone()),
        start_ms: Set(range.start_ms),
        end_ms: Set(range.end_ms),
        status: Set(range.status.clone()),
        synced_ms: Set(synced_ms),
        ..Default::default()
    };
    match previous {
        None => {
            resource::Entity::insert(row).exec(txn).await.map_err(|e| match e.sql_err() {
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
                    StoreError::Concurrent(resource_type.into(), id.into())
                }
                _ => e.into(),
            })?;
        }
        Some(prev) => {
            // The version replaced goes to the history, unless it is there already: an ingest
            // writes a first version to `resource` alone.
            keep_in_history(txn, resource_type, id, prev).await?;
            let done = resource::Entity::update_many()
                .col_expr(resource::Column::VersionId, Expr::value(version))
                .col_expr(resource::Column::LastUpdated, Expr::value(millis(now)))
                .col_expr(resource::Column::Deleted, Expr::value(deleted))
                .col_expr(resource::Column::Content, Expr::value(text.clone()))
                .col_expr(resource::Column::Schedule, Expr::value(range.schedule))
                .col_expr(resource::Column::StartMs, Expr::value(range.start_ms))
                .col_expr(resource::Column::EndMs, Expr::value(range.end_ms))
                .col_expr(resource::Column::Status, Expr::value(range.status))
                .col_expr(resource::Column::SyncedMs, Expr::value(synced_ms))
                .filter(resource::Column::ResourceType.eq(resource_type))
                .filter(resource::Column::Id.eq(id))
                .filter(resource::Column::VersionId.eq(prev))
                .exec(txn)
                .await?;
            if done.rows_affected != 1 {
                return Err(StoreError::Concurrent(resource_type.into(), id.into()));
            }
        }
    }
    resource_history::Entity::insert(resource_history::ActiveModel {
        resource_type: Set(resource_type.to_string()),
        id: Set(id.to_string()),
        version_id: Set(version),
        last_updated: Set(millis(now)),
        deleted: Set(deleted),
        content: Set(text),
        synced_ms: Set(synced_ms),
    })
    .exec(txn)
    .await?;

    if let Some(indexer) = indexer {
        forget_index(txn, resource_type, &[id.to_string()]).await?;
        if !deleted {
            insert_index(txn, resource_type, &[(id, (indexer.extract)(resource_type, &content))]).await?;
        }
    }
    bump_generations(txn, touched).await?;
    Ok(StoredResource {
        resource_type: resource_type.to_string(),
        id: id.to_string(),
        version_id: version,
        last_updated: now,
        deleted,
        content,
    })
}

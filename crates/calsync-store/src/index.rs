//! The search index: one row per token, reference or string value (`search_index`) and per date
//! value as a range of milliseconds (`date_index`), written in the transaction of every write
//! through an injected [`Indexer`], so the store itself stays FHIR-agnostic; rebuilt at start when
//! the definitions changed.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use crate::entity::{date_index, resource, search_index, store_meta};
use crate::{BATCH_ROWS, Store, StoreError, insert_batched};

/// One value of a resource for search: what an [`Indexer`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexRow {
    /// Search parameter name.
    pub param: String,
    /// Token system, "" when none.
    pub system: String,
    /// As searched.
    pub value: String,
    /// As written.
    pub raw: String,
}

/// One date value of a resource for search: a range of UTC milliseconds `[low, high)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRow {
    /// Search parameter name.
    pub param: String,
    /// Inclusive start.
    pub low: i64,
    /// Exclusive end.
    pub high: i64,
}

/// Everything a resource is searched by, besides its type, id and last update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Indexed {
    /// Token, reference and string values.
    pub terms: Vec<IndexRow>,
    /// Date values.
    pub dates: Vec<DateRow>,
}

/// Extracts the searchable values of a resource. The store calls it on every write so the index
/// changes in the same transaction; it knows nothing of FHIR itself.
#[derive(Debug, Clone, Copy)]
pub struct Indexer {
    /// Values of a resource (type, JSON).
    pub extract: fn(&str, &Value) -> Indexed,
    /// Names the definitions `extract` follows; when it differs from the one the index was built
    /// with, [`Store::reindex_if_stale`] rebuilds the index.
    pub fingerprint: fn() -> String,
    /// The top-level members `extract` reads of a type: a resource given as its members
    /// ([`IngestMembers`]) is extracted from those alone, and has nothing to index without any
    /// of them.
    pub reads: fn(&str) -> &'static [&'static str],
}

/// Key in `store_meta` of the fingerprint the search index was built with.
const INDEX_FINGERPRINT: &str = "index_fingerprint";

/// The PostgreSQL advisory lock a search index rebuild holds (any number, the same in every
/// process: "calsync" in ASCII).
const REINDEX_LOCK: i64 = 0x0063_616c_7379_6e63;

impl Store {
    /// Rebuilds the search index when it was built with other definitions than the indexer's
    /// (or before there was an index). Returns how many resources were reindexed, if any.
    pub async fn reindex_if_stale(&self) -> Result<Option<u64>, StoreError> {
        let Some(indexer) = self.indexer else { return Ok(None) };
        let wanted = (indexer.fingerprint)();
        let built = store_meta::Entity::find_by_id(INDEX_FINGERPRINT.to_string()).one(&self.db).await?;
        if built.is_some_and(|m| m.value == wanted) {
            return Ok(None);
        }
        let _turn = self.write_turn().await;
        let txn = self.begin_writing().await?;
        // Processes starting together (API replicas, a worker) rebuild one after the other, and
        // each checks again once it is its turn: the second finds the index current. SQLite's
        // immediate transaction already takes the write lock; PostgreSQL takes a lock named for
        // the rebuild until the transaction ends.
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({REINDEX_LOCK})")).await?;
        }
        let built = store_meta::Entity::find_by_id(INDEX_FINGERPRINT.to_string()).one(&txn).await?;
        if built.is_some_and(|m| m.value == wanted) {
            return Ok(None);
        }
        search_index::Entity::delete_many().exec(&txn).await?;
        date_index::Entity::delete_many().exec(&txn).await?;
        let mut after: Option<(String, String)> = None;
        let mut count = 0;
        loop {
            let mut q = resource::Entity::find().filter(resource::Column::Deleted.eq(false));
            if let Some((t, id)) = &after {
                // A row value, which both databases seek the key to: the equivalent `type > … OR
                // (type = … AND id > …)` made SQLite walk every row before the cursor again on
                // each page (a first start on a million ingested Slots never finished).
                let key = Expr::tuple([Expr::col(resource::Column::ResourceType), Expr::col(resource::Column::Id)]);
                q = q.filter(key.gt(Expr::tuple([Expr::value(t.as_str()), Expr::value(id.as_str())])));
            }
            let rows = q
                .order_by_asc(resource::Column::ResourceType)
                .order_by_asc(resource::Column::Id)
                .limit(BATCH_ROWS as u64)
                .all(&txn)
                .await?;
            let Some(last) = rows.last() else { break };
            after = Some((last.resource_type.clone(), last.id.clone()));
            count += rows.len() as u64;
            let mut rows = rows.into_iter().peekable();
            while let Some(first) = rows.peek() {
                let t = first.resource_type.clone();
                let mut same_type = Vec::new();
                while let Some(r) = rows.next_if(|r| r.resource_type == t) {
                    let content: Value = serde_json::from_str(&r.content).unwrap_or(Value::Null);
                    same_type.push((r.id, (indexer.extract)(&t, &content)));
                }
                insert_index(&txn, &t, &same_type).await?;
            }
        }
        store_meta::Entity::insert(store_meta::ActiveModel {
            key: Set(INDEX_FINGERPRINT.to_string()),
            value: Set(wanted),
        })
        .on_conflict(OnConflict::column(store_meta::Column::Key).update_column(store_meta::Column::Value).to_owned())
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(Some(count))
    }
}

/// Removes the index rows of `ids`.
pub(crate) async fn forget_index<C: ConnectionTrait>(
    txn: &C,
    resource_type: &str,
    ids: &[String],
) -> Result<(), StoreError> {
    for chunk in ids.chunks(BATCH_ROWS) {
        search_index::Entity::delete_many()
            .filter(search_index::Column::ResourceType.eq(resource_type))
            .filter(search_index::Column::Id.is_in(chunk.iter().cloned()))
            .exec(txn)
            .await?;
        date_index::Entity::delete_many()
            .filter(date_index::Column::ResourceType.eq(resource_type))
            .filter(date_index::Column::Id.is_in(chunk.iter().cloned()))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Inserts the index rows of resources (id, values), in multi-row statements.
pub(crate) async fn insert_index<C: ConnectionTrait>(
    txn: &C,
    resource_type: &str,
    resources: &[(impl AsRef<str>, Indexed)],
) -> Result<(), StoreError> {
    let terms: Vec<search_index::ActiveModel> = resources
        .iter()
        .flat_map(|(id, ix)| {
            ix.terms.iter().map(move |r| search_index::ActiveModel {
                resource_type: Set(resource_type.to_string()),
                id: Set(id.as_ref().to_string()),
                param: Set(r.param.clone()),
                system: Set(r.system.clone()),
                value: Set(r.value.clone()),
                raw: Set(r.raw.clone()),
                ..Default::default()
            })
        })
        .collect();
    insert_batched(txn, terms.into_iter()).await?;
    let dates: Vec<date_index::ActiveModel> = resources
        .iter()
        .flat_map(|(id, ix)| {
            ix.dates.iter().map(move |d| date_index::ActiveModel {
                resource_type: Set(resource_type.to_string()),
                id: Set(id.as_ref().to_string()),
                param: Set(d.param.clone()),
                low_ms: Set(d.low),
                high_ms: Set(d.high),
                ..Default::default()
            })
        })
        .collect();
    insert_batched(txn, dates.into_iter()).await
}

//! Searches the facade can ask for. The store knows columns, not FHIR parameters: the facade
//! turns `start=ge2026-12-07` into a [`Bound`] on the Slot start column.

use sea_orm::sea_query::{LikeExpr, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::entity::{resource, search_index, slot};
use crate::{Store, StoreError, StoredResource, stored};

/// A half-open range of UTC milliseconds `[lo, hi)`, either side open, possibly negated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bound {
    /// Inclusive lower end.
    pub lo: Option<i64>,
    /// Exclusive upper end.
    pub hi: Option<i64>,
    /// Match what is outside the range instead.
    pub negate: bool,
}

impl Bound {
    fn condition(&self, col: impl ColumnTrait) -> Condition {
        let mut inside = Condition::all();
        if let Some(lo) = self.lo {
            inside = inside.add(col.gte(lo));
        }
        if let Some(hi) = self.hi {
            inside = inside.add(col.lt(hi));
        }
        if self.negate { inside.not() } else { inside }
    }
}

/// A token or reference parameter: any of `values` (comma = OR), or none of them with `:not`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnyOf {
    /// The values.
    pub values: Vec<String>,
    /// `:not`.
    pub negate: bool,
}

/// How a term compares with indexed values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The searched form equals the term (tokens, references).
    Exact,
    /// The written form equals the term (string `:exact`).
    Written,
    /// The searched form starts with the term (string default).
    Prefix,
    /// The searched form contains the term (string `:contains`).
    Contains,
}

/// One alternative of an indexed parameter (comma = OR between terms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTerm {
    /// Token system to require (`Some("")` = no system); `None` = any.
    pub system: Option<String>,
    /// The value; `None` = any value (e.g. `system|`).
    pub value: Option<String>,
    /// How the value compares.
    pub how: Match,
}

/// A condition on one indexed parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexFilter {
    /// Has a value matching any term (`negate`: has none).
    Matches {
        /// Parameter name.
        param: String,
        /// Alternatives.
        terms: Vec<IndexTerm>,
        /// `:not`.
        negate: bool,
    },
    /// `:missing=true` (no value at all) or `:missing=false`.
    Missing {
        /// Parameter name.
        param: String,
        /// True for `:missing=true`.
        missing: bool,
    },
}

fn escape_like(v: &str) -> String {
    v.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

fn ids_with(resource_type: &str, param: &str, terms: Option<&[IndexTerm]>) -> SelectStatement {
    let mut cond = Condition::all()
        .add(search_index::Column::ResourceType.eq(resource_type))
        .add(search_index::Column::Param.eq(param));
    if let Some(terms) = terms {
        let mut any = Condition::any();
        for t in terms {
            let mut one = Condition::all();
            if let Some(system) = &t.system {
                one = one.add(search_index::Column::System.eq(system.clone()));
            }
            if let Some(v) = &t.value {
                one = one.add(match t.how {
                    Match::Exact => search_index::Column::Value.eq(v.clone()),
                    Match::Written => search_index::Column::Raw.eq(v.clone()),
                    Match::Prefix => {
                        search_index::Column::Value.like(LikeExpr::new(format!("{}%", escape_like(v))).escape('\\'))
                    }
                    Match::Contains => {
                        search_index::Column::Value.like(LikeExpr::new(format!("%{}%", escape_like(v))).escape('\\'))
                    }
                });
            }
            any = any.add(one);
        }
        cond = cond.add(any);
    }
    Query::select().column(search_index::Column::Id).from(search_index::Entity).cond_where(cond).to_owned()
}

fn index_condition(resource_type: &str, id_column: impl ColumnTrait, f: &IndexFilter) -> Condition {
    match f {
        IndexFilter::Matches { param, terms, negate } => {
            let q = ids_with(resource_type, param, Some(terms));
            Condition::all().add(if *negate { id_column.not_in_subquery(q) } else { id_column.in_subquery(q) })
        }
        IndexFilter::Missing { param, missing } => {
            let q = ids_with(resource_type, param, None);
            Condition::all().add(if *missing { id_column.not_in_subquery(q) } else { id_column.in_subquery(q) })
        }
    }
}

/// A search over any resource type: all fields ANDed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourceSearch {
    /// `_id`.
    pub ids: Vec<AnyOf>,
    /// Indexed token, reference and string parameters.
    pub index: Vec<IndexFilter>,
    /// `_lastUpdated`.
    pub updated: Vec<Bound>,
}

/// A Slot search over the range table. Every field is ANDed; each `Vec` entry is one
/// occurrence of a repeated parameter (AND).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SlotSearch {
    /// `_id`.
    pub ids: Vec<AnyOf>,
    /// `schedule` as `Schedule/{id}`.
    pub schedules: Vec<AnyOf>,
    /// `status`.
    pub statuses: Vec<AnyOf>,
    /// `start`.
    pub start: Vec<Bound>,
    /// `end`.
    pub end: Vec<Bound>,
    /// Indexed parameters (service-type, specialty, ...).
    pub index: Vec<IndexFilter>,
}

/// Where a page starts: after this sort key, in the order of the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// After a Slot with this start and id (Slots are sorted by start, then id).
    Slot(i64, String),
    /// After this id (other types are sorted by id).
    Id(String),
}

/// Sort direction of a search (the tie-breaking id follows it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Smallest first.
    #[default]
    Ascending,
    /// Largest first.
    Descending,
}

/// One page of results.
#[derive(Debug, Clone)]
pub struct Page {
    /// Matches in order.
    pub resources: Vec<StoredResource>,
    /// Total matches (all pages).
    pub total: u64,
    /// Cursor of the next page, if there is one.
    pub next: Option<Cursor>,
}

fn any_of(col: impl ColumnTrait, p: &AnyOf) -> Condition {
    let inside = Condition::all().add(col.is_in(p.values.iter().cloned()));
    if p.negate { inside.not() } else { inside }
}

impl Store {
    /// Slots matching `search`, sorted by start then id (`direction` for both), `limit` per page
    /// after `after`.
    pub async fn search_slots(
        &self,
        search: &SlotSearch,
        direction: Direction,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Page, StoreError> {
        let mut filter = Condition::all();
        for p in &search.ids {
            filter = filter.add(any_of(slot::Column::Id, p));
        }
        for p in &search.schedules {
            filter = filter.add(any_of(slot::Column::Schedule, p));
        }
        for p in &search.statuses {
            filter = filter.add(any_of(slot::Column::Status, p));
        }
        for b in &search.start {
            filter = filter.add(b.condition(slot::Column::StartMs));
        }
        for b in &search.end {
            filter = filter.add(b.condition(slot::Column::EndMs));
        }
        for f in &search.index {
            filter = filter.add(index_condition("Slot", slot::Column::Id, f));
        }
        let total = slot::Entity::find().filter(filter.clone()).count(&self.db).await?;
        let mut page = slot::Entity::find().filter(filter);
        let descending = direction == Direction::Descending;
        if let Some(Cursor::Slot(start, id)) = after {
            let (past_start, past_id) = if descending {
                (slot::Column::StartMs.lt(*start), slot::Column::Id.lt(id.clone()))
            } else {
                (slot::Column::StartMs.gt(*start), slot::Column::Id.gt(id.clone()))
            };
            let same_start_past_id = Condition::all().add(slot::Column::StartMs.eq(*start)).add(past_id);
            page = page.filter(Condition::any().add(past_start).add(same_start_past_id));
        }
        let order = if descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
        let rows = page
            .order_by(slot::Column::StartMs, order.clone())
            .order_by(slot::Column::Id, order)
            .limit(limit + 1)
            .all(&self.db)
            .await?;
        let next = (rows.len() as u64 > limit).then(|| {
            let last = &rows[limit as usize - 1];
            Cursor::Slot(last.start_ms, last.id.clone())
        });
        let ids: Vec<String> = rows.iter().take(limit as usize).map(|r| r.id.clone()).collect();
        let resources = self.current_by_ids("Slot", &ids).await?;
        Ok(Page { resources, total, next })
    }

    /// Live resources of a type, optionally only these ids, matching the index filters and last updated inside `updated`,
    /// sorted by id (`direction`), `limit` per page.
    pub async fn search_resources(
        &self,
        resource_type: &str,
        search: &ResourceSearch,
        direction: Direction,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Page, StoreError> {
        let mut filter = Condition::all()
            .add(resource::Column::ResourceType.eq(resource_type))
            .add(resource::Column::Deleted.eq(false));
        for p in &search.ids {
            filter = filter.add(any_of(resource::Column::Id, p));
        }
        for b in &search.updated {
            filter = filter.add(b.condition(resource::Column::LastUpdated));
        }
        for f in &search.index {
            filter = filter.add(index_condition(resource_type, resource::Column::Id, f));
        }
        let total = resource::Entity::find().filter(filter.clone()).count(&self.db).await?;
        let mut page = resource::Entity::find().filter(filter);
        let descending = direction == Direction::Descending;
        if let Some(Cursor::Id(id)) = after {
            page = page.filter(if descending {
                resource::Column::Id.lt(id.clone())
            } else {
                resource::Column::Id.gt(id.clone())
            });
        }
        let order = if descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
        let rows = page.order_by(resource::Column::Id, order).limit(limit + 1).all(&self.db).await?;
        let next = (rows.len() as u64 > limit).then(|| Cursor::Id(rows[limit as usize - 1].id.clone()));
        let resources = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| stored(r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, &r.content))
            .collect::<Result<_, _>>()?;
        Ok(Page { resources, total, next })
    }

    /// Current versions of `ids`, in the order given (one query).
    async fn current_by_ids(&self, resource_type: &str, ids: &[String]) -> Result<Vec<StoredResource>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = resource::Entity::find()
            .filter(resource::Column::ResourceType.eq(resource_type))
            .filter(resource::Column::Id.is_in(ids.iter().cloned()))
            .all(&self.db)
            .await?;
        let mut by_id: std::collections::HashMap<String, resource::Model> =
            rows.into_iter().map(|r| (r.id.clone(), r)).collect();
        ids.iter()
            .filter_map(|id| by_id.remove(id))
            .map(|r| stored(r.resource_type, r.id, r.version_id, r.last_updated, r.deleted, &r.content))
            .collect()
    }
}

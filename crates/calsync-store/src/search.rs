//! Searches the facade can ask for. The store knows columns, not FHIR parameters: the facade
//! turns `start=ge2026-12-07` into a [`Bound`] on the Slot start column.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Query, SelectStatement};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait};

use crate::entity::{date_index, resource, search_index};
use crate::reader::{ResourceRow, SlotPageRow};
use crate::{RESOURCE_COLUMNS, Store, StoreError, StoredResource, StoredText, from_millis, stored};

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

/// How a date search value compares with a range of time (FHIR date prefixes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrefix {
    /// The value's range contains the target's.
    Eq,
    /// Not `Eq`.
    Ne,
    /// The target reaches past the value's range.
    Gt,
    /// The target starts before the value's range.
    Lt,
    /// `Gt` or `Eq`.
    Ge,
    /// `Lt` or `Eq`.
    Le,
    /// The target starts after the value's range.
    Sa,
    /// The target ends before the value's range.
    Eb,
    /// The target overlaps the (already widened) value range.
    Ap,
}

/// A date parameter over ranges of time in the date index: `[lo, hi)` is the search value's
/// range (for `ap`, already widened by its tolerance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFilter {
    /// Parameter name.
    pub param: String,
    /// Alternatives (comma = OR): prefix, lo, hi.
    pub any: Vec<(DatePrefix, i64, i64)>,
}

impl DateFilter {
    fn condition(&self, resource_type: &str, id_column: impl ColumnTrait) -> Condition {
        use date_index::Column::{HighMs, LowMs};
        let mut any = Condition::any();
        for &(prefix, lo, hi) in &self.any {
            let eq = || Condition::all().add(LowMs.gte(lo)).add(HighMs.lte(hi));
            any = any.add(match prefix {
                DatePrefix::Eq => eq(),
                DatePrefix::Ne => eq().not(),
                DatePrefix::Gt => Condition::all().add(HighMs.gt(hi)),
                DatePrefix::Lt => Condition::all().add(LowMs.lt(lo)),
                DatePrefix::Ge => Condition::any().add(HighMs.gt(hi)).add(eq()),
                DatePrefix::Le => Condition::any().add(LowMs.lt(lo)).add(eq()),
                DatePrefix::Sa => Condition::all().add(LowMs.gte(hi)),
                DatePrefix::Eb => Condition::all().add(HighMs.lte(lo)),
                DatePrefix::Ap => Condition::all().add(LowMs.lt(hi)).add(HighMs.gt(lo)),
            });
        }
        let ids = Query::select()
            .column(date_index::Column::Id)
            .from(date_index::Entity)
            .cond_where(
                Condition::all()
                    .add(date_index::Column::ResourceType.eq(resource_type))
                    .add(date_index::Column::Param.eq(self.param.clone()))
                    .add(any),
            )
            .to_owned();
        Condition::all().add(id_column.in_subquery(ids))
    }
}

impl IndexFilter {
    /// Has one of `values` exactly (tokens without system, references as `Type/id`).
    pub fn any_exact(param: &str, values: impl IntoIterator<Item = String>) -> Self {
        let terms = values.into_iter().map(|v| IndexTerm { system: None, value: Some(v), how: Match::Exact }).collect();
        IndexFilter::Matches { param: param.to_string(), terms, negate: false }
    }
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
        // Exact values in any system are one `IN` list: an `OR` of each made an expression tree
        // SQLite refuses past a depth of 1,000 (a page of 500 Slots with the Appointments naming
        // them, every Location of an organization).
        let (plain, others): (Vec<&IndexTerm>, Vec<&IndexTerm>) =
            terms.iter().partition(|t| t.system.is_none() && t.value.is_some() && t.how == Match::Exact);
        if !plain.is_empty() {
            any = any.add(search_index::Column::Value.is_in(plain.iter().filter_map(|t| t.value.clone())));
        }
        for t in others {
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
    /// Date parameters.
    pub dates: Vec<DateFilter>,
    /// Set for a person's search of Schedules: see [`Participants`].
    pub participants: Option<Participants>,
}

/// Whose derived Schedules a search may return (and their Slots): those whose actors include a
/// Patient or RelatedPerson other than these are left out. Provider Schedules are not affected.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Participants(pub Vec<String>);

impl Participants {
    /// Ids of the Schedules left out.
    fn hidden_schedules(&self) -> SelectStatement {
        let person = Condition::any()
            .add(search_index::Column::Value.like(LikeExpr::new("Patient/%")))
            .add(search_index::Column::Value.like(LikeExpr::new("RelatedPerson/%")));
        let mut cond = Condition::all()
            .add(search_index::Column::ResourceType.eq("Schedule"))
            .add(search_index::Column::Param.eq("actor"))
            .add(person);
        if !self.0.is_empty() {
            cond = cond.add(search_index::Column::Value.is_not_in(self.0.iter().cloned()));
        }
        Query::select().column(search_index::Column::Id).from(search_index::Entity).cond_where(cond).to_owned()
    }

    /// Keeps Schedules (`id` their id) that are not hidden.
    fn schedules(&self, id: impl ColumnTrait) -> Condition {
        Condition::all().add(id.not_in_subquery(self.hidden_schedules()))
    }

    /// Keeps Slots whose Schedule (`schedule`: `Schedule/{id}`) is not hidden.
    fn slots(&self, schedule: impl ColumnTrait) -> Condition {
        let hidden = Query::select()
            .expr(Expr::cust("'Schedule/' || id"))
            .from_subquery(self.hidden_schedules(), sea_orm::sea_query::Alias::new("hidden"))
            .to_owned();
        Condition::all().add(schedule.not_in_subquery(hidden))
    }
}

/// A Slot search over the Slots' range columns. Every field is ANDed; each `Vec` entry is one
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
    /// `_lastUpdated`.
    pub updated: Vec<Bound>,
    /// Set for a person's search: see [`Participants`].
    pub participants: Option<Participants>,
}

/// Where a page starts: after this sort key, in the order of the search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// After a Slot with this start and id (Slots are sorted by start, then id).
    Slot(i64, String),
    /// After this id (other types sorted by id).
    Id(String),
    /// After a resource last updated at this time with this id (sorted by `_lastUpdated`).
    Updated(i64, String),
}

/// What a search of types other than Slot is sorted by (then by id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// The logical id.
    #[default]
    Id,
    /// `meta.lastUpdated`.
    LastUpdated,
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
pub struct Page<R = StoredResource> {
    /// Matches in order.
    pub resources: Vec<R>,
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
        let page = self.search_slot_texts(search, direction, after, limit).await?;
        let resources = page.resources.into_iter().map(StoredText::parse).collect::<Result<_, _>>()?;
        Ok(Page { resources, total: page.total, next: page.next })
    }

    /// [`Store::search_slots`] with each Slot as the JSON text the store holds, for answers that
    /// pass resources through without parsing them (the Slot search is the hot path).
    pub async fn search_slot_texts(
        &self,
        search: &SlotSearch,
        direction: Direction,
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Page<StoredText>, StoreError> {
        // Only a live Slot's row has a start (and the partial range indexes need the term). The
        // type is named only for a search by id, whose ids the primary key then finds: named
        // always, it made SQLite walk every Slot by the primary key rather than a range index.
        let mut filter = Condition::all().add(resource::Column::StartMs.is_not_null());
        if search.ids.iter().any(|p| !p.negate) {
            filter = filter.add(resource::Column::ResourceType.eq("Slot"));
        }
        for p in &search.ids {
            filter = filter.add(any_of(resource::Column::Id, p));
        }
        for p in &search.schedules {
            filter = filter.add(any_of(resource::Column::Schedule, p));
        }
        for p in &search.statuses {
            filter = filter.add(any_of(resource::Column::Status, p));
        }
        for b in &search.start {
            filter = filter.add(b.condition(resource::Column::StartMs));
        }
        for b in &search.end {
            filter = filter.add(b.condition(resource::Column::EndMs));
        }
        for f in &search.index {
            filter = filter.add(index_condition("Slot", resource::Column::Id, f));
        }
        for b in &search.updated {
            filter = filter.add(b.condition(resource::Column::LastUpdated));
        }
        if let Some(p) = &search.participants {
            filter = filter.add(p.slots(resource::Column::Schedule));
        }
        let count = Query::select()
            .expr(Expr::col(resource::Column::Id).count())
            .from(resource::Entity)
            .cond_where(filter.clone())
            .to_owned();
        let descending = direction == Direction::Descending;
        if let Some(Cursor::Slot(start, id)) = after {
            // A row value, `(start, id) > (…, …)`: both databases seek the index to it, where the
            // equivalent `start > … OR (start = … AND id > …)` made SQLite walk every row before
            // the cursor again on each page (measured on the weekly `$bulk-publish` files).
            let key = Expr::tuple([Expr::col(resource::Column::StartMs), Expr::col(resource::Column::Id)]);
            let cursor = Expr::tuple([Expr::value(*start), Expr::value(id.clone())]);
            filter = filter.add(if descending { key.lt(cursor) } else { key.gt(cursor) });
        }
        let order = if descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
        let page = Query::select()
            .columns([resource::Column::Id, resource::Column::StartMs, resource::Column::VersionId])
            .columns([resource::Column::LastUpdated, resource::Column::Content, resource::Column::SyncedMs])
            .from(resource::Entity)
            .cond_where(filter)
            .order_by(resource::Column::StartMs, order.clone())
            .order_by(resource::Column::Id, order)
            .limit(limit + 1)
            .to_owned();
        // Confined to named Schedules, the query reads a bounded range of the covering index:
        // on SQLite it runs on the calling thread rather than a blocking one.
        let bounded = search.schedules.iter().any(|s| !s.negate && s.values.len() <= 16);
        let (total, rows) = self.select::<SlotPageRow>(Some(&count), &page, bounded).await?;
        let next = (rows.len() as u64 > limit).then(|| {
            let (id, start, ..) = &rows[limit as usize - 1];
            Cursor::Slot(*start, id.clone())
        });
        let kept_apart = rows.iter().filter(|r| r.5.is_some()).map(|r| r.0.as_str());
        let bases = self.origins.bases(&self.db, kept_apart).await?;
        let resources = rows
            .into_iter()
            .take(limit as usize)
            .map(|(id, _, version, updated, json, synced)| StoredText {
                resource_type: "Slot".into(),
                json: crate::origin::spliced(json, &id, synced, &bases),
                id,
                version_id: version,
                last_updated: from_millis(updated),
            })
            .collect();
        Ok(Page { resources, total: total as u64, next })
    }

    /// Live resources of a type matching `search`, sorted by `sort` then id (`direction` for both),
    /// `limit` per page after `after`.
    pub async fn search_resources(
        &self,
        resource_type: &str,
        search: &ResourceSearch,
        order: (SortBy, Direction),
        after: Option<&Cursor>,
        limit: u64,
    ) -> Result<Page, StoreError> {
        self.resources_page(resource_type, search, order, after, limit, true).await
    }

    /// When a resource of one of `types` was last written (created, changed or deleted): one
    /// index lookup per type.
    pub async fn last_write(&self, types: &[&str]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let mut latest = None;
        for t in types {
            let at: Option<Option<i64>> = resource::Entity::find()
                .select_only()
                .column_as(resource::Column::LastUpdated.max(), "latest")
                .filter(resource::Column::ResourceType.eq(*t))
                .into_tuple()
                .one(&self.db)
                .await?;
            latest = Ord::max(latest, at.flatten());
        }
        Ok(latest.map(from_millis))
    }

    /// Streams the live Slots starting in `[from, to)` (changed at or after `since`, if given):
    /// `write` appends what it makes of each (its JSON text) to a buffer, sent on the returned
    /// channel in chunks of about [`STREAM_CHUNK`] bytes. At most a few chunks wait on the
    /// channel: memory does not grow with the Slots.
    ///
    /// On SQLite each half of the range is one statement on a read connection in a blocking
    /// thread (one snapshot per half), rows straight from the cursor into the buffer (a page at a
    /// time through a search cost a lookup of 2,000 ids per page: docs/benchmarks-log.md); the
    /// halves' chunks interleave, so the order is by id within each chunk only. A slow client
    /// holds those snapshots, and so holds back the WAL's checkpoint, until its file is read.
    /// Elsewhere, pages of [`STREAM_PAGE`] by an id cursor, in id order.
    pub fn stream_slots_by_start<W>(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        since: Option<DateTime<Utc>>,
        write: W,
    ) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, StoreError>>
    where
        W: FnMut(&str, &mut Vec<u8>) + Clone + Send + 'static,
    {
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_DEPTH);
        let range = (from.timestamp_millis(), to.timestamp_millis(), since.map_or(i64::MIN, |t| t.timestamp_millis()));
        let (db, origins, reader) = (self.db.clone(), self.origins.clone(), self.sqlite_reader.clone());
        tokio::spawn(async move {
            // Every publisher's origin, read once for the stream: Slots stored without theirs get
            // it back (`crate::origin`).
            let bases = match origins.read_all(&db).await {
                Ok(bases) => bases,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            match reader {
                Some(reader) => {
                    // Each half of the range on its own thread and connection: the lookups of the
                    // resources are the cost, and two cores do twice as many. Chunks hold whole
                    // lines, so the halves' chunks interleave on the channel.
                    let middle = range.0 + (range.1 - range.0) / 2;
                    for half in [(range.0, middle, range.2), (middle, range.1, range.2)] {
                        let (reader, tx, write, bases) = (reader.clone(), tx.clone(), write.clone(), bases.clone());
                        tokio::task::spawn_blocking(move || {
                            if let Err(e) = stream_sqlite(&reader, half, &bases, &tx, write) {
                                let _ = tx.blocking_send(Err(e));
                            }
                        });
                    }
                }
                None => {
                    if let Err(e) = stream_paged(&db, range, &bases, &tx, write).await {
                        let _ = tx.send(Err(e)).await;
                    }
                }
            }
        });
        rx
    }

    /// The first `limit` live resources of a type matching `search`, in id order, without
    /// counting all matches: lookups the server makes for itself.
    pub async fn find_resources(
        &self,
        resource_type: &str,
        search: &ResourceSearch,
        limit: u64,
    ) -> Result<Vec<StoredResource>, StoreError> {
        let order = (SortBy::Id, Direction::Ascending);
        Ok(self.resources_page(resource_type, search, order, None, limit, false).await?.resources)
    }

    async fn resources_page(
        &self,
        resource_type: &str,
        search: &ResourceSearch,
        (sort, direction): (SortBy, Direction),
        after: Option<&Cursor>,
        limit: u64,
        count_all: bool,
    ) -> Result<Page, StoreError> {
        let mut filter = Condition::all()
            .add(resource::Column::ResourceType.eq(resource_type))
            .add(resource::Column::Deleted.eq(false));
        for p in &search.ids {
            filter = filter.add(any_of(resource::Column::Id, p));
        }
        if let Some(p) = search.participants.as_ref().filter(|_| resource_type == "Schedule") {
            filter = filter.add(p.schedules(resource::Column::Id));
        }
        for b in &search.updated {
            filter = filter.add(b.condition(resource::Column::LastUpdated));
        }
        for f in &search.index {
            filter = filter.add(index_condition(resource_type, resource::Column::Id, f));
        }
        for d in &search.dates {
            filter = filter.add(d.condition(resource_type, resource::Column::Id));
        }
        let count = Query::select()
            .expr(Expr::col(resource::Column::Id).count())
            .from(resource::Entity)
            .cond_where(filter.clone())
            .to_owned();
        let mut page = resource::Entity::find().filter(filter);
        let descending = direction == Direction::Descending;
        let past = |col: resource::Column, v: sea_orm::Value| if descending { col.lt(v) } else { col.gt(v) };
        match (sort, after) {
            (_, None) => {}
            (SortBy::Id, Some(Cursor::Id(id))) => page = page.filter(past(resource::Column::Id, id.clone().into())),
            (SortBy::LastUpdated, Some(Cursor::Updated(at, id))) => {
                page = page.filter(
                    Condition::any().add(past(resource::Column::LastUpdated, (*at).into())).add(
                        Condition::all()
                            .add(resource::Column::LastUpdated.eq(*at))
                            .add(past(resource::Column::Id, id.clone().into())),
                    ),
                );
            }
            (_, Some(_)) => return Err(StoreError::Invalid("the page cursor belongs to another sort order".into())),
        }
        let order = if descending { sea_orm::Order::Desc } else { sea_orm::Order::Asc };
        if sort == SortBy::LastUpdated {
            page = page.order_by(resource::Column::LastUpdated, order.clone());
        }
        let page = page.order_by(resource::Column::Id, order).limit(limit + 1);
        let stmt = page.select_only().columns(RESOURCE_COLUMNS).into_query();
        let (total, rows) = self.select::<ResourceRow>(count_all.then_some(&count), &stmt, false).await?;
        let next = (rows.len() as u64 > limit).then(|| {
            let (_, id, _, updated, ..) = &rows[limit as usize - 1];
            match sort {
                SortBy::Id => Cursor::Id(id.clone()),
                SortBy::LastUpdated => Cursor::Updated(*updated, id.clone()),
            }
        });
        let kept_apart = rows.iter().filter(|r| r.6.is_some()).map(|r| r.1.as_str());
        let bases = self.origins.bases(&self.db, kept_apart).await?;
        let resources = rows
            .into_iter()
            .take(limit as usize)
            .map(|(t, id, version, updated, deleted, content, synced)| {
                let content = crate::origin::splice(&content, &id, synced, &bases);
                stored(t, id, version, updated, deleted, &content)
            })
            .collect::<Result<_, _>>()?;
        Ok(Page { resources, total: total as u64, next })
    }
}

/// Bytes per chunk of a [`Store::stream_slots_by_start`] stream.
pub const STREAM_CHUNK: usize = 256 * 1024;

/// Chunks that may wait on the channel of a stream.
const STREAM_DEPTH: usize = 4;

/// Rows per page of a stream read a page at a time (PostgreSQL).
pub const STREAM_PAGE: i64 = 2_000;

/// The rows' keys from `slot_start_id` (which covers them), sorted by rowid, drive the reads of
/// the rows (`CROSS JOIN` fixes the order in SQLite): rows written together sit together, and
/// reads in storage order find their pages cached more often than in start order (measured with
/// ids as the key: a fifth less time per file; docs/benchmarks-log.md).
const SLOTS_BY_START_SQLITE: &str = "SELECT r.content, r.id, r.synced_ms FROM \
     (SELECT rowid AS k FROM resource WHERE start_ms >= ?1 AND start_ms < ?2 ORDER BY k LIMIT -1) AS s \
     CROSS JOIN resource AS r WHERE r.rowid = s.k AND r.last_updated >= ?3";

/// One page of the stream by an id cursor (PostgreSQL).
const SLOTS_BY_START_PAGE: &str = "SELECT id, content, synced_ms FROM resource \
     WHERE start_ms >= $1 AND start_ms < $2 AND last_updated >= $3 AND id > $4 ORDER BY id LIMIT $5";

/// The lines of a [`Store::stream_slots_by_start`] stream, cut into chunks.
struct SlotLines<W> {
    write: W,
    buffer: Vec<u8>,
}

impl<W: FnMut(&str, &mut Vec<u8>)> SlotLines<W> {
    fn new(write: W) -> Self {
        SlotLines { write, buffer: Vec::with_capacity(STREAM_CHUNK + 4096) }
    }

    /// Takes one Slot (its JSON as stored, its id, the instant of its origin when that is kept
    /// apart); a full chunk when there is one to send.
    fn row(&mut self, json: &str, id: &str, synced_ms: Option<i64>, bases: &crate::origin::Bases) -> Option<Vec<u8>> {
        (self.write)(&crate::origin::splice(json, id, synced_ms, bases), &mut self.buffer);
        (self.buffer.len() >= STREAM_CHUNK)
            .then(|| std::mem::replace(&mut self.buffer, Vec::with_capacity(STREAM_CHUNK + 4096)))
    }

    /// What is left once every row was taken.
    fn rest(self) -> Option<Vec<u8>> {
        (!self.buffer.is_empty()).then_some(self.buffer)
    }
}

type StreamSender = tokio::sync::mpsc::Sender<Result<Vec<u8>, StoreError>>;

/// The stream off SQLite, on a blocking thread.
fn stream_sqlite<W: FnMut(&str, &mut Vec<u8>)>(
    reader: &crate::reader::SqliteReader,
    range: (i64, i64, i64),
    bases: &crate::origin::Bases,
    tx: &StreamSender,
    write: W,
) -> Result<(), StoreError> {
    let mut lines = SlotLines::new(write);
    let complete = reader.each_row(SLOTS_BY_START_SQLITE, rusqlite::params![range.0, range.1, range.2], |r| {
        Ok(match lines.row(r.get_ref(0)?.as_str()?, r.get_ref(1)?.as_str()?, r.get(2)?, bases) {
            Some(chunk) => tx.blocking_send(Ok(chunk)).is_ok(),
            None => true,
        })
    })?;
    if complete && let Some(rest) = lines.rest() {
        let _ = tx.blocking_send(Ok(rest));
    }
    Ok(())
}

/// The stream a page at a time (PostgreSQL).
async fn stream_paged<W: FnMut(&str, &mut Vec<u8>)>(
    db: &sea_orm::DatabaseConnection,
    range: (i64, i64, i64),
    bases: &crate::origin::Bases,
    tx: &StreamSender,
    write: W,
) -> Result<(), StoreError> {
    use sea_orm::ConnectionTrait;
    let mut lines = SlotLines::new(write);
    let mut after = String::new();
    loop {
        let statement = sea_orm::Statement::from_sql_and_values(
            db.get_database_backend(),
            SLOTS_BY_START_PAGE,
            [range.0.into(), range.1.into(), range.2.into(), after.clone().into(), STREAM_PAGE.into()],
        );
        let rows = db.query_all_raw(statement).await?;
        for row in &rows {
            let (id, json): (String, String) = (row.try_get_by_index(0)?, row.try_get_by_index(1)?);
            if let Some(chunk) = lines.row(&json, &id, row.try_get_by_index(2)?, bases)
                && tx.send(Ok(chunk)).await.is_err()
            {
                return Ok(());
            }
            after = id;
        }
        if (rows.len() as i64) < STREAM_PAGE {
            break;
        }
    }
    if let Some(rest) = lines.rest() {
        let _ = tx.send(Ok(rest)).await;
    }
    Ok(())
}

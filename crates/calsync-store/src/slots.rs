//! Slots as the matching core reads them: the range columns of a live Slot's row, the free Slots
//! of a window, participants' busy windows (remembered per Schedule by its generation), and
//! `slot_generation`, a change counter per Schedule bumped in the transaction of every Slot write,
//! with the longest free Slot the Schedule has had.

use calsync_core::SlotStatus;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;

use crate::entity::{resource, slot_generation};
use crate::{Store, StoreError, entity, from_millis, millis};

/// What range queries read of a live Slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    /// `Slot` id.
    pub id: String,
    /// `Schedule/{id}`.
    pub schedule: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// `Slot.status`.
    pub status: String,
}

/// A live Slot's range columns as read: id, schedule, start, end, status.
type SlotColumns = (String, String, i64, i64, String);

impl From<SlotColumns> for SlotRow {
    fn from((id, schedule, start, end, status): SlotColumns) -> Self {
        SlotRow { id, schedule, start: from_millis(start), end: from_millis(end), status }
    }
}

/// When a Slot is, and its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotWindow {
    /// Its Schedule, as an index into the Schedules asked for.
    pub schedule: usize,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// `Slot.status`; none for a code FHIR does not know.
    pub status: Option<SlotStatus>,
}

/// A remembered Slot: start and end (UTC milliseconds) and status.
type CachedWindow = (i64, i64, Option<SlotStatus>);

/// Schedule → (generation, its Slots).
pub(crate) type WindowCache = std::collections::HashMap<String, (i64, Arc<[CachedWindow]>)>;

/// How many Schedules' windows are remembered at most (then the memory starts over).
const WINDOW_CACHE_SCHEDULES: usize = 20_000;

impl Store {
    /// Free Slots overlapping `[from, to)`, of the given Schedules (`Schedule/{id}`) or of all,
    /// in start order: what a search for mutual times walks.
    pub async fn free_slots(
        &self,
        schedules: Option<&[String]>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotRow>, StoreError> {
        use sea_orm::sea_query::Query;
        if schedules.is_some_and(<[String]>::is_empty) {
            return Ok(Vec::new());
        }
        // A free Slot overlapping the window starts no earlier than the window less the longest
        // free Slot of its Schedule: a bounded range of `slot_start_id` (or of each Schedule's
        // `slot_schedule_range`), where `start < to` alone reads every Slot before the window.
        let mut longest = Query::select()
            .expr(Expr::cust("CAST(COALESCE(MAX(longest_free_ms), 0) AS BIGINT)"))
            .from(slot_generation::Entity)
            .to_owned();
        if let Some(list) = schedules {
            longest.and_where(slot_generation::Column::Schedule.is_in(list.iter().cloned()));
        }
        let (_, found) = self.select::<(i64,)>(None, &longest, false).await?;
        let longest = found.first().map_or(0, |(l,)| *l);
        let filter = sea_orm::Condition::all()
            .add(resource::Column::Status.eq("free"))
            .add(resource::Column::StartMs.gte(millis(from).saturating_sub(longest)));
        let filter = match schedules {
            Some(list) => filter.add(resource::Column::Schedule.is_in(list.iter().cloned())),
            None => filter,
        };
        self.slot_rows(filter, from, to).await
    }

    /// The times and statuses of the Slots of `schedules` (`Schedule/{id}`) overlapping
    /// `[from, to)`: what participants' busy time is made of (no ids, nothing else). Each window
    /// names its Schedule by its index in `schedules`.
    ///
    /// Every Slot of an asked Schedule is remembered with the Schedule's generation (bumped in
    /// the transaction of each Slot write, by any process); a later call reads only the
    /// generations and reloads the Schedules that changed. The generations are read before the
    /// Slots, so a write racing with a reload makes the next call reload again, never keeps stale
    /// windows.
    pub async fn slot_windows(
        &self,
        schedules: &[String],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotWindow>, StoreError> {
        use sea_orm::sea_query::Query;
        if schedules.is_empty() {
            return Ok(Vec::new());
        }
        let generations = Query::select()
            .columns([slot_generation::Column::Schedule, slot_generation::Column::Generation])
            .from(slot_generation::Entity)
            .cond_where(slot_generation::Column::Schedule.is_in(schedules.iter().cloned()))
            .to_owned();
        let (_, current) = self.select::<(String, i64)>(None, &generations, false).await?;
        let generation_of = |s: &str| current.iter().find(|(k, _)| k == s).map_or(0, |(_, g)| *g);
        let mut known: Vec<Option<Arc<[CachedWindow]>>> = {
            let cache = self.windows.lock().map_err(|_| StoreError::Invalid("window cache poisoned".into()))?;
            schedules
                .iter()
                .map(|s| cache.get(s).filter(|(g, _)| *g == generation_of(s)).map(|(_, w)| w.clone()))
                .collect()
        };
        let missing: Vec<String> =
            schedules.iter().zip(&known).filter(|(_, k)| k.is_none()).map(|(s, _)| s.clone()).collect();
        if !missing.is_empty() {
            let loaded = self.all_windows(&missing).await?;
            let mut cache = self.windows.lock().map_err(|_| StoreError::Invalid("window cache poisoned".into()))?;
            if cache.len() + missing.len() > WINDOW_CACHE_SCHEDULES {
                cache.clear();
            }
            for (schedule, windows) in missing.iter().zip(loaded) {
                let windows: Arc<[CachedWindow]> = windows.into();
                cache.insert(schedule.clone(), (generation_of(schedule), windows.clone()));
                if let Some(n) = schedules.iter().position(|s| s == schedule) {
                    known[n] = Some(windows);
                }
            }
        }
        let (from, to) = (millis(from), millis(to));
        Ok(known
            .iter()
            .enumerate()
            .flat_map(|(n, windows)| {
                windows.iter().flat_map(|w| w.iter()).filter(move |w| w.0 < to && w.1 > from).map(move |w| SlotWindow {
                    schedule: n,
                    start: from_millis(w.0),
                    end: from_millis(w.1),
                    status: w.2,
                })
            })
            .collect())
    }

    /// Every Slot window of each of `schedules`, in that order.
    async fn all_windows(&self, schedules: &[String]) -> Result<Vec<Vec<CachedWindow>>, StoreError> {
        use sea_orm::sea_query::Query;
        let stmt = Query::select()
            .columns([
                resource::Column::StartMs,
                resource::Column::EndMs,
                resource::Column::Status,
                resource::Column::Schedule,
            ])
            .from(resource::Entity)
            .cond_where(resource::Column::Schedule.is_in(schedules.iter().cloned()))
            .to_owned();
        let (_, rows) = self.select::<(i64, i64, String, String)>(None, &stmt, false).await?;
        let mut out = vec![Vec::new(); schedules.len()];
        for (start, end, status, schedule) in rows {
            let status = status.parse::<SlotStatus>().ok();
            if let Some(list) = schedules.iter().position(|s| *s == schedule).and_then(|n| out.get_mut(n)) {
                list.push((start, end, status));
            }
        }
        Ok(out)
    }

    /// Live Slots overlapping `[from, to)`, of one Schedule if given, in start order.
    pub async fn slots_overlapping(
        &self,
        schedule: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotRow>, StoreError> {
        let filter = sea_orm::Condition::all();
        let filter = match schedule {
            Some(s) => filter.add(resource::Column::Schedule.eq(s)),
            None => filter,
        };
        self.slot_rows(filter, from, to).await
    }

    /// Slot rows matching `filter` and overlapping `[from, to)`, in start order. On SQLite they
    /// are read through the rusqlite pool like the Slot search page.
    async fn slot_rows(
        &self,
        filter: sea_orm::Condition,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<SlotRow>, StoreError> {
        let stmt = sea_orm::sea_query::Query::select()
            .columns([resource::Column::Id, resource::Column::Schedule, resource::Column::StartMs])
            .columns([resource::Column::EndMs, resource::Column::Status])
            .from(resource::Entity)
            .cond_where(
                filter.add(resource::Column::StartMs.lt(millis(to))).add(resource::Column::EndMs.gt(millis(from))),
            )
            // The order of the covering index (schedule, start, end, status, id): one Schedule's
            // rows come out sorted, without a sort step.
            .order_by(resource::Column::StartMs, sea_orm::Order::Asc)
            .order_by(resource::Column::EndMs, sea_orm::Order::Asc)
            .order_by(resource::Column::Status, sea_orm::Order::Asc)
            .order_by(resource::Column::Id, sea_orm::Order::Asc)
            .to_owned();
        let (_, rows) = self.select::<SlotColumns>(None, &stmt, false).await?;
        Ok(rows.into_iter().map(SlotRow::from).collect())
    }

    /// The sum of every Schedule's Slot generation: it moves with every Slot write (a version
    /// tag for published availability).
    pub async fn slot_generations_total(&self) -> Result<i64, StoreError> {
        // PostgreSQL sums a bigint as numeric: cast back.
        let total: Option<i64> = entity::slot_generation::Entity::find()
            .select_only()
            .column_as(Expr::cust("CAST(COALESCE(SUM(generation), 0) AS BIGINT)"), "total")
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(total.unwrap_or(0))
    }
}

pub(crate) async fn slots_overlapping<C: ConnectionTrait>(
    db: &C,
    schedule: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<SlotRow>, StoreError> {
    let mut q = resource::Entity::find()
        .select_only()
        .columns([resource::Column::Id, resource::Column::Schedule, resource::Column::StartMs])
        .columns([resource::Column::EndMs, resource::Column::Status])
        .filter(resource::Column::StartMs.lt(millis(to)))
        .filter(resource::Column::EndMs.gt(millis(from)));
    if let Some(s) = schedule {
        q = q.filter(resource::Column::Schedule.eq(s));
    }
    Ok(q.order_by_asc(resource::Column::StartMs)
        .order_by_asc(resource::Column::Id)
        .into_tuple::<SlotColumns>()
        .all(db)
        .await?
        .into_iter()
        .map(SlotRow::from)
        .collect())
}

/// The range columns of a resource's row: set for a live Slot, none for anything else.
#[derive(Debug, Default, Clone)]
pub(crate) struct SlotRange {
    pub(crate) schedule: Option<String>,
    pub(crate) start_ms: Option<i64>,
    pub(crate) end_ms: Option<i64>,
    pub(crate) status: Option<String>,
}

impl SlotRange {
    /// How long the Slot is if it is free; 0 otherwise.
    pub(crate) fn free_length(&self) -> i64 {
        match (self.status.as_deref(), self.start_ms, self.end_ms) {
            (Some("free"), Some(start), Some(end)) => Ord::max(end - start, 0),
            _ => 0,
        }
    }

    pub(crate) fn of(resource_type: &str, deleted: bool, content: &Value) -> Result<Self, StoreError> {
        if resource_type != "Slot" || deleted {
            return Ok(SlotRange::default());
        }
        let text = |name: &str| content.get(name).and_then(Value::as_str);
        let schedule = content.get("schedule").and_then(|s| s.get("reference")).and_then(Value::as_str);
        SlotRange::live(schedule, text("start"), text("end"), text("status"))
    }

    /// [`SlotRange::of`] a live Slot given as its members, each as JSON.
    pub(crate) fn of_members(members: &[(&str, std::borrow::Cow<'_, RawValue>)]) -> Result<Self, StoreError> {
        let member = |name: &str| members.iter().find(|(n, _)| *n == name).map(|(_, json)| json.get());
        let text =
            |name: &str| member(name).and_then(|json| serde_json::from_str::<std::borrow::Cow<'_, str>>(json).ok());
        let schedule: Option<Value> = member("schedule").and_then(|json| serde_json::from_str(json).ok());
        let reference = schedule.as_ref().and_then(|s| s.get("reference")).and_then(Value::as_str);
        SlotRange::live(reference, text("start").as_deref(), text("end").as_deref(), text("status").as_deref())
    }

    /// What a live Slot's row keeps for range queries: schedule reference, start and end (UTC
    /// milliseconds), status; or why the Slot cannot be stored.
    fn live(
        schedule: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        status: Option<&str>,
    ) -> Result<Self, StoreError> {
        let instant = |name: &str, raw: Option<&str>| -> Result<i64, StoreError> {
            let raw = raw.ok_or_else(|| StoreError::Invalid(format!("Slot.{name} is required")))?;
            DateTime::parse_from_rfc3339(raw)
                .map(|t| t.timestamp_millis())
                .map_err(|_| StoreError::Invalid(format!("Slot.{name} {raw:?} is not an instant")))
        };
        let schedule = schedule.ok_or_else(|| StoreError::Invalid("Slot.schedule.reference is required".into()))?;
        let status = status.ok_or_else(|| StoreError::Invalid("Slot.status is required".into()))?;
        Ok(SlotRange {
            schedule: Some(schedule.to_string()),
            start_ms: Some(instant("start", start)?),
            end_ms: Some(instant("end", end)?),
            status: Some(status.to_string()),
        })
    }
}

/// The Schedules whose Slots a transaction changes, each with the longest free Slot it wrote (0
/// for none): what `slot_generation` records as the transaction ends ([`bump_generations`]).
#[derive(Debug, Default)]
pub(crate) struct Touched(std::collections::HashMap<String, i64>);

impl Touched {
    /// A Schedule whose Slots changed otherwise (a Slot left it, or was deleted).
    pub(crate) fn schedule(&mut self, schedule: &str) {
        if !self.0.contains_key(schedule) {
            self.0.insert(schedule.to_string(), 0);
        }
    }

    /// A Slot written with `range` (nothing for another resource).
    pub(crate) fn slot(&mut self, range: &SlotRange) {
        let Some(schedule) = &range.schedule else { return };
        let free = range.free_length();
        match self.0.get_mut(schedule) {
            Some(longest) => *longest = Ord::max(*longest, free),
            None => {
                self.0.insert(schedule.clone(), free);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Sorted by Schedule: transactions lock the Schedules they share in the same order, so one
    /// waits for the other and neither for both.
    pub(crate) fn sorted(self) -> Vec<(String, i64)> {
        let mut all: Vec<(String, i64)> = self.0.into_iter().collect();
        all.sort_unstable();
        all
    }
}

/// Records that the Slots of the `touched` Schedules changed (in the writing transaction): a new
/// generation each, and the longest free Slot each has had.
pub(crate) async fn bump_generations<C: ConnectionTrait>(txn: &C, touched: Touched) -> Result<(), StoreError> {
    if touched.is_empty() {
        return Ok(());
    }
    let rows = touched.sorted().into_iter().map(|(schedule, free)| slot_generation::ActiveModel {
        schedule: sea_orm::ActiveValue::Set(schedule),
        generation: sea_orm::ActiveValue::Set(1),
        longest_free_ms: sea_orm::ActiveValue::Set(free),
    });
    let next = Expr::col((slot_generation::Entity, slot_generation::Column::Generation)).add(1);
    let greatest = match txn.get_database_backend() {
        sea_orm::DbBackend::Postgres => "GREATEST",
        _ => "MAX",
    };
    let longest = Expr::cust(format!("{greatest}(slot_generation.longest_free_ms, excluded.longest_free_ms)"));
    slot_generation::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(slot_generation::Column::Schedule)
                .value(slot_generation::Column::Generation, next)
                .value(slot_generation::Column::LongestFreeMs, longest)
                .to_owned(),
        )
        .exec_without_returning(txn)
        .await?;
    Ok(())
}

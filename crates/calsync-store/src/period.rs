//! [`Store::schedules_by_period`]: which Schedules have Slots starting in which period (the
//! weekly files of `$bulk-publish` name the states of their Slots' Locations).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::ConnectionTrait;

use crate::{Store, StoreError, millis};

/// Schedules asked about in one statement at most.
const SCHEDULES_PER_STATEMENT: usize = 500;

/// How many Schedules' periods are remembered at most (then the memory starts over).
const CACHED_SCHEDULES: usize = 100_000;

/// Per Schedule, the periods its live Slots start in, as of its Slot generation, for one
/// division of time (first period's start, length, count).
#[derive(Debug, Default)]
pub(crate) struct PeriodCache {
    division: (i64, i64, i64),
    schedules: HashMap<String, (i64, Arc<[i64]>)>,
}

/// From each Schedule's first Slot at or after the start of time asked, hop to its first Slot of
/// a later period, one index seek per period that has a Slot: a Schedule of 200 Slots over
/// four weeks costs five seeks, not 200 rows. `{p}` stands for the placeholders of the
/// Schedules asked about.
const HOPS: &str = "WITH RECURSIVE hop (schedule, s) AS ( \
       SELECT g.schedule, (SELECT MIN(r.start_ms) FROM resource r \
         WHERE r.schedule = g.schedule AND r.start_ms >= {from}) \
       FROM slot_generation g WHERE g.schedule IN ({p}) \
     UNION ALL \
       SELECT h.schedule, (SELECT MIN(r.start_ms) FROM resource r \
         WHERE r.schedule = h.schedule AND r.start_ms >= {from} + ((h.s - {from}) / {period} + 1) * {period}) \
       FROM hop h WHERE h.s < {to} \
     ) \
     SELECT schedule, (s - {from}) / {period} FROM hop WHERE s < {to}";

impl Store {
    /// Which Schedules (`Schedule/{id}`), other than those in `except`, have a live Slot
    /// starting in which of `periods` periods of `period` from `from`: `(n, schedule)` for a
    /// Slot starting in `[from + n·period, from + (n+1)·period)`, each pair once, sorted.
    ///
    /// Each Schedule's periods are remembered with its Slot generation (bumped with each of its
    /// Slots' writes, by any process), so a call reads the generations and asks the database
    /// only about the Schedules whose Slots changed since (after a booking, one). Schedules in
    /// `except` (participants' derived ones, for the published feed) are neither asked about
    /// nor remembered.
    pub async fn schedules_by_period(
        &self,
        from: DateTime<Utc>,
        period: TimeDelta,
        periods: i64,
        except: &HashSet<String>,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let from = millis(from);
        let period = Ord::max(period.num_milliseconds(), 1);
        let division = (from, period, Ord::max(periods, 0));
        let mut generations = self.all_slot_generations().await?;
        generations.retain(|(s, _)| !except.contains(s));
        let poisoned = || StoreError::Invalid("period cache poisoned".into());
        let stale: Vec<String> = {
            let mut cache = self.periods.lock().map_err(|_| poisoned())?;
            if cache.division != division || cache.schedules.len() > CACHED_SCHEDULES {
                *cache = PeriodCache { division, schedules: HashMap::new() };
            }
            generations
                .iter()
                .filter(|(s, g)| cache.schedules.get(s).is_none_or(|(known, _)| known != g))
                .map(|(s, _)| s.clone())
                .collect()
        };
        let mut found: HashMap<String, Vec<i64>> = stale.iter().map(|s| (s.clone(), Vec::new())).collect();
        for chunk in stale.chunks(SCHEDULES_PER_STATEMENT) {
            for (schedule, n) in self.hops(division, chunk).await? {
                if let Some(list) = found.get_mut(&schedule) {
                    list.push(n);
                }
            }
        }
        let mut cache = self.periods.lock().map_err(|_| poisoned())?;
        let generation_of: HashMap<&str, i64> = generations.iter().map(|(s, g)| (s.as_str(), *g)).collect();
        for (schedule, mut list) in found {
            list.sort_unstable();
            let generation = generation_of.get(schedule.as_str()).copied().unwrap_or_default();
            cache.schedules.insert(schedule, (generation, list.into()));
        }
        let mut pairs: Vec<(i64, String)> = generations
            .iter()
            .filter_map(|(s, _)| cache.schedules.get(s).map(|(_, list)| (s, list)))
            .flat_map(|(s, list)| list.iter().map(move |n| (*n, s.clone())))
            .collect();
        pairs.sort_unstable();
        Ok(pairs)
    }

    /// Every Schedule's Slot generation.
    async fn all_slot_generations(&self) -> Result<Vec<(String, i64)>, StoreError> {
        use crate::entity::slot_generation;
        use sea_orm::sea_query::Query;
        let stmt = Query::select()
            .columns([slot_generation::Column::Schedule, slot_generation::Column::Generation])
            .from(slot_generation::Entity)
            .to_owned();
        Ok(self.select::<(String, i64)>(None, &stmt, false).await?.1)
    }

    /// `(schedule, n)` for each period `n` of `division` that one of `schedules` has a Slot
    /// starting in.
    async fn hops(
        &self,
        (from, period, periods): (i64, i64, i64),
        schedules: &[String],
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let to = from.saturating_add(period.saturating_mul(periods));
        let backend = self.db.get_database_backend();
        let placeholders: Vec<String> = (1..=schedules.len())
            .map(|i| if backend == sea_orm::DbBackend::Postgres { format!("${i}") } else { format!("?{i}") })
            .collect();
        // Only numbers are written into the text; the Schedules are bound.
        let sql = HOPS
            .replace("{from}", &from.to_string())
            .replace("{period}", &period.to_string())
            .replace("{to}", &to.to_string())
            .replace("{p}", &placeholders.join(", "));
        if let Some(reader) = &self.sqlite_reader {
            return reader.rows_of_sql(sql, schedules.to_vec()).await;
        }
        let values = schedules.iter().map(|s| sea_orm::Value::from(s.as_str()));
        let statement = sea_orm::Statement::from_sql_and_values(backend, sql, values);
        let rows = self.db.query_all_raw(statement).await?;
        rows.iter()
            .map(|r| Ok((r.try_get_by_index::<String>(0)?, r.try_get_by_index::<i64>(1)?)))
            .collect::<Result<_, sea_orm::DbErr>>()
            .map_err(StoreError::from)
    }
}

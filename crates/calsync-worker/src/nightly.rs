//! The nightly run: at a cron schedule in a time zone, every connection becomes due and is
//! queued.

use std::str::FromStr;
use std::sync::Arc;

use apalis::prelude::*;
use apalis_cron::{CronScheduler, Tick};
use calsync_store::Store;

use crate::{Clock, Queue};

/// When the nightly run starts.
#[derive(Debug, Clone)]
pub struct Nightly {
    schedule: cron::Schedule,
    zone: chrono_tz::Tz,
}

impl Default for Nightly {
    /// 02:00 UTC every day.
    fn default() -> Self {
        Self::parse("0 0 2 * * *", "UTC").expect("the default schedule parses")
    }
}

impl Nightly {
    /// A cron expression (`sec min hour day-of-month month day-of-week`, e.g. `0 0 2 * * *`)
    /// read in IANA zone `zone`.
    pub fn parse(expression: &str, zone: &str) -> Result<Self, String> {
        let schedule = cron::Schedule::from_str(expression)
            .map_err(|e| format!("nightly schedule {expression:?}: {e} (expected `sec min hour dom month dow`)"))?;
        let zone = zone.parse().map_err(|_| format!("nightly zone {zone:?} is not an IANA time zone"))?;
        Ok(Self { schedule, zone })
    }

    /// The next start after `after`.
    pub fn next_after(&self, after: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
        self.schedule.after(&after.with_timezone(&self.zone)).next().map(|t| t.to_utc())
    }

    pub(crate) fn register(self, monitor: Monitor, name: &str, queue: Queue, store: Store, clock: Clock) -> Monitor {
        let state = Arc::new(NightlyRun { queue: tokio::sync::Mutex::new(queue), store, clock });
        let name = format!("{name}-nightly");
        monitor.register(move |run| {
            WorkerBuilder::new(format!("{name}-{run}"))
                .backend(CronScheduler::new(self.schedule.clone()).with_timezone(self.zone))
                .data(state.clone())
                .build(start_nightly_run)
        })
    }
}

struct NightlyRun {
    queue: tokio::sync::Mutex<Queue>,
    store: Store,
    clock: Clock,
}

async fn start_nightly_run(_tick: Tick<chrono_tz::Tz>, run: Data<Arc<NightlyRun>>) -> Result<(), BoxDynError> {
    let queued = run.queue.lock().await.sync_all(&run.store, (run.clock)()).await?;
    tracing::info!(connections = queued, "nightly run queued");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_nightly_hour_is_local_across_daylight_saving() {
        let nightly = Nightly::parse("0 0 2 * * *", "America/New_York").unwrap();
        // 02:00 EDT is 06:00Z; New York falls back on 1 November 2026, then 02:00 EST is 07:00Z.
        let summer = nightly.next_after(Utc.with_ymd_and_hms(2026, 10, 30, 12, 0, 0).unwrap()).unwrap();
        assert_eq!(summer, Utc.with_ymd_and_hms(2026, 10, 31, 6, 0, 0).unwrap());
        let winter = nightly.next_after(Utc.with_ymd_and_hms(2026, 11, 2, 12, 0, 0).unwrap()).unwrap();
        assert_eq!(winter, Utc.with_ymd_and_hms(2026, 11, 3, 7, 0, 0).unwrap());
    }

    #[test]
    fn a_bad_schedule_or_zone_is_a_clear_error() {
        assert!(Nightly::parse("every night", "UTC").unwrap_err().contains("sec min hour"));
        assert!(Nightly::parse("0 0 2 * * *", "Mars/Olympus").unwrap_err().contains("IANA"));
    }
}

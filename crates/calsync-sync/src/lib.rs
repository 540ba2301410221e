//! Keeps participants' derived Schedules current.
//!
//! A participant's derived Schedule holds busy Slots from several sources: each calendar
//! connection, an uploaded calendar (`$import-ics`), and booked appointments. [`apply`] replaces
//! the Slots of one source with what that source reports now, in one transaction, as a diff:
//! - windows of one status that overlap or touch are one Slot;
//! - unchanged windows keep their Slot ids and versions;
//! - other sources' Slots are never touched.
//!
//! A writer stopped at any moment leaves the old set or the new set, never a mix.

pub mod connection;

use std::collections::BTreeMap;

use calsync_core::{BusyInterval, Interval};
use calsync_fhir::availability::is_participant_schedule;
use calsync_store::{Store, StoreError};
use chrono::{SecondsFormat, TimeDelta};
use serde_json::json;

/// Why busy windows could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The Schedule does not hold a participant's busy time.
    #[error("Schedule/{0} is not a participant's Schedule (its actors must be Patients or RelatedPersons)")]
    NotParticipant(String),
    /// A source key that cannot be part of a Slot id.
    #[error("source {0:?} must be 1-20 of a-z 0-9")]
    BadSource(String),
    /// The store failed (or the Schedule is not known).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A connection's sealed credentials cannot be opened (another key, or altered).
    #[error("the credentials of connection {0} cannot be opened with this server's key")]
    Credentials(String),
    /// The process is shutting down.
    #[error("the sync was stopped: the process is shutting down")]
    Stopped,
}

/// What [`apply`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// Busy windows the source reported.
    pub busy: usize,
    /// Slots written (new, or with a changed status).
    pub added: usize,
    /// Slots of this source that are gone.
    pub removed: usize,
}

/// The id prefix of `source`'s Slots on the Schedule `key` (`Schedule/{id}`).
pub fn slot_prefix(source: &str, key: &str) -> String {
    format!("{source}-{}-", calsync_fhir::index::fnv(key))
}

/// Removes every busy Slot `source` put on participant Schedule `schedule_id`, whenever it is
/// (a connection deleted, or its consent withdrawn).
pub async fn purge(
    store: &Store,
    schedule_id: &str,
    source: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Applied, SyncError> {
    let all_time = Interval::new(
        chrono::DateTime::<chrono::Utc>::MIN_UTC + TimeDelta::days(3651),
        chrono::DateTime::<chrono::Utc>::MAX_UTC - TimeDelta::days(3651),
    );
    apply(store, schedule_id, source, &[], all_time, now).await
}

/// Replaces the busy Slots `source` put on participant Schedule `schedule_id` with `busy`
/// (windows reported over `horizon`; earlier Slots of the source anywhere in time go), in one
/// transaction written at `now`. Same window, same Slot id: an unchanged report changes nothing.
pub async fn apply(
    store: &Store,
    schedule_id: &str,
    source: &str,
    busy: &[BusyInterval],
    horizon: Interval,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Applied, SyncError> {
    if source.is_empty() || source.len() > 20 || !source.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()) {
        return Err(SyncError::BadSource(source.into()));
    }
    let schedule = store.read("Schedule", schedule_id).await?;
    if !is_participant_schedule(&schedule.content) {
        return Err(SyncError::NotParticipant(schedule_id.into()));
    }
    let key = format!("Schedule/{schedule_id}");
    let prefix = slot_prefix(source, &key);
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    // Windows of one status that overlap or touch are one Slot (so a duplicated event is one),
    // keyed by id.
    let wanted: BTreeMap<String, serde_json::Value> = BusyInterval::merged(busy)
        .iter()
        .filter(|b| b.interval.overlaps(&horizon))
        .map(|b| {
            let minutes = (b.interval.end - b.interval.start).num_minutes();
            let id = format!("{prefix}{}-{minutes}", b.interval.start.timestamp());
            let slot = json!({"resourceType": "Slot", "id": id, "schedule": {"reference": key},
                "status": b.status.code(), "start": stamp(b.interval.start), "end": stamp(b.interval.end)});
            (id, slot)
        })
        .collect();
    let txn = store.begin(now).await?;
    let far = TimeDelta::days(3650);
    let existing = txn.slots_overlapping(Some(&key), horizon.start - far, horizon.end + far).await?;
    let mut applied = Applied { busy: wanted.len(), ..Applied::default() };
    let status_of: std::collections::HashMap<&str, &str> =
        existing.iter().filter(|r| r.id.starts_with(&prefix)).map(|r| (r.id.as_str(), r.status.as_str())).collect();
    let gone: Vec<String> = status_of.keys().filter(|id| !wanted.contains_key(**id)).map(|id| id.to_string()).collect();
    applied.removed = txn.delete_many("Slot", &gone).await? as usize;
    let changed: Vec<calsync_store::Put> = wanted
        .into_iter()
        .filter(|(id, slot)| status_of.get(id.as_str()).is_none_or(|status| slot["status"] != *status))
        .map(|(id, slot)| ("Slot".to_string(), id, slot))
        .collect();
    applied.added = changed.len();
    txn.put_many(changed).await?;
    txn.commit().await?;
    tracing::info!(schedule = %schedule_id, source, busy = applied.busy, added = applied.added, removed = applied.removed, "busy windows applied");
    Ok(applied)
}

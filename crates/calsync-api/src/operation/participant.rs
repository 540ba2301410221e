//! Participants (Patients and RelatedPersons) as the matching core sees them: their derived
//! Schedules' busy Slots, zone and constraints.

use calsync_core::{Attendance, BusyInterval, BusyStatus, Interval, Participant};
use calsync_fhir::availability::{is_participant_schedule, participant_constraints};
use calsync_store::search::{Direction, IndexFilter, ResourceSearch, SortBy};
use calsync_store::{Store, StoreError, StoredResource};
use chrono::TimeDelta;

use crate::outcome::ApiError;

/// The derived Schedules of a participant (`Patient/1`).
pub(crate) async fn derived_schedules(store: &Store, reference: &str) -> Result<Vec<StoredResource>, ApiError> {
    let actor = IndexFilter::any_exact("actor", [reference.to_string()]);
    let search = ResourceSearch { index: vec![actor], ..Default::default() };
    let page = store.search_resources("Schedule", &search, (SortBy::Id, Direction::Ascending), None, 100).await?;
    Ok(page.resources.into_iter().filter(|s| is_participant_schedule(&s.content)).collect())
}

/// Maps a Slot status of a derived Schedule to a busy status (free Slots do not block).
pub(crate) fn busy_status(code: &str) -> Option<BusyStatus> {
    match code {
        "busy" => Some(BusyStatus::Busy),
        "busy-tentative" => Some(BusyStatus::BusyTentative),
        "busy-unavailable" => Some(BusyStatus::BusyUnavailable),
        _ => None,
    }
}

/// A participant for the core, with busy windows over `horizon` (widened by a day each side so
/// buffers see neighbours), zone (the Schedule's, else `default_zone`) and constraints.
pub(crate) async fn load(
    store: &Store,
    reference: &str,
    attendance: Attendance,
    horizon: Interval,
    default_zone: chrono_tz::Tz,
) -> Result<Participant, ApiError> {
    let (t, id) = reference.split_once('/').expect("checked reference");
    match store.read(t, id).await {
        Ok(_) => {}
        Err(StoreError::NotFound(..) | StoreError::Gone(..)) => {
            return Err(ApiError::BadRequest(format!("participant {reference} is not known")));
        }
        Err(e) => return Err(e.into()),
    }
    let mut participant = Participant::new(reference, default_zone, Vec::new());
    participant.attendance = attendance;
    let (from, to) = (horizon.start - TimeDelta::days(1), horizon.end + TimeDelta::days(1));
    for schedule in derived_schedules(store, reference).await? {
        let (zone, constraints) = participant_constraints(&schedule.content).map_err(|m| ApiError::Unprocessable {
            message: format!("Schedule/{}: {m}", schedule.id),
            expression: Some("Schedule.extension".into()),
        })?;
        if let Some(zone) = zone {
            participant.zone = zone;
            participant.constraints = constraints;
        }
        let key = format!("Schedule/{}", schedule.id);
        for row in store.slots_overlapping(Some(&key), from, to).await? {
            if let Some(status) = busy_status(&row.status) {
                participant.busy.push(BusyInterval { interval: Interval::new(row.start, row.end), status });
            }
        }
    }
    Ok(participant)
}

//! Participants (Patients and RelatedPersons): their derived Schedules, and the participants as
//! the matching core sees them (busy Slots, zone and constraints).

use calsync_core::{Attendance, BusyInterval, Interval, Participant};
use calsync_fhir::availability::{is_participant_schedule, participant_constraints};
use calsync_store::search::{IndexFilter, ResourceSearch};
use calsync_store::{Store, StoreError, StoredResource};
use chrono::TimeDelta;

use crate::UseCaseError;

/// The derived Schedules of a participant (`Patient/1`).
pub(crate) async fn derived_schedules(store: &Store, reference: &str) -> Result<Vec<StoredResource>, UseCaseError> {
    let actor = IndexFilter::any_exact("actor", [reference.to_string()]);
    let search = ResourceSearch { index: vec![actor], ..Default::default() };
    let found = store.find_resources("Schedule", &search, 100).await?;
    Ok(found.into_iter().filter(|s| is_participant_schedule(&s.content)).collect())
}

/// The id a participant's first derived Schedule gets when calsync creates it.
pub(crate) fn new_schedule_id(reference: &str) -> String {
    format!("p-{}", calsync_fhir::index::fnv(reference))
}

/// The id of the participant's derived Schedule, created (with the participant as its only
/// actor) if they have none yet.
pub(crate) async fn derived_schedule(
    store: &Store,
    reference: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, UseCaseError> {
    if let Some(s) = derived_schedules(store, reference).await?.into_iter().next() {
        return Ok(s.id);
    }
    let id = new_schedule_id(reference);
    let content =
        serde_json::json!({"resourceType": "Schedule", "id": id, "active": true, "actor": [{"reference": reference}]});
    store.update("Schedule", &id, content, None, now).await?;
    Ok(id)
}

/// The participants for the core, in the order asked (`(reference, attendance)`), with busy
/// windows over `horizon` (widened by a day each side so buffers see neighbours), zone (their
/// derived Schedule's, else `default_zone`) and constraints. Three queries for any number of
/// participants: their derived Schedules, the existence of those without one, their windows.
pub(crate) async fn load_all(
    store: &Store,
    wanted: &[(String, Attendance)],
    horizon: Interval,
    default_zone: chrono_tz::Tz,
) -> Result<Vec<Participant>, UseCaseError> {
    let references: Vec<String> = wanted.iter().map(|(r, _)| r.clone()).collect();
    let search = ResourceSearch { index: vec![IndexFilter::any_exact("actor", references)], ..Default::default() };
    let schedules: Vec<StoredResource> = store
        .find_resources("Schedule", &search, 100 * wanted.len().max(1) as u64)
        .await?
        .into_iter()
        .filter(|s| is_participant_schedule(&s.content))
        .collect();
    let actors = |s: &StoredResource| -> Vec<String> {
        s.content["actor"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["reference"].as_str())
            .map(String::from)
            .collect()
    };
    let mut participants = Vec::with_capacity(wanted.len());
    let mut keys: Vec<String> = Vec::new();
    let mut owners: Vec<Vec<usize>> = Vec::new();
    for (n, (reference, attendance)) in wanted.iter().enumerate() {
        let mut participant = Participant::new(reference, default_zone, Vec::new());
        participant.attendance = *attendance;
        let theirs: Vec<&StoredResource> = schedules.iter().filter(|s| actors(s).contains(reference)).collect();
        if theirs.is_empty() {
            let Some((t, id)) = reference.split_once('/') else {
                return Err(UseCaseError::Invalid(format!("participant {reference} is not a reference")));
            };
            match store.read(t, id).await {
                Ok(_) => {}
                Err(StoreError::NotFound(..) | StoreError::Gone(..)) => {
                    return Err(UseCaseError::Invalid(format!("participant {reference} is not known")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        for schedule in theirs {
            let (zone, constraints) =
                participant_constraints(&schedule.content).map_err(|m| UseCaseError::Unprocessable {
                    message: format!("Schedule/{}: {m}", schedule.id),
                    expression: Some("Schedule.extension".into()),
                })?;
            if let Some(zone) = zone {
                participant.zone = zone;
                participant.constraints = constraints;
            }
            let key = format!("Schedule/{}", schedule.id);
            match keys.iter().position(|k| *k == key) {
                Some(i) => owners[i].push(n),
                None => {
                    keys.push(key);
                    owners.push(vec![n]);
                }
            }
        }
        participants.push(participant);
    }
    let (from, to) = (horizon.start - TimeDelta::days(1), horizon.end + TimeDelta::days(1));
    for window in store.slot_windows(&keys, from, to).await? {
        let Some(status) = window.status.and_then(calsync_core::SlotStatus::busy) else { continue };
        for &n in owners.get(window.schedule).into_iter().flatten() {
            participants[n].busy.push(BusyInterval { interval: Interval::new(window.start, window.end), status });
        }
    }
    Ok(participants)
}

/// `Patient/1` or `RelatedPerson/2`, known to the store.
pub(crate) async fn known_participant(store: &Store, reference: &str) -> Result<String, UseCaseError> {
    let (t, id) = crate::typed_reference(reference, &["Patient", "RelatedPerson"], "participant")?;
    match store.read(&t, &id).await {
        Ok(_) => Ok(format!("{t}/{id}")),
        Err(StoreError::NotFound(..) | StoreError::Gone(..)) => {
            Err(UseCaseError::Invalid(format!("participant {t}/{id} is not known")))
        }
        Err(e) => Err(e.into()),
    }
}

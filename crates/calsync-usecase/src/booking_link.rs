//! Booking through a publisher's portal (SMART Scheduling Links deep links).
//!
//! - [`UseCases::booking_link`], for a Slot with a `booking-deep-link`: calsync records the
//!   attempt as a proposed Appointment and a booking Task (AppointmentCoordinationTask,
//!   `requested`), and gives the link with `source` (this server) and `booking-referral` (an
//!   opaque, single-use token, no PHI) added by URL parsing.
//! - [`UseCases::booking_returned`]: the portal's return. `state` is the token the link carried;
//!   it completes its Task once. On `booked` the Appointment is booked, each participant's
//!   derived Schedule gets a busy Slot, and the Slot gives up a place here until its publisher
//!   says otherwise; on the other outcomes the Appointment is cancelled. The token is stored
//!   only as a digest, and a used or unknown one is refused.

use calsync_store::search::{Direction, IndexFilter, IndexTerm, Match, ResourceSearch, SortBy};
use calsync_store::{Store, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::access::Interaction;
use crate::offer::{Offer, Units, conflict, participant_slot_id, read_for_booking, text};
use crate::{Context, Outcome, UseCaseError, UseCases, participants, typed_reference};

/// Identifier system of a hand-off's token digest on its Task.
pub const HANDOFF_SYSTEM: &str = "https://calsync.example.org/fhir/booking-referral";

/// The code system of AppointmentCoordinationTask codes.
pub const TASK_CODES: &str = "http://hl7.org/fhir/uv/patient-scheduling/CodeSystem/appointment-coordination-task-code";

/// The outcomes the portal may return, and the Task and Appointment statuses each gives.
const OUTCOMES: [(&str, &str, &str); 4] = [
    ("booked", "completed", "booked"),
    ("cancelled", "cancelled", "cancelled"),
    ("entered-in-error", "entered-in-error", "entered-in-error"),
    ("failed", "failed", "cancelled"),
];

/// The SHA-256 of `token`, in hex: what is kept of a secret or of who asked.
pub(crate) fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Who is to be booked into which Slot through its publisher's portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffRequest {
    /// The Slot's id.
    pub slot: String,
    /// `Patient/…`.
    pub patient: String,
    /// `RelatedPerson/…` coming too.
    pub caregivers: Vec<String>,
}

/// A booking handed off to the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// The portal's address, with `source` and `booking-referral`.
    pub link: String,
    /// The booking Task's id.
    pub task: String,
    /// The proposed Appointment's id.
    pub appointment: String,
}

/// What the portal sent back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Return {
    /// The token the link carried.
    pub state: String,
    /// `booked`, `cancelled`, `entered-in-error` or `failed`.
    pub outcome: String,
    /// Why, when not booked.
    pub reason: Option<String>,
    /// The portal's booking reference.
    pub booking_ref: Option<String>,
    /// The portal's appointment reference (a URI).
    pub appointment_ref: Option<String>,
}

impl UseCases {
    /// Hands a booking of `request.slot` off to its publisher's portal.
    pub async fn booking_link(&self, cx: &Context, request: &HandoffRequest) -> Outcome<Handoff> {
        let reach = self.authorize(cx, "Appointment", Interaction::Create).await?;
        let people = std::iter::once(request.patient.as_str()).chain(request.caregivers.iter().map(String::as_str));
        Self::permit_participants(&reach, people)?;
        if let crate::compartment::Reach::Person(c) = &reach
            && !c.has_person(&request.patient)
        {
            return Err(UseCaseError::Forbidden(format!("{} is not in the compartment of {}", request.patient, c.me)));
        }
        let store = &self.store;
        let slot = store.read("Slot", &request.slot).await?;
        // Checked again here, whatever wrote the Slot: the patient's app opens this link.
        let found =
            calsync_fhir::booking::deep_link(&slot.content["extension"]).map_err(|e| UseCaseError::Unprocessable {
                message: format!("Slot/{}: {e}", slot.id),
                expression: Some("Slot.extension".into()),
            })?;
        let Some(mut link) = found else {
            return Err(UseCaseError::Unprocessable {
                message: format!("Slot/{} has no booking-deep-link: book it with $hold and $book", slot.id),
                expression: Some("Slot.extension".into()),
            });
        };
        let portal = link.to_string();
        if slot.content["status"] != "free" {
            return Err(UseCaseError::Conflict(format!(
                "Slot/{} is {}",
                slot.id,
                slot.content["status"].as_str().unwrap_or("?")
            )));
        }
        let (_, patient_id) = typed_reference(&request.patient, &["Patient"], "patient")?;
        let mut people = vec![format!("Patient/{patient_id}")];
        for p in &request.caregivers {
            let (t, id) = typed_reference(p, &["RelatedPerson"], "participant")?;
            people.push(format!("{t}/{id}"));
        }
        for p in &people {
            participants::known_participant(store, p).await?;
        }
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let source = self.authorizers.public_base(cx);
        link.query_pairs_mut().append_pair("source", &source).append_pair("booking-referral", &token);

        let appointment_id = uuid::Uuid::new_v4().to_string();
        let mut participants: Vec<Value> = people
            .iter()
            .map(|p| json!({"actor": {"reference": p}, "required": "required", "status": "needs-action"}))
            .collect();
        if let Some(actors) = schedule_actors(store, &slot.content).await? {
            participants.extend(actors.into_iter().map(|a| json!({"actor": a, "status": "needs-action"})));
        }
        let appointment = json!({"resourceType": "Appointment", "id": appointment_id, "status": "proposed",
        "start": slot.content["start"], "end": slot.content["end"],
        "slot": [{"reference": format!("Slot/{}", slot.id)}], "participant": participants});
        let task = json!({"resourceType": "Task", "status": "requested", "intent": "order",
        "code": {"coding": [{"system": TASK_CODES, "code": "book-appointment"}]},
        "identifier": [{"system": HANDOFF_SYSTEM, "value": digest(&token)}],
        "for": {"reference": people[0]}, "focus": {"reference": format!("Appointment/{appointment_id}")},
        "authoredOn": text(cx.now),
        "input": [{"type": {"text": "booking-deep-link"}, "valueUrl": portal}]});
        let txn = store.begin(cx.now).await?;
        txn.update("Appointment", &appointment_id, appointment, None).await.map_err(conflict)?;
        let task = txn.create("Task", task).await.map_err(conflict)?;
        txn.commit().await.map_err(conflict)?;
        tracing::info!(task = %task.id, slot = %slot.id, "booking handed off to the publisher's portal");
        Ok(Handoff { link: link.to_string(), task: task.id, appointment: appointment_id })
    }

    /// The portal's return of a hand-off: the completed Task.
    pub async fn booking_returned(&self, cx: &Context, back: &Return) -> Outcome<Value> {
        let store = &self.store;
        let token = &back.state;
        let outcome = back.outcome.as_str();
        let Some(&(_, task_status, appointment_status)) = OUTCOMES.iter().find(|(o, _, _)| *o == outcome) else {
            return Err(UseCaseError::Invalid(format!(
                "outcome {outcome:?} is not one of booked, cancelled, entered-in-error, failed"
            )));
        };
        let task = task_of(store, token).await?.ok_or_else(|| UseCaseError::Invalid("state is not known".into()))?;
        let appointment_id = task.content["focus"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("Appointment/"))
            .ok_or_else(|| UseCaseError::Internal("the hand-off Task has no Appointment".into()))?
            .to_string();
        let appointment = store.read("Appointment", &appointment_id).await?;
        let people: Vec<String> = appointment.content["participant"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["actor"]["reference"].as_str())
            .filter(|r| r.starts_with("Patient/") || r.starts_with("RelatedPerson/"))
            .map(String::from)
            .collect();
        let mut schedules = Vec::new();
        if outcome == "booked" {
            for p in &people {
                schedules.push(participants::derived_schedule(store, p, cx.now).await?);
            }
        }

        let txn = store.begin(cx.now).await?;
        let task = read_for_booking(&txn, "Task", &task.id).await?;
        if task.content["status"] != "requested" {
            return Err(UseCaseError::Conflict("this booking hand-off was completed already".into()));
        }
        let mut appointment = read_for_booking(&txn, "Appointment", &appointment_id).await?.content;
        appointment["status"] = json!(appointment_status);
        if let Some(list) = appointment["participant"].as_array_mut() {
            for p in list {
                p["status"] = json!(if outcome == "booked" { "accepted" } else { "declined" });
            }
        }
        if let Some(reference) = &back.appointment_ref {
            appointment["identifier"] = json!([{"system": "urn:ietf:rfc:3986", "value": reference}]);
        }
        if outcome != "booked"
            && let Some(reason) = &back.reason
        {
            appointment["cancelationReason"] = json!({"text": reason});
        }
        if outcome == "booked" {
            let interval = Offer::read(&appointment)?.interval;
            // The portal booked a place: this server stops offering it until the publisher's feed
            // says otherwise (a Slot already full here stays as it is).
            let slot_id =
                appointment["slot"][0]["reference"].as_str().and_then(|r| r.strip_prefix("Slot/")).map(String::from);
            if let Some(slot_id) = slot_id
                && let Ok(slot) = txn.read("Slot", &slot_id).await
            {
                let mut units = Units::of(&slot.content);
                if units.take(&format!("Appointment/{appointment_id}"), None, cx.now).is_ok() {
                    let mut taken = slot.content.clone();
                    units.write(&mut taken);
                    txn.update("Slot", &slot_id, taken, Some(slot.version_id)).await.map_err(conflict)?;
                }
            }
            for (n, schedule) in schedules.iter().enumerate() {
                let id = participant_slot_id(&appointment_id, n);
                let busy = json!({"resourceType": "Slot", "id": id, "schedule": {"reference": format!("Schedule/{schedule}")},
                "status": "busy", "start": text(interval.start), "end": text(interval.end)});
                txn.update("Slot", &id, busy, None).await.map_err(conflict)?;
            }
        }
        txn.update("Appointment", &appointment_id, appointment.clone(), None).await.map_err(conflict)?;
        let mut done = task.content.clone();
        done["status"] = json!(task_status);
        done["businessStatus"] = json!({"text": outcome});
        done["lastModified"] = json!(text(cx.now));
        let mut output = Vec::new();
        if let Some(r) = &back.booking_ref {
            output.push(json!({"type": {"text": "bookingRef"}, "valueString": r}));
        }
        if let Some(r) = &back.appointment_ref {
            output.push(json!({"type": {"text": "appointmentRef"}, "valueString": r}));
        }
        if !output.is_empty() {
            done["output"] = json!(output);
        }
        let (done, _) = txn.update("Task", &task.id, done, Some(task.version_id)).await.map_err(conflict)?;
        txn.commit().await.map_err(conflict)?;
        tracing::info!(task = %done.id, outcome = %outcome, "booking hand-off returned");
        Ok(done.content)
    }
}

/// The actors of the Slot's Schedule (its Location, practitioner), as references.
async fn schedule_actors(store: &Store, slot: &Value) -> Outcome<Option<Vec<Value>>> {
    let Some(id) = slot["schedule"]["reference"].as_str().and_then(|r| r.strip_prefix("Schedule/")) else {
        return Ok(None);
    };
    match store.read("Schedule", id).await {
        Ok(s) => Ok(s.content["actor"].as_array().cloned()),
        Err(StoreError::NotFound(..) | StoreError::Gone(..)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The Task a hand-off token opened.
async fn task_of(store: &Store, token: &str) -> Outcome<Option<calsync_store::StoredResource>> {
    let term = IndexTerm { system: Some(HANDOFF_SYSTEM.into()), value: Some(digest(token)), how: Match::Exact };
    let search = ResourceSearch {
        index: vec![IndexFilter::Matches { param: "identifier".into(), terms: vec![term], negate: false }],
        ..Default::default()
    };
    let page = store.search_resources("Task", &search, (SortBy::Id, Direction::Ascending), None, 1).await?;
    Ok(page.resources.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deep_link_gains_its_parameters_by_url_parsing() {
        let mut link = url::Url::parse("https://portal.example/book?slot=1#top").unwrap();
        link.query_pairs_mut()
            .append_pair("source", "https://calsync.example")
            .append_pair("booking-referral", "a&b c");
        assert_eq!(
            link.as_str(),
            "https://portal.example/book?slot=1&source=https%3A%2F%2Fcalsync.example&booking-referral=a%26b+c#top"
        );
        assert_ne!(digest("a"), digest("b"));
    }
}

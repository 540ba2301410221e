//! Booking through a publisher's portal (SMART Scheduling Links deep links).
//!
//! - `POST /Slot/{id}/$booking-link` (Parameters: `patient` 1..1, `participant` 0..* caregivers)
//!   for a Slot with a `booking-deep-link`: calsync records the attempt as a proposed
//!   Appointment and a booking Task (AppointmentCoordinationTask, `requested`), and answers the
//!   link with `source` (this server) and `booking-referral` (an opaque, single-use token, no
//!   PHI) added by URL parsing, the Task and the Appointment.
//! - `GET|POST /$booking-return?state=…&outcome=booked|cancelled|entered-in-error|failed`
//!   (optionally `reason`, `bookingRef`, `appointmentRef`): the portal's return. `state` is the
//!   token the link carried; it completes its Task once. On `booked` the Appointment is booked,
//!   each participant's derived Schedule gets a busy Slot, and the Slot gives up a place here
//!   until its publisher says otherwise; on the other outcomes the Appointment is cancelled.
//!   The token is stored only as a digest, and a used or unknown one is refused.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_store::search::{Direction, IndexFilter, IndexTerm, Match, ResourceSearch, SortBy};
use calsync_store::{Store, StoreError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::appointment::{Units, conflict, participant_slot_id, read_for_booking, text};
use super::{Inputs, participant, typed_reference};
use crate::connect::Authorizers;
use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

/// Identifier system of a hand-off's token digest on its Task.
pub const HANDOFF_SYSTEM: &str = "https://calsync.example.org/fhir/booking-referral";

const TASK_CODES: &str = "http://hl7.org/fhir/uv/patient-scheduling/CodeSystem/appointment-coordination-task-code";

/// The outcomes the portal may return, and the Task and Appointment statuses each gives.
const OUTCOMES: [(&str, &str, &str); 4] = [
    ("booked", "completed", "booked"),
    ("cancelled", "cancelled", "cancelled"),
    ("entered-in-error", "entered-in-error", "entered-in-error"),
    ("failed", "failed", "cancelled"),
];

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST /Slot/{id}/$booking-link`.
pub async fn link(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    authorizers: web::Data<Authorizers>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let inputs = Inputs::read(&req, &body)?;
    let slot = store.read("Slot", &path).await?;
    // Checked again here, whatever wrote the Slot: the patient's app opens this link.
    let found = calsync_fhir::booking::deep_link(&slot.content["extension"]).map_err(|e| ApiError::Unprocessable {
        message: format!("Slot/{}: {e}", slot.id),
        expression: Some("Slot.extension".into()),
    })?;
    let Some(mut link) = found else {
        return Err(ApiError::Unprocessable {
            message: format!("Slot/{} has no booking-deep-link: book it with $hold and $book", slot.id),
            expression: Some("Slot.extension".into()),
        });
    };
    let portal = link.to_string();
    if slot.content["status"] != "free" {
        return Err(ApiError::Conflict(format!(
            "Slot/{} is {}",
            slot.id,
            slot.content["status"].as_str().unwrap_or("?")
        )));
    }
    let patient = inputs.one("patient")?.ok_or_else(|| ApiError::BadRequest("patient is required".into()))?;
    let (_, patient_id) = typed_reference(&patient, &["Patient"], "patient")?;
    let mut people = vec![format!("Patient/{patient_id}")];
    for p in inputs.all("participant") {
        let (t, id) = typed_reference(&p, &["RelatedPerson"], "participant")?;
        people.push(format!("{t}/{id}"));
    }
    for p in &people {
        crate::connections::known_participant(&store, p).await?;
    }
    let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let source = authorizers.public_base(&cx);
    link.query_pairs_mut().append_pair("source", &source).append_pair("booking-referral", &token);

    let appointment_id = uuid::Uuid::new_v4().to_string();
    let mut participants: Vec<Value> = people
        .iter()
        .map(|p| json!({"actor": {"reference": p}, "required": "required", "status": "needs-action"}))
        .collect();
    if let Some(actors) = schedule_actors(&store, &slot.content).await? {
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
    let out = json!({"resourceType": "Parameters", "parameter": [
        {"name": "link", "valueUrl": link.as_str()},
        {"name": "task", "valueReference": {"reference": format!("Task/{}", task.id)}},
        {"name": "appointment", "valueReference": {"reference": format!("Appointment/{appointment_id}")}}]});
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &out)))
}

/// The actors of the Slot's Schedule (its Location, practitioner), as references.
async fn schedule_actors(store: &Store, slot: &Value) -> Result<Option<Vec<Value>>, ApiError> {
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
async fn task_of(store: &Store, token: &str) -> Result<Option<calsync_store::StoredResource>, ApiError> {
    let term = IndexTerm { system: Some(HANDOFF_SYSTEM.into()), value: Some(digest(token)), how: Match::Exact };
    let search = ResourceSearch {
        index: vec![IndexFilter::Matches { param: "identifier".into(), terms: vec![term], negate: false }],
        ..Default::default()
    };
    let page = store.search_resources("Task", &search, (SortBy::Id, Direction::Ascending), None, 1).await?;
    Ok(page.resources.into_iter().next())
}

/// `GET|POST /$booking-return`: the portal's answer.
pub async fn finish(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    query: web::Query<Vec<(String, String)>>,
    form: Option<web::Form<Vec<(String, String)>>>,
) -> Result<HttpResponse, ApiError> {
    let mut given = query.into_inner();
    given.extend(form.map(web::Form::into_inner).unwrap_or_default());
    let value = |name: &str| given.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let token = value("state").ok_or_else(|| ApiError::BadRequest("state is required".into()))?;
    let outcome = value("outcome").ok_or_else(|| ApiError::BadRequest("outcome is required".into()))?;
    let Some(&(_, task_status, appointment_status)) = OUTCOMES.iter().find(|(o, _, _)| *o == outcome) else {
        return Err(ApiError::BadRequest(format!(
            "outcome {outcome:?} is not one of booked, cancelled, entered-in-error, failed"
        )));
    };
    let task = task_of(&store, &token).await?.ok_or_else(|| ApiError::BadRequest("state is not known".into()))?;
    let appointment_id = task.content["focus"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix("Appointment/"))
        .ok_or_else(|| ApiError::Internal("the hand-off Task has no Appointment".into()))?
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
            schedules.push(participant::derived_schedule(&store, p, cx.now).await?);
        }
    }

    let txn = store.begin(cx.now).await?;
    let task = read_for_booking(&txn, "Task", &task.id).await?;
    if task.content["status"] != "requested" {
        return Err(ApiError::Conflict("this booking hand-off was completed already".into()));
    }
    let mut appointment = read_for_booking(&txn, "Appointment", &appointment_id).await?.content;
    appointment["status"] = json!(appointment_status);
    if let Some(list) = appointment["participant"].as_array_mut() {
        for p in list {
            p["status"] = json!(if outcome == "booked" { "accepted" } else { "declined" });
        }
    }
    if let Some(reference) = value("appointmentRef") {
        appointment["identifier"] = json!([{"system": "urn:ietf:rfc:3986", "value": reference}]);
    }
    if outcome != "booked"
        && let Some(reason) = value("reason")
    {
        appointment["cancelationReason"] = json!({"text": reason});
    }
    if outcome == "booked" {
        let interval = super::appointment::Offer::read(&appointment)?.interval;
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
    if let Some(r) = value("bookingRef") {
        output.push(json!({"type": {"text": "bookingRef"}, "valueString": r}));
    }
    if let Some(r) = value("appointmentRef") {
        output.push(json!({"type": {"text": "appointmentRef"}, "valueString": r}));
    }
    if !output.is_empty() {
        done["output"] = json!(output);
    }
    let (done, _) = txn.update("Task", &task.id, done, Some(task.version_id)).await.map_err(conflict)?;
    txn.commit().await.map_err(conflict)?;
    tracing::info!(task = %done.id, outcome = %outcome, "booking hand-off returned");
    let browser = req.headers().get("Accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if browser {
        let message = match outcome.as_str() {
            "booked" => "Your appointment is booked. It is in your calsync schedule now; you can close this page.",
            "cancelled" => "The booking was cancelled. Nothing was booked.",
            _ => "The booking did not go through. Nothing was booked; you can choose another time.",
        };
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(format!("<!doctype html><meta charset=utf-8><title>calsync</title><p>{message}</p>")));
    }
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &done.content)))
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

//! `Appointment/$book`: books a held or proposed Appointment in one transaction. The provider
//! Slot must still be takeable and every required participant still free (checked now, against
//! their derived Schedules); then the Appointment is booked, the Slot busy, each participant's
//! derived Schedule gets a busy Slot, and a Task records the booking. Two bookings that race for
//! the same Slot or participant cannot both commit: each writes a new version of the Slot and of
//! every participant's derived Schedule, conditional on the version it read.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_fhir::availability::participant_constraints;
use calsync_store::search::{Direction, IndexFilter, IndexTerm, Match, ResourceSearch, SortBy};
use calsync_store::{Store, StoreError};
use serde_json::{Value, json};

use super::appointment::{Offer, Units, conflict, participant_slot_id, read_for_booking, text};
use super::{Inputs, participant, typed_reference};
use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

/// Identifier system of the idempotency keys recorded on booking Tasks.
pub const IDEMPOTENCY_SYSTEM: &str = "https://calsync.example.org/fhir/idempotency-key";

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let key = req.headers().get("Idempotency-Key").and_then(|v| v.to_str().ok()).map(str::to_string);
    if let Some(key) = &key {
        if key.is_empty() || key.len() > 200 {
            return Err(ApiError::BadRequest("Idempotency-Key must be 1 to 200 characters".into()));
        }
        if let Some(booked) = booked_with_key(&store, key).await? {
            return Ok(answer(&req, &cx, booked));
        }
    }
    let inputs = Inputs::read(&req, &body)?;
    let now = cx.now;
    // The Appointment: a held one by reference, or a proposed one in full. Everything that needs
    // the connection pool is read before the transaction takes its connection.
    let (existing, mut appointment) =
        match (inputs.one("appointment-reference")?, inputs.resource("appointment").or(inputs.resource("resource"))) {
            (Some(r), None) => {
                let (_, id) = typed_reference(&r, &["Appointment"], "appointment-reference")?;
                let held = store.read("Appointment", &id).await?;
                (Some((id, held.version_id)), held.content)
            }
            (None, Some(a)) if a["status"] == "proposed" => (None, a.clone()),
            (None, Some(_)) => {
                return Err(ApiError::Unprocessable {
                    message: "only a proposed or held Appointment can be booked".into(),
                    expression: Some("Appointment.status".into()),
                });
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "$book takes appointment-reference (a held Appointment) or appointment (a proposed one)".into(),
                ));
            }
        };
    if existing.is_some() && appointment["status"] != "pending" && appointment["status"] != "proposed" {
        return Err(ApiError::Conflict(format!(
            "the Appointment is {}, not held",
            appointment["status"].as_str().unwrap_or("unknown")
        )));
    }
    let offer = Offer::read(&appointment)?;
    let mut schedule_ids = Vec::new();
    for (reference, _) in &offer.people {
        let id = match participant::derived_schedules(&store, reference).await?.into_iter().next() {
            Some(s) => s.id,
            // A participant without calendar data gets a derived Schedule for their bookings.
            None => participant::new_schedule_id(reference),
        };
        schedule_ids.push(id);
    }

    let txn = store.begin(now).await?;
    if let Some((id, version)) = &existing
        && read_for_booking(&txn, "Appointment", id).await?.version_id != *version
    {
        return Err(ApiError::Conflict(format!("Appointment/{id} changed at the same time; try again")));
    }
    let slot = read_for_booking(&txn, "Slot", &offer.slot).await?;
    let id = existing.as_ref().map_or_else(|| uuid::Uuid::new_v4().to_string(), |(id, _)| id.clone());
    // A hold of this appointment becomes its booking; an expired one is re-validated: the
    // booking goes ahead only if a unit is still free.
    let mut units = Units::of(&slot.content);
    units
        .take(&format!("Appointment/{id}"), None, now)
        .map_err(|why| ApiError::Conflict(format!("Slot/{} cannot be booked: {why}", offer.slot)))?;
    // Each participant: take their derived Schedule's version (the lock), then check their time.
    let mut derived = Vec::new();
    for ((reference, required), schedule_id) in offer.people.iter().zip(&schedule_ids) {
        let schedule = match txn.read("Schedule", schedule_id).await {
            Ok(s) => s,
            Err(StoreError::NotFound(..) | StoreError::Gone(..)) => {
                let content = json!({"resourceType": "Schedule", "id": schedule_id, "active": true,
                    "actor": [{"reference": reference}]});
                txn.update("Schedule", schedule_id, content, None).await.map_err(conflict)?.0
            }
            Err(e) => return Err(e.into()),
        };
        let touched = txn
            .update("Schedule", &schedule.id, schedule.content.clone(), Some(schedule.version_id))
            .await
            .map_err(conflict)?
            .0;
        if *required {
            let (_, constraints) = participant_constraints(&schedule.content).unwrap_or_default();
            let key = format!("Schedule/{}", schedule.id);
            let (from, to) =
                (offer.interval.start - constraints.buffer_before, offer.interval.end + constraints.buffer_after);
            let blocking =
                txn.slots_overlapping(Some(&key), from, to).await?.into_iter().find(|r| match r.status.as_str() {
                    "busy" | "busy-unavailable" => true,
                    "busy-tentative" => constraints.tentative_is_busy,
                    _ => false,
                });
            if let Some(b) = blocking {
                return Err(ApiError::Conflict(format!(
                    "{reference} is now busy from {} to {}: search again",
                    text(b.start),
                    text(b.end)
                )));
            }
        }
        derived.push((reference.clone(), touched));
    }
    // The Appointment, booked.
    appointment["status"] = json!("booked");
    if let Some(list) = appointment["participant"].as_array_mut() {
        for p in list {
            p["status"] = json!("accepted");
        }
    }
    if let Some(o) = appointment.as_object_mut() {
        o.remove("extension");
        o.remove("meta");
    }
    appointment["id"] = json!(id);
    let version = existing.as_ref().map(|(_, version)| *version);
    let (booked, _) = txn.update("Appointment", &id, appointment, version).await.map_err(conflict)?;
    // The provider Slot: one unit taken (busy when it was the last).
    let mut taken = slot.content.clone();
    units.write(&mut taken);
    txn.update("Slot", &offer.slot, taken, Some(slot.version_id)).await.map_err(conflict)?;
    // Each participant's derived Schedule: a busy Slot for this appointment.
    for (n, (_, schedule)) in derived.iter().enumerate() {
        let id = participant_slot_id(&booked.id, n);
        let slot = json!({"resourceType": "Slot", "id": id, "schedule": {"reference": format!("Schedule/{}", schedule.id)},
            "status": "busy", "start": text(offer.interval.start), "end": text(offer.interval.end)});
        txn.update("Slot", &id, slot, None).await.map_err(conflict)?;
    }
    // The record of it (AppointmentCoordinationTask).
    let patient = offer.people.iter().find(|(r, _)| r.starts_with("Patient/")).map(|(r, _)| r.clone());
    let mut task = json!({"resourceType": "Task", "status": "completed", "intent": "order",
        "code": {"coding": [{"system": "http://hl7.org/fhir/uv/patient-scheduling/CodeSystem/appointment-coordination-task-code", "code": "book-appointment"}]},
        "businessStatus": {"text": "booked"},
        "focus": {"reference": format!("Appointment/{}", booked.id)},
        "authoredOn": text(now)});
    if let Some(p) = patient {
        task["for"] = json!({"reference": p});
    }
    if let Some(key) = &key {
        task["identifier"] = json!([{"system": IDEMPOTENCY_SYSTEM, "value": key}]);
    }
    txn.create("Task", task).await.map_err(conflict)?;
    txn.commit().await.map_err(conflict)?;
    tracing::info!(appointment = %booked.id, slot = %offer.slot, participants = derived.len(), "booked");
    Ok(answer(&req, &cx, booked.content))
}

fn answer(req: &HttpRequest, cx: &RequestContext, appointment: Value) -> HttpResponse {
    let id = appointment["id"].as_str().unwrap_or_default().to_string();
    HttpResponse::Ok()
        .content_type(FHIR_JSON)
        .insert_header(("Content-Location", format!("{}/Appointment/{id}", cx.base)))
        .body(media::body(req, &appointment))
}

/// The Appointment an earlier `$book` with this idempotency key booked.
async fn booked_with_key(store: &Store, key: &str) -> Result<Option<Value>, ApiError> {
    let term = IndexTerm { system: Some(IDEMPOTENCY_SYSTEM.into()), value: Some(key.into()), how: Match::Exact };
    let search = ResourceSearch {
        index: vec![IndexFilter::Matches { param: "identifier".into(), terms: vec![term], negate: false }],
        ..Default::default()
    };
    let page = store.search_resources("Task", &search, (SortBy::Id, Direction::Ascending), None, 1).await?;
    let Some(task) = page.resources.first() else { return Ok(None) };
    let Some(focus) = task.content["focus"]["reference"].as_str().and_then(|r| r.strip_prefix("Appointment/")) else {
        return Ok(None);
    };
    Ok(Some(store.read("Appointment", focus).await?.content))
}

//! Booking through a publisher's portal (SMART Scheduling Links deep links).
//!
//! - `POST /Slot/{id}/$booking-link` (Parameters: `patient` 1..1, `participant` 0..* caregivers)
//!   for a Slot with a `booking-deep-link`: the answer is the link with `source` and
//!   `booking-referral` added, the booking Task and the proposed Appointment.
//! - `GET|POST /$booking-return?state=…&outcome=booked|cancelled|entered-in-error|failed`
//!   (optionally `reason`, `bookingRef`, `appointmentRef`): the portal's return; a browser gets a
//!   short page, other clients the completed Task.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_usecase::UseCases;
use calsync_usecase::booking_link::{HandoffRequest, Return};
use serde_json::json;

use super::inputs::Call;
use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

/// `POST /Slot/{id}/$booking-link`.
pub async fn link(call: Call, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let Call { req, cx, cases, inputs } = call;
    let patient = inputs.one("patient")?.ok_or_else(|| ApiError::bad_request("patient is required"))?;
    let request = HandoffRequest { slot: path.into_inner(), patient, caregivers: inputs.all("participant") };
    let handoff = cases.booking_link(&cx, &request).await?;
    let out = json!({"resourceType": "Parameters", "parameter": [
        {"name": "link", "valueUrl": handoff.link},
        {"name": "task", "valueReference": {"reference": format!("Task/{}", handoff.task)}},
        {"name": "appointment", "valueReference": {"reference": format!("Appointment/{}", handoff.appointment)}}]});
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &out)))
}

/// `GET|POST /$booking-return`: the portal's answer.
pub async fn finish(
    req: HttpRequest,
    cx: RequestContext,
    cases: web::Data<UseCases>,
    query: web::Query<Vec<(String, String)>>,
    form: Option<web::Form<Vec<(String, String)>>>,
) -> Result<HttpResponse, ApiError> {
    let mut given = query.into_inner();
    given.extend(form.map(web::Form::into_inner).unwrap_or_default());
    let value = |name: &str| given.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let back = Return {
        state: value("state").ok_or_else(|| ApiError::bad_request("state is required"))?,
        outcome: value("outcome").ok_or_else(|| ApiError::bad_request("outcome is required"))?,
        reason: value("reason"),
        booking_ref: value("bookingRef"),
        appointment_ref: value("appointmentRef"),
    };
    let done = cases.booking_returned(&cx, &back).await?;
    let browser = req.headers().get("Accept").and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if browser {
        let message = match back.outcome.as_str() {
            "booked" => "Your appointment is booked. It is in your calsync schedule now; you can close this page.",
            "cancelled" => "The booking was cancelled. Nothing was booked.",
            _ => "The booking did not go through. Nothing was booked; you can choose another time.",
        };
        return Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body(format!("<!doctype html><meta charset=utf-8><title>calsync</title><p>{message}</p>")));
    }
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &done)))
}

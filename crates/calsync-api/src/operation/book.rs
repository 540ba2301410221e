//! `Appointment/$book`, once per `Idempotency-Key`. Two ways to call it:
//! - calsync's: a held Appointment (`appointment-reference`) or a proposed one (`appointment`, or
//!   the body), answered with the booked Appointment;
//! - IHE ITI-117's: `appointment-reference` to an option of `$find` or to an Appointment held by
//!   reference, or `appointment-resource` (status `pending` or `proposed` books it; `cancelled`
//!   with an id cancels that Appointment), with `patient-resource` (checked, not stored) and
//!   `comment` (kept on the Appointment), answered as the IG says: a searchset Bundle with the
//!   Appointment. A request using any of the IG's own parameters, or naming an option of
//!   `$find`, is answered the IG's way.

use actix_web::{HttpRequest, HttpResponse};
use calsync_usecase::book::Booking;
use calsync_usecase::hold::Named;
use calsync_usecase::typed_reference;
use serde_json::{Value, json};

use super::inputs::Call;
use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn handle(call: Call) -> Result<HttpResponse, ApiError> {
    let Call { req, cx, cases, inputs } = call;
    let key = req.headers().get("Idempotency-Key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let comment = inputs.one("comment")?;
    for patient in inputs.resources.iter().filter(|(name, _)| name == "patient-resource").map(|(_, r)| r) {
        calsync_fhir::validate::resource(&patient.to_string(), "Patient")
            .map_err(calsync_usecase::UseCaseError::from)?;
    }
    let mut ihe = comment.is_some() || inputs.resources.iter().any(|(name, _)| name == "patient-resource");
    let reference = inputs.one("appointment-reference")?;
    let resource = inputs.resource("appointment-resource");
    ihe |= resource.is_some();
    let offered = resource.or(inputs.resource("appointment")).or(inputs.resource("resource"));
    let what = match (reference, offered) {
        (Some(r), None) => match cases.named_appointment(&cx, &r).await? {
            // An option of `$find`, or an Appointment held from one: the IG's flow.
            Named::Offered(a) => {
                ihe = true;
                match a["id"].as_str() {
                    Some(id) if a["status"] == "pending" => Booking::Held(id.to_string()),
                    _ => Booking::Proposed(a),
                }
            }
            Named::Stored(_) => Booking::Held(typed_reference(&r, &["Appointment"], "appointment-reference")?.1),
        },
        (None, Some(a)) => match (a["status"].as_str(), a["id"].as_str()) {
            (Some("cancelled"), Some(id)) => {
                let cancelled = cases.cancel(&cx, id).await?;
                return Ok(answer(&req, &cx, &cancelled, ihe));
            }
            (Some("booked"), Some(_)) => {
                return Err(calsync_usecase::UseCaseError::element(
                    "Appointment.status",
                    "calsync does not move a booked Appointment: cancel it (status cancelled) and book the new time",
                )
                .into());
            }
            // A held Appointment (held either way) is booked as such.
            (Some("pending"), Some(id)) if is_held(&cases, &cx, id).await => Booking::Held(id.to_string()),
            (Some("pending"), _) => {
                let mut proposed = a.clone();
                proposed["status"] = json!("proposed");
                Booking::Proposed(proposed)
            }
            _ => Booking::Proposed(a.clone()),
        },
        _ => {
            return Err(ApiError::bad_request(
                "$book takes appointment-reference (a held Appointment or an option of $find), or appointment \
                 (appointment-resource) with the Appointment",
            ));
        }
    };
    let booked = cases.book_noting(&cx, what, key.as_deref(), comment.as_deref()).await?;
    Ok(answer(&req, &cx, &booked, ihe))
}

/// True when `id` names a held Appointment.
async fn is_held(cases: &calsync_usecase::UseCases, cx: &RequestContext, id: &str) -> bool {
    match cases.named_appointment(cx, id).await {
        Ok(Named::Stored(a)) => a.content["status"] == "pending",
        Ok(Named::Offered(a)) => a["status"] == "pending",
        Err(_) => false,
    }
}

fn answer(req: &HttpRequest, cx: &RequestContext, appointment: &Value, ihe: bool) -> HttpResponse {
    let id = appointment["id"].as_str().unwrap_or_default();
    let body = if ihe { ihe_bundle(&cx.base, appointment) } else { appointment.clone() };
    HttpResponse::Ok()
        .content_type(FHIR_JSON)
        .insert_header(("Content-Location", format!("{}/Appointment/{id}", cx.base)))
        .body(media::body(req, &body))
}

/// The IHE Scheduling answer of `$hold` and `$book` (profile `ihe-sched-avail-bundle`): a
/// searchset Bundle of the one Appointment.
pub(super) fn ihe_bundle(base: &str, appointment: &Value) -> Value {
    let id = appointment["id"].as_str().unwrap_or_default();
    json!({"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [{
        "fullUrl": format!("{base}/Appointment/{id}"), "resource": appointment, "search": {"mode": "match"}}]})
}

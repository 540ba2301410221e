//! `Appointment/$book`: books a held Appointment (`appointment-reference`) or a proposed one
//! (`appointment`), once per `Idempotency-Key`.

use actix_web::{HttpRequest, HttpResponse};
use calsync_usecase::book::Booking;
use calsync_usecase::typed_reference;
use serde_json::Value;

use super::inputs::Call;
use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn handle(call: Call) -> Result<HttpResponse, ApiError> {
    let Call { req, cx, cases, inputs } = call;
    let key = req.headers().get("Idempotency-Key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let what =
        match (inputs.one("appointment-reference")?, inputs.resource("appointment").or(inputs.resource("resource"))) {
            (Some(r), None) => Booking::Held(typed_reference(&r, &["Appointment"], "appointment-reference")?.1),
            (None, Some(a)) => Booking::Proposed(a.clone()),
            _ => {
                return Err(ApiError::bad_request(
                    "$book takes appointment-reference (a held Appointment) or appointment (a proposed one)",
                ));
            }
        };
    let booked = cases.book(&cx, what, key.as_deref()).await?;
    Ok(answer(&req, &cx, &booked))
}

fn answer(req: &HttpRequest, cx: &RequestContext, appointment: &Value) -> HttpResponse {
    let id = appointment["id"].as_str().unwrap_or_default();
    HttpResponse::Ok()
        .content_type(FHIR_JSON)
        .insert_header(("Content-Location", format!("{}/Appointment/{id}", cx.base)))
        .body(media::body(req, appointment))
}

//! `Appointment/$hold`: takes a proposed Appointment, makes it pending and its Slot's unit held
//! until the hold expires (the `Expires` header).

use actix_web::HttpResponse;

use super::inputs::Call;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn handle(call: Call) -> Result<HttpResponse, ApiError> {
    let Call { req, cx, cases, inputs } = call;
    let appointment = inputs
        .resource("appointment")
        .or_else(|| inputs.resource("resource"))
        .cloned()
        .ok_or_else(|| ApiError::bad_request("$hold takes the proposed Appointment as parameter appointment"))?;
    let held = cases.hold(&cx, appointment).await?;
    let stored = &held.appointment;
    Ok(HttpResponse::Created()
        .content_type(FHIR_JSON)
        .insert_header(("Location", format!("{}/Appointment/{}/_history/1", cx.base, stored.id)))
        .insert_header(("ETag", format!("W/\"{}\"", stored.version_id)))
        .insert_header(("Expires", held.expires.format("%a, %d %b %Y %H:%M:%S GMT").to_string()))
        .body(media::body(&req, &stored.content)))
}

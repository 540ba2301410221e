//! `Appointment/$hold`: takes a proposed Appointment, makes it pending and its Slot's unit held
//! until the hold expires (the `Expires` header). Two ways to name it:
//! - calsync's: the proposed Appointment itself (`appointment`, or the body), answered with the
//!   held Appointment (201);
//! - IHE ITI-116's: `appointment-reference` to an option of `$find` (or a stored proposed
//!   Appointment), answered as the IG says: a searchset Bundle with the held Appointment (200).

use actix_web::HttpResponse;

use super::inputs::Call;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn handle(call: Call) -> Result<HttpResponse, ApiError> {
    let Call { req, cx, cases, inputs } = call;
    let by_reference = inputs.one("appointment-reference")?;
    let held = match &by_reference {
        Some(reference) => cases.hold_named(&cx, reference).await?,
        None => {
            let appointment =
                inputs.resource("appointment").or_else(|| inputs.resource("resource")).cloned().ok_or_else(|| {
                    ApiError::bad_request(
                        "$hold takes the proposed Appointment as parameter appointment, or appointment-reference",
                    )
                })?;
            cases.hold(&cx, appointment).await?
        }
    };
    let stored = &held.appointment;
    let mut answer = if by_reference.is_some() { HttpResponse::Ok() } else { HttpResponse::Created() };
    answer
        .content_type(FHIR_JSON)
        .insert_header(("Location", format!("{}/Appointment/{}/_history/1", cx.base, stored.id)))
        .insert_header(("ETag", format!("W/\"{}\"", stored.version_id)))
        .insert_header(("Expires", held.expires.format("%a, %d %b %Y %H:%M:%S GMT").to_string()));
    let body = match by_reference {
        Some(_) => media::body(&req, &super::book::ihe_bundle(&cx.base, &stored.content)),
        None => media::body(&req, &stored.content),
    };
    Ok(answer.body(body))
}

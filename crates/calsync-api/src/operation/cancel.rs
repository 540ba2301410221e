//! `POST /Appointment/{id}/$cancel`: cancels a booked or held Appointment; cancelling a cancelled
//! one changes nothing.

use actix_web::{HttpResponse, web};

use crate::context::Incoming;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn handle(at: Incoming, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let Incoming { req, cx, cases } = at;
    media::negotiate(&req)?;
    let id = calsync_usecase::resources::valid_id("Appointment", &path)?;
    let cancelled = cases.cancel(&cx, id).await?;
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &cancelled)))
}

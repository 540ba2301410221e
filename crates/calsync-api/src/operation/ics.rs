//! The confirmation of an appointment as iCalendar: `GET /Appointment/{id}/$ics`, or
//! `GET /Appointment/{id}` with `Accept: text/calendar`. Time, place and provider only.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use calsync_usecase::UseCases;

use crate::context::RequestContext;
use crate::outcome::ApiError;

/// The media type of the answer.
pub const TEXT_CALENDAR: &str = "text/calendar; charset=utf-8";

/// True when the request prefers iCalendar (`Accept` or `_format`).
pub fn wants_calendar(req: &HttpRequest) -> bool {
    let is_calendar = |v: &str| v.split(';').next().unwrap_or("").trim().eq_ignore_ascii_case("text/calendar");
    if let Some(format) = crate::media::query_value(req, "_format") {
        return is_calendar(&format) || format.eq_ignore_ascii_case("ics");
    }
    req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.split(',').any(is_calendar))
}

pub async fn handle(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    respond(&cx, &cases, &path).await
}

/// The invitation for Appointment `id`.
pub(crate) async fn respond(cx: &RequestContext, cases: &UseCases, id: &str) -> Result<HttpResponse, ApiError> {
    let (invitation, appointment) = cases.invitation(cx, id).await?;
    Ok(HttpResponse::Ok()
        .content_type(TEXT_CALENDAR)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"appointment-{}.ics\"", appointment.id),
        ))
        .insert_header((header::ETAG, format!("W/\"{}\"", appointment.version_id)))
        .body(invitation.to_ics()))
}

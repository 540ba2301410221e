//! `POST /Schedule/{id}/$import-ics`: replaces a participant's derived busy Slots with the busy
//! windows of an iCalendar file (body `text/calendar`). A file that cannot be read is a 400 and
//! the previous Slots stay.

use actix_web::{HttpResponse, web};
use calsync_usecase::import_calendar::Imported;
use serde_json::json;

use crate::context::Incoming;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn handle(at: Incoming, path: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let Incoming { req, cx, cases } = at;
    media::negotiate(&req)?;
    let id = calsync_usecase::resources::valid_id("Schedule", &path)?;
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("text/calendar") {
        return Err(ApiError::UnsupportedMediaType("send the calendar as text/calendar".into()));
    }
    let text = media::body_text(&body)?;
    let Imported { busy, added, removed } = cases.import_calendar(&cx, id, text).await?;
    let outcome = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational",
        "diagnostics": format!("{busy} busy windows; {added} added or changed, {removed} removed")}]});
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &outcome)))
}

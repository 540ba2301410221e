//! `POST /Schedule/{id}/$import-ics`: replaces a participant's derived busy Slots with the busy
//! windows of an iCalendar file (body `text/calendar`), over the sync horizon. Only start, end
//! and status are kept. A file that cannot be read is a 400 and the previous Slots stay.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_core::Interval;
use calsync_fhir::availability::{is_participant_schedule, participant_constraints};
use calsync_store::Store;
use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

/// How far ahead an imported calendar is expanded.
const HORIZON_DAYS: i64 = 180;

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let id = crate::interaction::resource_id("Schedule", &path)?.to_string();
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("text/calendar") {
        return Err(ApiError::UnsupportedMediaType("send the calendar as text/calendar".into()));
    }
    let text = media::body_text(&body)?;
    let Imported { busy, added, removed } = import_calendar(&store, &id, text, cx.now).await?;
    let outcome = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "information", "code": "informational",
        "diagnostics": format!("{busy} busy windows; {added} added or changed, {removed} removed")}]});
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &outcome)))
}

/// What an import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Busy windows in the calendar over the horizon.
    pub busy: usize,
    /// Busy Slots written (new or changed status).
    pub added: usize,
    /// Busy Slots of an earlier import that are gone.
    pub removed: usize,
}

/// Replaces the busy Slots an earlier import put on participant Schedule `id` with those of
/// the iCalendar `text`, in one transaction. A calendar that cannot be read changes nothing.
pub async fn import_calendar(
    store: &Store,
    id: &str,
    text: &str,
    now: chrono::DateTime<Utc>,
) -> Result<Imported, ApiError> {
    let schedule = store.read("Schedule", id).await?;
    if !is_participant_schedule(&schedule.content) {
        return Err(ApiError::Unprocessable {
            message: format!(
                "Schedule/{id} is not a participant's Schedule (its actors must be Patients or RelatedPersons)"
            ),
            expression: Some("Schedule.actor".into()),
        });
    }
    let (zone, _) = participant_constraints(&schedule.content)
        .map_err(|m| ApiError::Unprocessable { message: m, expression: Some("Schedule.extension".into()) })?;
    let horizon = Interval::new(now - TimeDelta::days(1), now + TimeDelta::days(HORIZON_DAYS));
    let expansion = calsync_ical::Calendar::parse(text)
        .and_then(|c| c.expand(horizon, zone.unwrap_or(chrono_tz::UTC)))
        .map_err(|e| ApiError::BadRequest(format!("the calendar cannot be read: {e}")))?;
    let applied = calsync_sync::apply(store, id, "ics", &expansion.busy(), horizon, now).await?;
    Ok(Imported { busy: applied.busy, added: applied.added, removed: applied.removed })
}

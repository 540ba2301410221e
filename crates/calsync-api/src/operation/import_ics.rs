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
    let key = format!("Schedule/{id}");
    let prefix = format!("ics-{}-", calsync_fhir::index::fnv(&key));
    let wanted: Vec<(String, serde_json::Value)> = expansion
        .busy()
        .into_iter()
        .map(|b| {
            let (start, end) = (
                b.interval.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                b.interval.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
            // Same window, same id: re-importing an unchanged calendar changes nothing.
            let minutes = (b.interval.end - b.interval.start).num_minutes();
            let slot_id = format!("{prefix}{}-{minutes}", b.interval.start.timestamp());
            let slot = json!({"resourceType": "Slot", "id": slot_id, "schedule": {"reference": key},
                "status": b.status.code(), "start": start, "end": end});
            (slot_id, slot)
        })
        .collect();
    let txn = store.begin().await?;
    let existing = txn
        .slots_overlapping(Some(&key), horizon.start - TimeDelta::days(3650), horizon.end + TimeDelta::days(3650))
        .await?;
    let mut removed = 0;
    for row in &existing {
        if !wanted.iter().any(|(w, _)| w == &row.id) && row.id.starts_with(&prefix) {
            txn.delete("Slot", &row.id).await?;
            removed += 1;
        }
    }
    let mut added = 0;
    for (slot_id, slot) in &wanted {
        let same = existing.iter().find(|r| &r.id == slot_id).is_some_and(|r| r.status == slot["status"]);
        if !same {
            txn.update("Slot", slot_id, slot.clone(), None).await?;
            added += 1;
        }
    }
    txn.commit().await?;
    tracing::info!(schedule = %id, busy = wanted.len(), added, removed, "calendar imported");
    Ok(Imported { busy: wanted.len(), added, removed })
}

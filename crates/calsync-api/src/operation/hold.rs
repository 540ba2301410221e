//! `Appointment/$hold`: takes a proposed Appointment, makes it pending and its Slot
//! busy-tentative until the hold expires (`Expires` header). Expired holds are released by
//! [`sweep_expired_holds`], which the server runs on its own; `$book` also treats an expired
//! hold as free.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_store::Store;
use calsync_store::search::{Direction, IndexFilter, ResourceSearch, SortBy};
use chrono::{TimeDelta, Utc};
use serde_json::json;

use super::Inputs;
use super::appointment::{Offer, Units, conflict, read_for_booking, text};
use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

/// How long a hold lasts.
#[derive(Debug, Clone, Copy)]
pub struct HoldPolicy {
    /// Time from `$hold` to expiry.
    pub duration: TimeDelta,
}

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    policy: web::Data<HoldPolicy>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let inputs = Inputs::read(&req, &body)?;
    let mut appointment =
        inputs.resource("appointment").or_else(|| inputs.resource("resource")).cloned().ok_or_else(|| {
            ApiError::BadRequest("$hold takes the proposed Appointment as parameter appointment".into())
        })?;
    if appointment["status"] != "proposed" {
        return Err(ApiError::Unprocessable {
            message: "only a proposed Appointment can be held".into(),
            expression: Some("Appointment.status".into()),
        });
    }
    let offer = Offer::read(&appointment)?;
    let now = cx.now;
    let expires = now + policy.duration;
    let txn = store.begin(now).await?;
    let slot = read_for_booking(&txn, "Slot", &offer.slot).await?;
    let (start, end) = (slot.content["start"].as_str().unwrap_or(""), slot.content["end"].as_str().unwrap_or(""));
    let inside = chrono::DateTime::parse_from_rfc3339(start).is_ok_and(|s| s.to_utc() <= offer.interval.start)
        && chrono::DateTime::parse_from_rfc3339(end).is_ok_and(|e| e.to_utc() >= offer.interval.end);
    if !inside {
        return Err(ApiError::Conflict(format!("the appointment does not lie inside Slot/{}", offer.slot)));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let mut units = Units::of(&slot.content);
    units
        .take(&format!("Appointment/{id}"), Some(expires), now)
        .map_err(|why| ApiError::Conflict(format!("Slot/{} cannot be held: {why}", offer.slot)))?;
    appointment["status"] = json!("pending");
    appointment["extension"] = json!([{"url": calsync_fhir::booking::HOLD_EXTENSION, "extension": [
        {"url": "expires", "valueInstant": text(expires)}]}]);
    if let Some(o) = appointment.as_object_mut() {
        o.insert("id".into(), json!(id));
        o.remove("meta");
    }
    let (held, _) = txn.update("Appointment", &id, appointment, None).await.map_err(conflict)?;
    let mut slot_content = slot.content.clone();
    units.write(&mut slot_content);
    txn.update("Slot", &offer.slot, slot_content, Some(slot.version_id)).await.map_err(conflict)?;
    txn.commit().await.map_err(conflict)?;
    tracing::info!(appointment = %held.id, slot = %offer.slot, "held");
    Ok(HttpResponse::Created()
        .content_type(FHIR_JSON)
        .insert_header(("Location", format!("{}/Appointment/{}/_history/1", cx.base, held.id)))
        .insert_header(("ETag", format!("W/\"{}\"", held.version_id)))
        .insert_header(("Expires", expires.format("%a, %d %b %Y %H:%M:%S GMT").to_string()))
        .body(media::body(&req, &held.content)))
}

/// Releases every hold that has expired: the Appointment is cancelled and its Slot free again
/// (unless someone else took it since). Returns how many were released.
pub async fn sweep_expired_holds(
    store: &Store,
    now: chrono::DateTime<Utc>,
) -> Result<usize, calsync_store::StoreError> {
    let pending = IndexFilter::any_exact("status", ["pending".to_string()]);
    let search = ResourceSearch { index: vec![pending], ..Default::default() };
    let page = store.search_resources("Appointment", &search, (SortBy::Id, Direction::Ascending), None, 500).await?;
    let mut released = 0;
    for appointment in page.resources {
        let Some(expires) = hold_expiry(&appointment.content) else { continue };
        if expires > now {
            continue;
        }
        let Ok(offer) = Offer::read(&appointment.content) else { continue };
        let txn = store.begin(now).await?;
        let current = txn.read("Appointment", &appointment.id).await?;
        if current.content["status"] != "pending" {
            continue;
        }
        let mut cancelled = current.content.clone();
        cancelled["status"] = json!("cancelled");
        cancelled["cancelationReason"] = json!({"text": "hold expired"});
        txn.update("Appointment", &appointment.id, cancelled, Some(current.version_id)).await?;
        if let Ok(slot) = txn.read("Slot", &offer.slot).await {
            let mut units = Units::of(&slot.content);
            if units.release(&format!("Appointment/{}", appointment.id), now) {
                let mut freed = slot.content.clone();
                units.write(&mut freed);
                txn.update("Slot", &offer.slot, freed, Some(slot.version_id)).await?;
            }
        }
        txn.commit().await?;
        released += 1;
    }
    Ok(released)
}

/// The expiry recorded on a held Appointment.
pub(crate) fn hold_expiry(appointment: &serde_json::Value) -> Option<chrono::DateTime<Utc>> {
    let ext =
        appointment["extension"].as_array()?.iter().find(|e| e["url"] == calsync_fhir::booking::HOLD_EXTENSION)?;
    let until = ext["extension"].as_array()?.iter().find(|p| p["url"] == "expires")?["valueInstant"].as_str()?;
    Some(chrono::DateTime::parse_from_rfc3339(until).ok()?.to_utc())
}

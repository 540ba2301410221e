//! `POST /Appointment/{id}/$cancel`: in one transaction the Appointment becomes cancelled, its
//! provider Slot free again, and the busy Slots it put on participants' derived Schedules go.
//! Cancelling a cancelled Appointment changes nothing.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_store::Store;
use serde_json::json;

use super::appointment::{Offer, Units, conflict, participant_slot_id};
use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let id = crate::interaction::resource_id("Appointment", &path)?.to_string();
    let txn = store.begin(cx.now).await?;
    let appointment = txn.read("Appointment", &id).await?;
    if appointment.content["status"] == "cancelled" {
        return Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &appointment.content)));
    }
    if !matches!(appointment.content["status"].as_str(), Some("booked" | "pending")) {
        return Err(ApiError::Conflict(format!(
            "Appointment/{id} is {}: only booked or held appointments can be cancelled",
            appointment.content["status"].as_str().unwrap_or("unknown")
        )));
    }
    let offer = Offer::read(&appointment.content)?;
    if let Ok(slot) = txn.read("Slot", &offer.slot).await {
        let mut units = Units::of(&slot.content);
        if units.release(&format!("Appointment/{id}"), cx.now) {
            let mut freed = slot.content.clone();
            units.write(&mut freed);
            txn.update("Slot", &offer.slot, freed, Some(slot.version_id)).await.map_err(conflict)?;
        }
    }
    for n in 0..offer.people.len() {
        txn.delete("Slot", &participant_slot_id(&id, n)).await?;
    }
    let mut cancelled = appointment.content.clone();
    cancelled["status"] = json!("cancelled");
    let (stored, _) =
        txn.update("Appointment", &id, cancelled, Some(appointment.version_id)).await.map_err(conflict)?;
    txn.commit().await.map_err(conflict)?;
    tracing::info!(appointment = %id, "cancelled");
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &stored.content)))
}

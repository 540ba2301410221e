//! Holding an offered time: the proposed Appointment becomes pending and takes a unit of its
//! Slot until the hold expires. Expired holds are released by
//! [`UseCases::release_expired_holds`], which the system runs on its own; booking also treats an
//! expired hold as free.

use calsync_store::StoredResource;
use calsync_store::search::{Direction, IndexFilter, ResourceSearch, SortBy};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use calsync_fhir::audit::Action;

use crate::access::Interaction;
use crate::compartment::appointment_actors;
use crate::offer::{Offer, Units, conflict, read_for_booking, text};
use crate::{Context, Outcome, UseCaseError, UseCases};

/// A held Appointment.
#[derive(Debug, Clone)]
pub struct Held {
    /// The pending Appointment as stored.
    pub appointment: StoredResource,
    /// When the hold ends.
    pub expires: DateTime<Utc>,
}

/// What an `appointment-reference` names (`Appointment/{id}`, `{id}`, `urn:uuid:{id}` or a URL
/// ending in `Appointment/{id}`).
#[derive(Debug, Clone)]
pub enum Named {
    /// An option `$find` offered (IHE), or an Appointment held from one: kept for a hold's time.
    Offered(Value),
    /// An Appointment as stored.
    Stored(StoredResource),
}

impl UseCases {
    /// The Appointment `reference` names: an option of an IHE `$find` (or one held by
    /// reference) while it is kept, else a stored Appointment.
    pub async fn named_appointment(&self, cx: &Context, reference: &str) -> Outcome<Named> {
        let reach = self.authorize(cx, "Appointment", Interaction::Read).await?;
        let id = reference.strip_prefix("urn:uuid:").unwrap_or(reference);
        let id = id.rsplit_once("Appointment/").map_or(id, |(_, id)| id);
        let id = crate::resources::valid_id("Appointment", id)?;
        if let Some(offered) = self.store.proposal(id, cx.now).await? {
            Self::permit_participants(&reach, appointment_actors(&offered).iter().map(String::as_str))?;
            return Ok(Named::Offered(offered));
        }
        match self.store.read("Appointment", id).await {
            Ok(stored) => {
                self.visible(cx, &reach, &stored).await?;
                Ok(Named::Stored(stored))
            }
            Err(calsync_store::StoreError::NotFound(..)) => Err(UseCaseError::NotFound(format!(
                "Appointment/{id} is neither stored nor an option $find offered in the last {} minutes",
                self.hold.num_minutes()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// Holds the option or the proposed Appointment `reference` names ([`UseCases::named_appointment`]);
    /// the held Appointment is kept beside the options, so that `$book` knows it was held this way.
    pub async fn hold_named(&self, cx: &Context, reference: &str) -> Outcome<Held> {
        let appointment = match self.named_appointment(cx, reference).await? {
            Named::Offered(a) => a,
            Named::Stored(a) if a.content["status"] == "proposed" => a.content,
            Named::Stored(a) => {
                return Err(UseCaseError::Conflict(format!(
                    "Appointment/{} is {}: only a proposed one can be held",
                    a.id,
                    a.content["status"].as_str().unwrap_or("unknown")
                )));
            }
        };
        let held = self.hold(cx, appointment).await?;
        let kept = [(held.appointment.id.clone(), held.appointment.content.clone())];
        self.store.remember_proposals(&kept, held.expires, cx.now).await?;
        Ok(held)
    }

    /// Holds the time a proposed Appointment (as `$find` offered it) names.
    pub async fn hold(&self, cx: &Context, mut appointment: Value) -> Outcome<Held> {
        let reach = self.authorize(cx, "Appointment", Interaction::Create).await?;
        Self::permit_appointment(&reach, &appointment)?;
        if appointment["status"] != "proposed" {
            return Err(UseCaseError::element("Appointment.status", "only a proposed Appointment can be held"));
        }
        // What is stored must be FHIR, as any write's.
        calsync_fhir::validate::resource(&appointment.to_string(), "Appointment")?;
        let offer = Offer::read(&appointment)?;
        let now = cx.now;
        let expires = now + self.hold;
        let txn = self.store.begin(now).await?;
        let slot = read_for_booking(&txn, "Slot", &offer.slot).await?;
        let (start, end) = (slot.content["start"].as_str().unwrap_or(""), slot.content["end"].as_str().unwrap_or(""));
        let inside = DateTime::parse_from_rfc3339(start).is_ok_and(|s| s.to_utc() <= offer.interval.start)
            && DateTime::parse_from_rfc3339(end).is_ok_and(|e| e.to_utc() >= offer.interval.end);
        if !inside {
            return Err(UseCaseError::Conflict(format!("the appointment does not lie inside Slot/{}", offer.slot)));
        }
        let id = uuid::Uuid::new_v4().to_string();
        let mut units = Units::of(&slot.content);
        units
            .take(&format!("Appointment/{id}"), Some(expires), now)
            .map_err(|why| UseCaseError::Conflict(format!("Slot/{} cannot be held: {why}", offer.slot)))?;
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
        self.audit_resources(cx, Action::Create, "$hold", [("Appointment", &held.content)]).await?;
        Ok(Held { appointment: held, expires })
    }

    /// Releases every hold that has expired at `now`: the Appointment is cancelled and its Slot
    /// free again (unless someone else took it since). Returns how many were released.
    pub async fn release_expired_holds(&self, now: DateTime<Utc>) -> Outcome<usize> {
        let store = &self.store;
        let pending = IndexFilter::any_exact("status", ["pending".to_string()]);
        let search = ResourceSearch { index: vec![pending], ..Default::default() };
        let page =
            store.search_resources("Appointment", &search, (SortBy::Id, Direction::Ascending), None, 500).await?;
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
}

/// The expiry recorded on a held Appointment.
fn hold_expiry(appointment: &Value) -> Option<DateTime<Utc>> {
    let ext =
        appointment["extension"].as_array()?.iter().find(|e| e["url"] == calsync_fhir::booking::HOLD_EXTENSION)?;
    let until = ext["extension"].as_array()?.iter().find(|p| p["url"] == "expires")?["valueInstant"].as_str()?;
    Some(DateTime::parse_from_rfc3339(until).ok()?.to_utc())
}

//! Cancelling a booked or held Appointment: in one transaction it becomes cancelled, its
//! provider Slot gives the unit back, and the busy Slots it put on participants' derived
//! Schedules go. Cancelling a cancelled Appointment changes nothing.

use serde_json::{Value, json};

use calsync_fhir::audit::Action;

use crate::access::Interaction;
use crate::compartment::Reach;
use crate::offer::{Offer, Units, conflict, participant_slot_id};
use crate::{Context, Outcome, UseCaseError, UseCases};

impl UseCases {
    /// Cancels Appointment `id`; returns it as it is now.
    pub async fn cancel(&self, cx: &Context, id: &str) -> Outcome<Value> {
        let reach = self.authorize(cx, "Appointment", Interaction::Update).await?;
        if let Reach::Person(_) = reach {
            let appointment = self.store.read("Appointment", crate::resources::valid_id("Appointment", id)?).await?;
            // Whoever takes part (or acts for someone who does) may cancel.
            self.visible(cx, &reach, &appointment).await?;
        }
        let txn = self.store.begin(cx.now).await?;
        let appointment = txn.read("Appointment", id).await?;
        if appointment.content["status"] == "cancelled" {
            return Ok(appointment.content);
        }
        if !matches!(appointment.content["status"].as_str(), Some("booked" | "pending")) {
            return Err(UseCaseError::Conflict(format!(
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
            txn.delete("Slot", &participant_slot_id(id, n)).await?;
        }
        let mut cancelled = appointment.content.clone();
        cancelled["status"] = json!("cancelled");
        let (stored, _) =
            txn.update("Appointment", id, cancelled, Some(appointment.version_id)).await.map_err(conflict)?;
        txn.commit().await.map_err(conflict)?;
        tracing::info!(appointment = %id, "cancelled");
        self.audit_resources(cx, Action::Update, "$cancel", [("Appointment", &stored.content)]).await?;
        Ok(stored.content)
    }
}

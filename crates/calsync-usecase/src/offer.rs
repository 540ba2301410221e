//! What holding, booking and cancelling share: reading the Appointment on offer, the hold marks on
//! a Slot, and the participants' busy Slots an appointment owns.

use calsync_core::Interval;
use calsync_store::{StoreError, StoreTxn};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

pub(crate) use calsync_fhir::booking::Units;

use crate::UseCaseError;

/// An appointment on offer: the provider Slot, its time, and who takes part.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub slot: String,
    pub interval: Interval,
    /// Patients and RelatedPersons: (reference, required).
    pub people: Vec<(String, bool)>,
}

fn instant(v: &Value, name: &str) -> Result<DateTime<Utc>, UseCaseError> {
    let text = v[name].as_str().ok_or_else(|| UseCaseError::Unprocessable {
        message: format!("Appointment.{name} is required"),
        expression: Some(format!("Appointment.{name}")),
    })?;
    DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).map_err(|_| UseCaseError::Unprocessable {
        message: format!("Appointment.{name} {text:?} is not an instant"),
        expression: Some(format!("Appointment.{name}")),
    })
}

impl Offer {
    /// Reads a proposed (or held) Appointment.
    pub fn read(appointment: &Value) -> Result<Offer, UseCaseError> {
        if appointment["resourceType"] != "Appointment" {
            return Err(UseCaseError::Invalid("the appointment parameter must be an Appointment".into()));
        }
        let slots: Vec<&str> =
            appointment["slot"].as_array().into_iter().flatten().filter_map(|s| s["reference"].as_str()).collect();
        let [slot] = slots.as_slice() else {
            return Err(UseCaseError::Unprocessable {
                message: "the Appointment must name exactly one Slot".into(),
                expression: Some("Appointment.slot".into()),
            });
        };
        let (_, slot) = crate::typed_reference(slot, &["Slot"], "Appointment.slot")?;
        let interval = Interval::new(instant(appointment, "start")?, instant(appointment, "end")?);
        if interval.is_empty() {
            return Err(UseCaseError::Unprocessable {
                message: "Appointment.end must be after Appointment.start".into(),
                expression: Some("Appointment.end".into()),
            });
        }
        let people = appointment["participant"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let r = p["actor"]["reference"].as_str()?;
                let key = calsync_fhir::index::reference_key(r)?;
                calsync_fhir::availability::is_participant_reference(&key)
                    .then(|| (key, p["required"].as_str() != Some("optional")))
            })
            .collect();
        Ok(Offer { slot, interval, people })
    }
}

/// Text of an instant as the store writes it.
pub(crate) fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Ids of the busy Slots an appointment puts on its participants' derived Schedules.
pub(crate) fn participant_slot_id(appointment_id: &str, n: usize) -> String {
    format!("{appointment_id}-p{n}")
}

/// A conflict of the store inside a booking is the client's 409: someone else changed the same
/// Slot or participant at the same time.
pub(crate) fn conflict(e: StoreError) -> UseCaseError {
    match e {
        StoreError::Concurrent(..) | StoreError::VersionConflict { .. } => {
            UseCaseError::Conflict("the Slot or a participant's Schedule changed at the same time; search again".into())
        }
        other => other.into(),
    }
}

/// Reads a resource in a transaction; a missing one is a 409 (`what` changed since it was offered).
pub(crate) async fn read_for_booking(
    txn: &StoreTxn<'_>,
    t: &str,
    id: &str,
) -> Result<calsync_store::StoredResource, UseCaseError> {
    match txn.read(t, id).await {
        Ok(r) => Ok(r),
        Err(StoreError::NotFound(..) | StoreError::Gone(..)) => {
            Err(UseCaseError::Conflict(format!("{t}/{id} no longer exists")))
        }
        Err(e) => Err(e.into()),
    }
}

//! What `$hold`, `$book` and `$cancel` share: reading the Appointment on offer, the hold marks on
//! a Slot, and the participants' busy Slots an appointment owns.

use calsync_core::Interval;
use calsync_store::{StoreError, StoreTxn};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::outcome::ApiError;

/// On a held Slot: until when, and for which Appointment.
pub const HOLD_EXTENSION: &str = "https://calsync.example.org/fhir/StructureDefinition/hold";

/// An appointment on offer: the provider Slot, its time, and who takes part.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub slot: String,
    pub interval: Interval,
    /// Patients and RelatedPersons: (reference, required).
    pub people: Vec<(String, bool)>,
}

fn instant(v: &Value, name: &str) -> Result<DateTime<Utc>, ApiError> {
    let text = v[name].as_str().ok_or_else(|| ApiError::Unprocessable {
        message: format!("Appointment.{name} is required"),
        expression: Some(format!("Appointment.{name}")),
    })?;
    DateTime::parse_from_rfc3339(text).map(|t| t.to_utc()).map_err(|_| ApiError::Unprocessable {
        message: format!("Appointment.{name} {text:?} is not an instant"),
        expression: Some(format!("Appointment.{name}")),
    })
}

impl Offer {
    /// Reads a proposed (or held) Appointment.
    pub fn read(appointment: &Value) -> Result<Offer, ApiError> {
        if appointment["resourceType"] != "Appointment" {
            return Err(ApiError::BadRequest("the appointment parameter must be an Appointment".into()));
        }
        let slots: Vec<&str> =
            appointment["slot"].as_array().into_iter().flatten().filter_map(|s| s["reference"].as_str()).collect();
        let [slot] = slots.as_slice() else {
            return Err(ApiError::Unprocessable {
                message: "the Appointment must name exactly one Slot".into(),
                expression: Some("Appointment.slot".into()),
            });
        };
        let (_, slot) = super::typed_reference(slot, &["Slot"], "Appointment.slot")?;
        let interval = Interval::new(instant(appointment, "start")?, instant(appointment, "end")?);
        if interval.is_empty() {
            return Err(ApiError::Unprocessable {
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

/// The hold on a Slot: (Appointment reference, expiry), if held.
pub(crate) fn hold_of(slot: &Value) -> Option<(String, DateTime<Utc>)> {
    let ext = slot["extension"].as_array()?.iter().find(|e| e["url"] == HOLD_EXTENSION)?;
    let parts = ext["extension"].as_array()?;
    let by = parts.iter().find(|p| p["url"] == "appointment")?["valueReference"]["reference"].as_str()?;
    let until = parts.iter().find(|p| p["url"] == "expires")?["valueInstant"].as_str()?;
    Some((by.to_string(), DateTime::parse_from_rfc3339(until).ok()?.to_utc()))
}

/// Marks a Slot held by `appointment` until `expires`.
pub(crate) fn set_hold(slot: &mut Value, appointment: &str, expires: DateTime<Utc>) {
    clear_hold(slot);
    slot["status"] = json!("busy-tentative");
    let hold = json!({"url": HOLD_EXTENSION, "extension": [
        {"url": "appointment", "valueReference": {"reference": appointment}},
        {"url": "expires", "valueInstant": text(expires)}]});
    match slot["extension"].as_array_mut() {
        Some(list) => list.push(hold),
        None => slot["extension"] = json!([hold]),
    }
}

/// Removes a hold mark.
pub(crate) fn clear_hold(slot: &mut Value) {
    if let Some(list) = slot["extension"].as_array_mut() {
        list.retain(|e| e["url"] != HOLD_EXTENSION);
        if list.is_empty() {
            slot.as_object_mut().map(|o| o.remove("extension"));
        }
    }
}

/// True when `slot` can be taken by `appointment` (None: by a new one) at `now`: free, or held
/// by that appointment, or held by anyone whose hold has expired.
pub(crate) fn takeable(slot: &Value, appointment: Option<&str>, now: DateTime<Utc>) -> bool {
    match slot["status"].as_str() {
        Some("free") => true,
        Some("busy-tentative") => {
            hold_of(slot).is_some_and(|(by, until)| until <= now || appointment.is_some_and(|a| a == by))
        }
        _ => false,
    }
}

/// Ids of the busy Slots an appointment puts on its participants' derived Schedules.
pub(crate) fn participant_slot_id(appointment_id: &str, n: usize) -> String {
    format!("{appointment_id}-p{n}")
}

/// A conflict of the store inside a booking is the client's 409: someone else changed the same
/// Slot or participant at the same time.
pub(crate) fn conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Concurrent(..) | StoreError::VersionConflict { .. } => {
            ApiError::Conflict("the Slot or a participant's Schedule changed at the same time; search again".into())
        }
        other => other.into(),
    }
}

/// Reads a resource in a transaction; a missing one is a 409 (`what` changed since it was offered).
pub(crate) async fn read_for_booking(
    txn: &StoreTxn<'_>,
    t: &str,
    id: &str,
) -> Result<calsync_store::StoredResource, ApiError> {
    match txn.read(t, id).await {
        Ok(r) => Ok(r),
        Err(StoreError::NotFound(..) | StoreError::Gone(..)) => {
            Err(ApiError::Conflict(format!("{t}/{id} no longer exists")))
        }
        Err(e) => Err(e.into()),
    }
}

//! What `$hold`, `$book` and `$cancel` share: reading the Appointment on offer, the hold marks on
//! a Slot, and the participants' busy Slots an appointment owns.

use calsync_core::Interval;
use calsync_store::{StoreError, StoreTxn};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::outcome::ApiError;

/// On a held Slot, once per hold: until when, and for which Appointment.
pub const HOLD_EXTENSION: &str = "https://calsync.example.org/fhir/StructureDefinition/hold";
/// On a booked Slot, once per booking: the Appointment.
pub const BOOKED_EXTENSION: &str = "https://calsync.example.org/fhir/StructureDefinition/booked";

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

/// A provider Slot's units of capacity and who has them.
///
/// A Slot takes one appointment, or as many as its SMART Scheduling Links `slot-capacity`
/// extension says: that value is what is still available and goes down by one per hold or
/// booking and back up when one is released. Each unit taken is recorded on the Slot (a hold
/// with its expiry, or a booking) so that a release gives back exactly what was taken. The
/// status follows: `free` while a unit is left, else `busy-tentative` while a hold is among the
/// takers, else `busy`. A Slot that is busy with no recorded taker (a publisher said so) can
/// never be taken.
#[derive(Debug)]
pub(crate) struct Units {
    /// Holds: (Appointment reference, expiry).
    holds: Vec<(String, DateTime<Utc>)>,
    /// Bookings: Appointment references.
    booked: Vec<String>,
    /// Units left.
    left: i64,
    /// Whether the Slot carries `slot-capacity` (then `left` is written back into it).
    counted: bool,
    /// The status before any change.
    status: String,
}

fn capacity_extension() -> String {
    format!("{}slot-capacity", calsync_fhir::SSL_EXTENSION_BASE)
}

fn extensions<'a>(slot: &'a Value, url: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    slot["extension"].as_array().into_iter().flatten().filter(move |e| e["url"] == url)
}

fn part<'a>(ext: &'a Value, name: &str) -> Option<&'a Value> {
    ext["extension"].as_array()?.iter().find(|p| p["url"] == name)
}

impl Units {
    /// Reads what a Slot records.
    pub fn of(slot: &Value) -> Units {
        let holds = extensions(slot, HOLD_EXTENSION)
            .filter_map(|e| {
                let by = part(e, "appointment")?["valueReference"]["reference"].as_str()?;
                let until = part(e, "expires")?["valueInstant"].as_str()?;
                Some((by.to_string(), DateTime::parse_from_rfc3339(until).ok()?.to_utc()))
            })
            .collect();
        let booked = extensions(slot, BOOKED_EXTENSION)
            .filter_map(|e| e["valueReference"]["reference"].as_str().map(String::from))
            .collect();
        let status = slot["status"].as_str().unwrap_or_default().to_string();
        let capacity = extensions(slot, &capacity_extension()).find_map(|e| e["valueInteger"].as_i64());
        let (left, counted) = match capacity {
            Some(n) => (n.max(0), true),
            None => (i64::from(status == "free"), false),
        };
        Units { holds, booked, left, counted, status }
    }

    /// True when `appointment` holds or booked a unit.
    #[cfg(test)]
    fn has(&self, appointment: &str) -> bool {
        self.holds.iter().any(|(by, _)| by == appointment) || self.booked.iter().any(|b| b == appointment)
    }

    /// Gives back what `appointment` has, and the units of every hold expired by `now`; true
    /// when any unit came back (the Slot must then be written).
    pub fn release(&mut self, appointment: &str, now: DateTime<Utc>) -> bool {
        let before = self.holds.len() + self.booked.len();
        self.holds.retain(|(by, until)| by != appointment && *until > now);
        self.booked.retain(|by| by != appointment);
        let released = (before - self.holds.len() - self.booked.len()) as i64;
        self.left += released;
        released > 0
    }

    /// Takes one unit for `appointment`: a hold until `hold_until`, or a booking. A hold the same
    /// appointment has becomes the booking. Err says why the Slot cannot be taken.
    pub fn take(
        &mut self,
        appointment: &str,
        hold_until: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        let untracked = self.holds.is_empty() && self.booked.is_empty();
        if matches!(self.status.as_str(), "busy-unavailable" | "entered-in-error")
            || (self.status != "free" && untracked)
        {
            return Err(format!("it is {}", if self.status.is_empty() { "without status" } else { &self.status }));
        }
        if self.booked.iter().any(|b| b == appointment) {
            return Err(format!("{appointment} has booked it already"));
        }
        self.release(appointment, now);
        if self.left < 1 {
            return Err(if self.holds.is_empty() { "it is fully booked".into() } else { "it is held".into() });
        }
        self.left -= 1;
        match hold_until {
            Some(until) => self.holds.push((appointment.to_string(), until)),
            None => self.booked.push(appointment.to_string()),
        }
        Ok(())
    }

    /// The status these units give the Slot.
    pub fn status(&self) -> &'static str {
        if self.left > 0 {
            "free"
        } else if self.holds.is_empty() {
            "busy"
        } else {
            "busy-tentative"
        }
    }

    /// Writes the units, their records and the status into `slot`.
    pub fn write(&self, slot: &mut Value) {
        let capacity = capacity_extension();
        let mut list: Vec<Value> = slot["extension"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["url"] != HOLD_EXTENSION && e["url"] != BOOKED_EXTENSION)
            .cloned()
            .collect();
        if self.counted {
            for e in list.iter_mut().filter(|e| e["url"] == capacity.as_str()) {
                e["valueInteger"] = json!(self.left);
            }
        }
        list.extend(self.holds.iter().map(|(by, until)| {
            json!({"url": HOLD_EXTENSION, "extension": [
                {"url": "appointment", "valueReference": {"reference": by}},
                {"url": "expires", "valueInstant": text(*until)}]})
        }));
        list.extend(self.booked.iter().map(|by| json!({"url": BOOKED_EXTENSION, "valueReference": {"reference": by}})));
        match slot.as_object_mut() {
            Some(o) if list.is_empty() => {
                o.remove("extension");
            }
            Some(o) => {
                o.insert("extension".into(), Value::Array(list));
            }
            None => return,
        }
        slot["status"] = json!(self.status());
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn slot(status: &str, capacity: Option<i64>) -> Value {
        let mut s = json!({"resourceType": "Slot", "id": "s", "status": status,
            "start": "2027-01-04T14:00:00Z", "end": "2027-01-04T14:30:00Z"});
        if let Some(n) = capacity {
            s["extension"] = json!([{"url": capacity_extension(), "valueInteger": n}]);
        }
        s
    }

    fn after(units: &Units, mut s: Value) -> Value {
        units.write(&mut s);
        s
    }

    fn left(s: &Value) -> Option<i64> {
        extensions(s, &capacity_extension()).find_map(|e| e["valueInteger"].as_i64())
    }

    #[test]
    fn a_plain_slot_takes_one_appointment_and_frees_on_release() {
        let now = Utc::now();
        let mut units = Units::of(&slot("free", None));
        units.take("Appointment/a", None, now).unwrap();
        let s = after(&units, slot("free", None));
        assert_eq!(s["status"], "busy");
        let mut units = Units::of(&s);
        assert_eq!(units.take("Appointment/b", None, now).unwrap_err(), "it is fully booked");
        assert!(units.release("Appointment/a", now));
        let s = after(&units, s);
        assert_eq!(s["status"], "free");
        assert!(s.get("extension").is_none(), "no records are left behind: {s}");
    }

    #[test]
    fn capacity_goes_down_per_unit_and_the_slot_stays_free_until_the_last() {
        let now = Utc::now();
        let s = slot("free", Some(2));
        let mut units = Units::of(&s);
        units.take("Appointment/a", Some(now + TimeDelta::minutes(10)), now).unwrap();
        let s = after(&units, s);
        assert_eq!((s["status"].as_str(), left(&s)), (Some("free"), Some(1)));
        let mut units = Units::of(&s);
        units.take("Appointment/b", None, now).unwrap();
        let s = after(&units, s);
        assert_eq!((s["status"].as_str(), left(&s)), (Some("busy-tentative"), Some(0)));
        let mut units = Units::of(&s);
        assert_eq!(units.take("Appointment/c", None, now).unwrap_err(), "it is held");
        // The hold becomes a booking without needing a second unit.
        units.take("Appointment/a", None, now).unwrap();
        let s = after(&units, s);
        assert_eq!((s["status"].as_str(), left(&s)), (Some("busy"), Some(0)));
        let mut units = Units::of(&s);
        assert!(units.take("Appointment/a", None, now).unwrap_err().contains("booked it already"));
        assert!(units.release("Appointment/b", now));
        assert!(!units.release("Appointment/b", now), "a unit is given back once");
        let s = after(&units, s);
        assert_eq!((s["status"].as_str(), left(&s)), (Some("free"), Some(1)));
    }

    #[test]
    fn an_expired_hold_gives_its_unit_back_to_the_next_taker() {
        let now = Utc::now();
        let s = slot("free", None);
        let mut units = Units::of(&s);
        units.take("Appointment/a", Some(now + TimeDelta::minutes(10)), now).unwrap();
        let s = after(&units, s);
        assert_eq!(s["status"], "busy-tentative");
        let mut units = Units::of(&s);
        assert!(units.take("Appointment/b", None, now).is_err());
        let later = now + TimeDelta::minutes(11);
        units.take("Appointment/b", None, later).unwrap();
        let s = after(&units, s);
        assert_eq!(s["status"], "busy");
        assert!(!Units::of(&s).has("Appointment/a"));
        assert!(Units::of(&s).has("Appointment/b"));
    }

    #[test]
    fn a_slot_busy_by_its_publisher_or_unavailable_is_never_taken() {
        let now = Utc::now();
        for status in ["busy", "busy-unavailable", "entered-in-error", "busy-tentative"] {
            assert!(Units::of(&slot(status, None)).take("Appointment/a", None, now).is_err(), "{status}");
        }
        assert!(Units::of(&slot("busy-unavailable", Some(3))).take("Appointment/a", None, now).is_err());
        assert!(Units::of(&slot("free", Some(0))).take("Appointment/a", None, now).is_err());
    }
}

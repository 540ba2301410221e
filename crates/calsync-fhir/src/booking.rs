//! A provider Slot's places and who took them: holds and bookings recorded on the Slot itself.
//!
//! `$hold`, `$book` and `$cancel` take and give back places; ingest of a publisher's new version
//! of a Slot carries calsync's takers over ([`carry_takers`]).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::SSL_EXTENSION_BASE;

/// On a held Slot, once per hold: until when, and for which Appointment.
pub const HOLD_EXTENSION: &str = "https://calsync.example.org/fhir/StructureDefinition/hold";
/// On a booked Slot, once per booking: the Appointment.
pub const BOOKED_EXTENSION: &str = "https://calsync.example.org/fhir/StructureDefinition/booked";

fn text(t: DateTime<Utc>) -> String {
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
pub struct Units {
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

/// A Slot's SMART Scheduling Links `booking-deep-link`, from its `extension` list: where a
/// patient books at the publisher's portal, if it has one. calsync hands this link to patients'
/// apps, which open it, so every such link must be a [`crate::web_link`]; an error says why not.
pub fn deep_link(extensions: &Value) -> Result<Option<url::Url>, String> {
    let kind = format!("{SSL_EXTENSION_BASE}booking-deep-link");
    let mut found = None;
    for e in extensions.as_array().into_iter().flatten().filter(|e| e["url"] == kind.as_str()) {
        let text = e["valueUrl"].as_str().ok_or("a booking-deep-link needs a valueUrl")?;
        let link = crate::web_link(text).map_err(|e| format!("booking-deep-link {e}"))?;
        found.get_or_insert(link);
    }
    Ok(found)
}

fn capacity_extension() -> String {
    format!("{SSL_EXTENSION_BASE}slot-capacity")
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

    /// The appointments that hold a unit at `now` or booked one.
    pub fn takers(&self, now: DateTime<Utc>) -> Vec<String> {
        let held = self.holds.iter().filter(|(_, until)| *until > now).map(|(by, _)| by.clone());
        held.chain(self.booked.iter().cloned()).collect()
    }

    /// The units the Slot says it has left, when it counts them (`slot-capacity`).
    pub fn capacity(&self) -> Option<i64> {
        self.counted.then_some(self.left)
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

/// Carries calsync's holds and bookings from the stored version of a Slot into a publisher's new
/// version of it. The publisher's `slot-capacity` counts the places it still has, which the
/// places calsync gave out come off; its status stands when it is not `free` (the publisher
/// closed the Slot), else the status follows the places left.
pub fn carry_takers(stored: &Value, incoming: &mut Value) {
    let taken = Units::of(stored);
    if taken.holds.is_empty() && taken.booked.is_empty() {
        return;
    }
    let offered = Units::of(incoming);
    let takers = (taken.holds.len() + taken.booked.len()) as i64;
    let publisher_status = offered.status.clone();
    let units = Units {
        holds: taken.holds,
        booked: taken.booked,
        left: (offered.left - takers).max(0),
        counted: offered.counted,
        status: publisher_status.clone(),
    };
    units.write(incoming);
    if publisher_status != "free" {
        incoming["status"] = json!(publisher_status);
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

    #[test]
    fn a_publishers_new_version_keeps_calsyncs_takers_and_their_places() {
        let now = Utc::now();
        let mut units = Units::of(&slot("free", Some(3)));
        units.take("Appointment/a", None, now).unwrap();
        let stored = after(&units, slot("free", Some(3)));
        // The publisher still says 3 (it does not know of calsync's booking): 2 are left.
        let mut incoming = slot("free", Some(3));
        carry_takers(&stored, &mut incoming);
        assert_eq!((incoming["status"].as_str(), left(&incoming)), (Some("free"), Some(2)));
        assert!(Units::of(&incoming).has("Appointment/a"));
        // A plain Slot booked here stays busy whatever the publisher says of it.
        let mut units = Units::of(&slot("free", None));
        units.take("Appointment/b", None, now).unwrap();
        let stored = after(&units, slot("free", None));
        let mut incoming = slot("free", None);
        carry_takers(&stored, &mut incoming);
        assert_eq!(incoming["status"], "busy");
        assert!(Units::of(&incoming).take("Appointment/c", None, now).is_err());
        // The publisher closing the Slot wins; the booking record stays.
        let mut incoming = slot("busy-unavailable", None);
        carry_takers(&stored, &mut incoming);
        assert_eq!(incoming["status"], "busy-unavailable");
        assert!(Units::of(&incoming).has("Appointment/b"));
        // Nothing taken: the publisher's version as it is.
        let mut incoming = slot("free", Some(5));
        carry_takers(&slot("free", Some(9)), &mut incoming);
        assert_eq!(incoming, slot("free", Some(5)));
    }

    #[test]
    fn a_deep_link_is_an_absolute_http_url_or_an_error() {
        let links = |values: &[Value]| {
            Value::from_iter(values.iter().map(|v| {
                json!({"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link", "valueUrl": v})
            }))
        };
        let found = |v: Value| deep_link(&v).map(|l| l.map(String::from));
        assert_eq!(found(json!(null)), Ok(None));
        assert_eq!(found(json!([{"url": "http://example.org/other", "valueUrl": "javascript:x"}])), Ok(None));
        assert_eq!(
            found(links(&[json!("https://portal.example/book?slot=1")])),
            Ok(Some("https://portal.example/book?slot=1".into()))
        );
        assert_eq!(found(links(&[json!("http://portal.example")])), Ok(Some("http://portal.example/".into())));
        for bad in [
            json!("javascript:alert(document.cookie)"),
            json!("JavaScript:alert(1)"),
            json!("data:text/html,<script>alert(1)</script>"),
            json!("file:///etc/passwd"),
            json!("/book?slot=1"),
            json!("https://"),
            json!("mailto:book@portal.example"),
            json!(42),
        ] {
            assert!(found(links(std::slice::from_ref(&bad))).is_err(), "{bad} was taken");
        }
        // One bad link among good ones is still an error.
        assert!(found(links(&[json!("https://portal.example"), json!("javascript:x")])).is_err());
        let long = format!("javascript:{}", "x".repeat(10_000));
        assert!(found(links(&[json!(long)])).unwrap_err().len() < 200);
    }
}

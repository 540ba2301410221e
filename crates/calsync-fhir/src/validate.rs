//! Validation of resources on write: FHIR R4 structure (fhirbolt) plus the rules of the
//! AppointmentCoordination profiles (Schedule, Slot, Appointment) from the PatientScheduling IG.

use chrono::DateTime;
use fhirbolt::model::r4::Resource;
use serde_json::Value;

use calsync_core::SlotStatus;

/// Why a resource cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not JSON, not an object, or no `resourceType`: the request itself is wrong (400).
    #[error("{0}")]
    Malformed(String),
    /// Well-formed JSON that is not a valid resource (422); `expression` names the element.
    #[error("{expression}: {message}")]
    Element {
        /// FHIRPath-like location, e.g. `Slot.start`.
        expression: String,
        /// What is wrong there.
        message: String,
    },
}

fn element(expression: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid::Element { expression: expression.into(), message: message.into() }
}

/// Parses request text as a resource of `expected_type` and checks it; returns the JSON.
pub fn resource(text: &str, expected_type: &str) -> Result<Value, Invalid> {
    let value: Value = serde_json::from_str(text).map_err(|e| Invalid::Malformed(format!("body is not JSON: {e}")))?;
    let Some(actual) = value.get("resourceType").and_then(Value::as_str) else {
        return Err(Invalid::Malformed("body has no resourceType".into()));
    };
    if actual != expected_type {
        return Err(Invalid::Malformed(format!("resourceType is {actual} but the URL is for {expected_type}")));
    }
    // The profile rules first: they name the element precisely; then the dates search reads,
    // then the whole structure.
    if let Some(path) = empty_member(&value, expected_type) {
        return Err(element(
            path,
            "is empty: FHIR JSON leaves out an element without content ([] and {} are not allowed)",
        ));
    }
    profile(expected_type, &value)?;
    if let Some((expression, raw)) = crate::index::unreadable_date(expected_type, &value) {
        return Err(element(expression, format!("{raw:?} is not a FHIR date, dateTime or instant")));
    }
    if let Err(e) = read_r4(text) {
        return Err(match locate(&value) {
            Some((path, found)) => {
                element(format!("{expected_type}.{path}"), format!("{found} {} ({e})", in_words(&e)))
            }
            None => element(expected_type, in_words(&e)),
        });
    }
    Ok(value)
}

/// Reads `text` as an R4 resource with fhirbolt. Input it panicked on (found by the fuzz target
/// `resources`: `"given": []`) is refused like any other it cannot read.
fn read_r4(text: &str) -> Result<(), String> {
    match std::panic::catch_unwind(|| fhirbolt::json::from_str::<Resource>(text, None).map(|_| ())) {
        Ok(read) => read.map_err(|e| e.to_string()),
        Err(_) => Err("the FHIR reader cannot read it".into()),
    }
}

/// The path of the first empty array or object in `value` (FHIR JSON never has one), if any.
fn empty_member(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Array(items) if items.is_empty() => Some(path.to_string()),
        Value::Object(members) if members.is_empty() => Some(path.to_string()),
        Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, item)| empty_member(item, &format!("{path}[{i}]")))
        }
        Value::Object(members) => members.iter().find_map(|(k, v)| empty_member(v, &format!("{path}.{k}"))),
        _ => None,
    }
}

/// True when FHIR R4 reads `value` as a resource.
fn parses(value: &Value) -> bool {
    read_r4(&value.to_string()).is_ok()
}

/// Where a resource FHIR does not read is wrong, found by leaving members out: the first
/// top-level member without which it reads, then the first of that member's own members
/// (in every item of a list) without which it reads. The path and the value found there.
fn locate(value: &Value) -> Option<(String, String)> {
    let object = value.as_object()?;
    let outer = object.keys().filter(|k| *k != "resourceType").find(|k| {
        let mut without = value.clone();
        without.as_object_mut().map(|o| o.remove(k.as_str()));
        parses(&without)
    })?;
    let member = &object[outer];
    let items: Vec<&Value> = match member {
        Value::Array(list) => list.iter().collect(),
        other => vec![other],
    };
    let inner_keys: Vec<&String> = items.iter().filter_map(|i| i.as_object()).flat_map(|o| o.keys()).collect();
    let inner = inner_keys.into_iter().find(|k| {
        let mut without = value.clone();
        match &mut without[outer.as_str()] {
            Value::Array(list) => list.iter_mut().for_each(|i| {
                i.as_object_mut().map(|o| o.remove(k.as_str()));
            }),
            Value::Object(o) => {
                o.remove(k.as_str());
            }
            _ => {}
        }
        parses(&without)
    });
    Some(match inner {
        Some(k) => {
            let found = items.iter().find_map(|i| i.get(k.as_str())).map(Value::to_string).unwrap_or_default();
            (format!("{outer}.{k}"), found)
        }
        None => (outer.clone(), member.to_string().chars().take(100).collect()),
    })
}

/// What the FHIR reader's complaint means, in words.
fn in_words(complaint: &str) -> &'static str {
    if complaint.contains("untagged enum") {
        "is not a value this element can have"
    } else if complaint.contains("ParseIntError") {
        "is not a whole number in this element's range"
    } else if complaint.contains("ParseFloatError") {
        "is not a number"
    } else if complaint.contains("invalid type") {
        "is not of this element's type"
    } else if complaint.contains("unknown field") {
        "is not an element of this resource"
    } else {
        "is not valid FHIR R4 here"
    }
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn instant(v: &Value, path: &str, key: &str) -> Result<Option<chrono::DateTime<chrono::FixedOffset>>, Invalid> {
    match text(v, key) {
        None => Ok(None),
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map(Some)
            .map_err(|_| element(format!("{path}.{key}"), format!("{raw:?} is not an instant with a time zone"))),
    }
}

fn required<T>(found: Option<T>, expression: &str) -> Result<T, Invalid> {
    found.ok_or_else(|| element(expression, "is required"))
}

/// The profile rules fhirbolt does not check (it validates neither codes nor dates).
fn profile(resource_type: &str, v: &Value) -> Result<(), Invalid> {
    match resource_type {
        "Slot" => {
            let status = required(text(v, "status"), "Slot.status")?;
            status.parse::<SlotStatus>().map_err(|e| element("Slot.status", e.to_string()))?;
            required(v.get("schedule").and_then(|s| text(s, "reference")), "Slot.schedule.reference")?;
            let start = required(instant(v, "Slot", "start")?, "Slot.start")?;
            let end = required(instant(v, "Slot", "end")?, "Slot.end")?;
            if end <= start {
                return Err(element("Slot.end", "must be after Slot.start"));
            }
            if status == "free" && end - start > crate::LONGEST_FREE_SLOT {
                let days = crate::LONGEST_FREE_SLOT.num_days();
                return Err(element("Slot.end", format!("a free Slot may last {days} days at most")));
            }
            crate::booking::deep_link(&v["extension"]).map_err(|e| element("Slot.extension", e))?;
        }
        "Location" => {
            for (i, t) in v["telecom"].as_array().into_iter().flatten().enumerate() {
                if t["system"] == "url"
                    && let Some(text) = t["value"].as_str()
                {
                    crate::web_link(text).map_err(|e| element(format!("Location.telecom[{i}].value"), e))?;
                }
            }
        }
        "Schedule" => {
            required(v.get("active").and_then(Value::as_bool), "Schedule.active")?;
            let actors = v.get("actor").and_then(Value::as_array).filter(|a| !a.is_empty());
            required(actors, "Schedule.actor")?;
        }
        "Appointment" => {
            let status = required(text(v, "status"), "Appointment.status")?;
            const STATUSES: &[&str] = &[
                "proposed",
                "pending",
                "booked",
                "arrived",
                "fulfilled",
                "cancelled",
                "noshow",
                "entered-in-error",
                "checked-in",
                "waitlist",
            ];
            if !STATUSES.contains(&status) {
                return Err(element("Appointment.status", format!("unknown status {status:?}")));
            }
            let start = instant(v, "Appointment", "start")?;
            let end = instant(v, "Appointment", "end")?;
            if start.is_none() {
                return Err(element("Appointment.start", "is required"));
            }
            if let (Some(s), Some(e)) = (start, end)
                && e < s
            {
                return Err(element("Appointment.end", "must not be before Appointment.start"));
            }
            let participants = v.get("participant").and_then(Value::as_array).filter(|p| !p.is_empty());
            for (i, p) in required(participants, "Appointment.participant")?.iter().enumerate() {
                required(p.get("actor"), &format!("Appointment.participant[{i}].actor"))?;
                required(text(p, "status"), &format!("Appointment.participant[{i}].status"))?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expression(r: Result<Value, Invalid>) -> String {
        match r {
            Err(Invalid::Element { expression, .. }) => expression,
            other => panic!("expected an element error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_requests() {
        assert!(matches!(resource("{", "Slot"), Err(Invalid::Malformed(_))));
        assert!(matches!(resource("[]", "Slot"), Err(Invalid::Malformed(_))));
        assert!(matches!(resource(r#"{"resourceType":"Patient"}"#, "Slot"), Err(Invalid::Malformed(_))));
    }

    /// Found by the fuzz target `resources`: fhirbolt panicked on an empty array of a primitive.
    #[test]
    fn empty_arrays_and_objects_are_refused_naming_them() {
        let patient = r#"{"resourceType":"Patient","id":"maria","name":[{"family":"Silva","given":[]}]}"#;
        assert_eq!(expression(resource(patient, "Patient")), "Patient.name[0].given");
        assert_eq!(expression(resource(r#"{"resourceType":"Patient","meta":{}}"#, "Patient")), "Patient.meta");
        assert!(resource(r#"{"resourceType":"Patient","name":[{"given":["Maria"]}]}"#, "Patient").is_ok());
    }

    #[test]
    fn element_errors_name_the_element() {
        let slot = |extra: &str| {
            format!(
                r#"{{"resourceType":"Slot","schedule":{{"reference":"Schedule/1"}},"status":"free","start":"2026-12-01T09:00:00Z","end":"2026-12-01T09:30:00Z"{extra}}}"#
            )
        };
        assert!(resource(&slot(""), "Slot").is_ok());
        assert!(expression(resource(&slot(r#","colour":"blue""#), "Slot")).starts_with("Slot"));
        let bad_status = slot("").replace("\"free\"", "\"open\"");
        assert_eq!(expression(resource(&bad_status, "Slot")), "Slot.status");
        let bad_start = slot("").replace("2026-12-01T09:00:00Z", "2026-12-01 09:00");
        assert_eq!(expression(resource(&bad_start, "Slot")), "Slot.start");
        let backwards = slot("").replace("09:30:00Z", "08:30:00Z");
        assert_eq!(expression(resource(&backwards, "Slot")), "Slot.end");
        let years = slot("").replace("2026-12-01T09:30:00Z", "2036-12-01T09:30:00Z");
        assert_eq!(expression(resource(&years, "Slot")), "Slot.end");
        assert!(resource(&years.replace("\"free\"", "\"busy\""), "Slot").is_ok(), "a busy Slot may be long");
        let month = slot("").replace("2026-12-01T09:30:00Z", "2026-12-31T09:30:00Z");
        assert!(resource(&month, "Slot").is_ok());
        let link = |to: &str| {
            slot(&format!(
                r#","extension":[{{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link","valueUrl":"{to}"}}]"#
            ))
        };
        assert!(resource(&link("https://portal.example/book?slot=1"), "Slot").is_ok());
        assert_eq!(expression(resource(&link("javascript:alert(1)"), "Slot")), "Slot.extension");
        let site = |to: &str| {
            format!(
                r#"{{"resourceType":"Location","telecom":[{{"system":"phone","value":"1"}},{{"system":"url","value":"{to}"}}]}}"#
            )
        };
        assert!(resource(&site("https://clinic.example"), "Location").is_ok());
        assert_eq!(expression(resource(&site("javascript:alert(1)"), "Location")), "Location.telecom[1].value");
        assert_eq!(expression(resource(r#"{"resourceType":"Schedule","active":true}"#, "Schedule")), "Schedule.actor");
        let appt = r#"{"resourceType":"Appointment","status":"booked","start":"2026-12-01T09:00:00Z","participant":[{"actor":{"reference":"Patient/1"}}]}"#;
        assert_eq!(expression(resource(appt, "Appointment")), "Appointment.participant[0].status");
    }
}

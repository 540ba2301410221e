//! A participant's derived Schedule in FHIR: a Schedule whose actors are only Patients or
//! RelatedPersons, whose Slots are busy windows, and whose extension carries the participant's
//! zone and constraints:
//!
//! ```json
//! {"url": "https://calsync.example.org/fhir/StructureDefinition/participant-availability",
//!  "extension": [
//!    {"url": "timezone", "valueCode": "America/New_York"},
//!    {"url": "available-time", "valueString": "mon-fri 09:00-17:00"},
//!    {"url": "minimum-notice", "valueDuration": {"value": 1440, "system": "http://unitsofmeasure.org", "code": "min"}},
//!    {"url": "buffer-before", "valueDuration": {"value": 30, "system": "http://unitsofmeasure.org", "code": "min"}},
//!    {"url": "buffer-after", "valueDuration": {"value": 30, "system": "http://unitsofmeasure.org", "code": "min"}},
//!    {"url": "tentative-is-busy", "valueBoolean": false}]}
//! ```

use calsync_core::{Constraints, WeeklyWindow};
use chrono::TimeDelta;
use chrono_tz::Tz;
use serde_json::Value;

/// URL of the participant availability extension on a derived Schedule.
pub const AVAILABILITY_EXTENSION: &str =
    "https://calsync.example.org/fhir/StructureDefinition/participant-availability";

/// True for a reference to someone whose calendar can constrain an appointment.
pub fn is_participant_reference(reference: &str) -> bool {
    reference.starts_with("Patient/") || reference.starts_with("RelatedPerson/")
}

/// True when every actor of a Schedule is a Patient or RelatedPerson: a participant's derived
/// Schedule, never provider availability.
pub fn is_participant_schedule(schedule: &Value) -> bool {
    let actors: Vec<&str> = schedule["actor"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["reference"].as_str()).collect())
        .unwrap_or_default();
    !actors.is_empty() && actors.iter().all(|r| is_participant_reference(r))
}

fn minutes(d: &Value, what: &str) -> Result<TimeDelta, String> {
    let value = d["value"].as_f64().ok_or(format!("{what} needs a value"))?;
    let unit = d["code"].as_str().or(d["unit"].as_str()).unwrap_or("min");
    let per = match unit {
        "min" => 1.0,
        "h" => 60.0,
        "d" => 1440.0,
        other => return Err(format!("{what}: unit {other:?} is not one of min, h, d")),
    };
    let total = value * per;
    if !(0.0..=525_600.0).contains(&total) {
        return Err(format!("{what} must be between 0 and 365 days"));
    }
    Ok(TimeDelta::minutes(total.round() as i64))
}

/// The zone (if stated) and constraints of a derived Schedule, or what is wrong with them.
pub fn participant_constraints(schedule: &Value) -> Result<(Option<Tz>, Constraints), String> {
    let mut constraints = Constraints::default();
    let mut zone = None;
    let Some(ext) =
        schedule["extension"].as_array().and_then(|e| e.iter().find(|x| x["url"] == AVAILABILITY_EXTENSION))
    else {
        return Ok((None, constraints));
    };
    for part in ext["extension"].as_array().into_iter().flatten() {
        match part["url"].as_str().unwrap_or("") {
            "timezone" => {
                let code = part["valueCode"].as_str().ok_or("timezone needs valueCode")?;
                zone = Some(code.parse::<Tz>().map_err(|_| format!("timezone {code:?} is not an IANA zone"))?);
            }
            "available-time" => {
                let text = part["valueString"].as_str().ok_or("available-time needs valueString")?;
                constraints.available.push(text.parse::<WeeklyWindow>().map_err(|e| e.to_string())?);
            }
            "minimum-notice" => constraints.minimum_notice = minutes(&part["valueDuration"], "minimum-notice")?,
            "buffer-before" => constraints.buffer_before = minutes(&part["valueDuration"], "buffer-before")?,
            "buffer-after" => constraints.buffer_after = minutes(&part["valueDuration"], "buffer-after")?,
            "tentative-is-busy" => {
                constraints.tentative_is_busy =
                    part["valueBoolean"].as_bool().ok_or("tentative-is-busy needs valueBoolean")?;
            }
            other => return Err(format!("unknown part {other:?} of the participant-availability extension")),
        }
    }
    Ok((zone, constraints))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_zone_and_constraints_and_refuses_nonsense() {
        let s = json!({"resourceType": "Schedule", "actor": [{"reference": "Patient/maria"}],
            "extension": [{"url": AVAILABILITY_EXTENSION, "extension": [
                {"url": "timezone", "valueCode": "America/New_York"},
                {"url": "available-time", "valueString": "mon-fri 09:00-17:00"},
                {"url": "minimum-notice", "valueDuration": {"value": 1, "code": "d"}},
                {"url": "buffer-after", "valueDuration": {"value": 30, "code": "min"}},
                {"url": "tentative-is-busy", "valueBoolean": false}]}]});
        assert!(is_participant_schedule(&s));
        let (zone, c) = participant_constraints(&s).unwrap();
        assert_eq!(zone, Some(chrono_tz::America::New_York));
        assert_eq!(c.available.len(), 1);
        assert_eq!(c.minimum_notice, TimeDelta::days(1));
        assert_eq!(c.buffer_after, TimeDelta::minutes(30));
        assert_eq!(c.buffer_before, TimeDelta::zero());
        assert!(!c.tentative_is_busy);
        let provider = json!({"actor": [{"reference": "Patient/maria"}, {"reference": "Practitioner/1"}]});
        assert!(!is_participant_schedule(&provider));
        for bad in [
            json!({"url": "timezone", "valueCode": "Mars/Olympus"}),
            json!({"url": "available-time", "valueString": "someday"}),
            json!({"url": "buffer-after", "valueDuration": {"value": -5, "code": "min"}}),
            json!({"url": "colour", "valueString": "blue"}),
        ] {
            let s = json!({"extension": [{"url": AVAILABILITY_EXTENSION, "extension": [bad]}]});
            assert!(participant_constraints(&s).is_err(), "{s}");
        }
    }
}

//! Whether a participant's FHIR R4 Consents permit calsync to sync their calendar's free/busy
//! time now. Pure: the caller brings the Consents (a search by patient or performer) and the
//! instant.
//!
//! A Consent applies to participant `P` when:
//! - its `status` is `active`;
//! - its `scope` is `patient-privacy`;
//! - `P` is its `patient`, one of its `performer`s, or an actor of its provision;
//! - its provision's `action` (if any) includes calsync's `calendar-sync` code.
//!
//! Sync is permitted when an applicable Consent's provision is `permit` and `now` lies in its
//! `period` (an open end never expires). It is refused when none is, or when a nested `deny`
//! provision covers `now`.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// calsync's code for the action a Consent permits: reading free/busy from calendars.
pub const ACTION_SYSTEM: &str = "https://calsync.example.org/fhir/CodeSystem/consent-action";
/// The code in [`ACTION_SYSTEM`].
pub const CALENDAR_SYNC: &str = "calendar-sync";
const SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";

/// The answer, with the reason when refused (for the connection's status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Sync may run; the Consent that permits it.
    Permitted(String),
    /// Sync must not run (and what it stored must go).
    Refused(String),
}

fn codes<'a>(concept: &'a Value) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["system"].as_str()?, c["code"].as_str()?)))
}

fn instant(v: &Value) -> Option<DateTime<Utc>> {
    let text = v.as_str()?;
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.to_utc()).or_else(|| {
        // A date (or year-month) period bound covers its whole day.
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|d| d.and_time(Default::default()).and_utc())
    })
}

/// Whether `now` lies in a Period (`start` inclusive, `end` exclusive; absent ends are open).
fn within(period: &Value, now: DateTime<Utc>) -> Result<(), String> {
    if let Some(start) = instant(&period["start"])
        && now < start
    {
        return Err(format!("it starts on {}", period["start"].as_str().unwrap_or_default()));
    }
    if let Some(end) = instant(&period["end"]) {
        let end = if period["end"].as_str().is_some_and(|e| !e.contains('T')) {
            end + chrono::TimeDelta::days(1)
        } else {
            end
        };
        if now >= end {
            return Err(format!("it ended on {}", period["end"].as_str().unwrap_or_default()));
        }
    }
    Ok(())
}

fn references(v: &Value) -> Vec<&str> {
    match v {
        Value::Array(items) => items.iter().filter_map(|r| r["reference"].as_str()).collect(),
        other => other["reference"].as_str().into_iter().collect(),
    }
}

/// The Consent a participant gives for their calendar's busy time to be read: active,
/// `patient-privacy`, an opt-in permit for calendar sync, about `patient`, given by
/// `participant` (named as performer when it is not the patient themselves).
pub fn permit(patient: &str, participant: &str) -> Value {
    let mut consent = serde_json::json!({"resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {"type": "permit", "action": [{"coding": [{"system": ACTION_SYSTEM, "code": CALENDAR_SYNC}]}]}});
    if participant != patient {
        consent["performer"] = serde_json::json!([{"reference": participant}]);
    }
    consent
}

/// Everyone a Consent names: its patient, its performers and the actors of its provision.
pub fn named(consent: &Value) -> Vec<&str> {
    let actors = consent["provision"]["actor"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["reference"]["reference"].as_str());
    let mut all: Vec<&str> =
        references(&consent["patient"]).into_iter().chain(references(&consent["performer"])).chain(actors).collect();
    all.sort_unstable();
    all.dedup();
    all
}

fn applies(consent: &Value, participant: &str) -> bool {
    let provision = &consent["provision"];
    let named = named(consent).contains(&participant);
    let privacy = codes(&consent["scope"]).any(|c| c == (SCOPE_SYSTEM, "patient-privacy"));
    let actions: Vec<(&str, &str)> = provision["action"].as_array().into_iter().flatten().flat_map(codes).collect();
    let for_sync = actions.is_empty() || actions.contains(&(ACTION_SYSTEM, CALENDAR_SYNC));
    named && privacy && for_sync
}

/// Whether `consents` permit syncing `participant`'s calendar (`Patient/1`, `RelatedPerson/2`)
/// at `now`.
pub fn calendar_sync(consents: &[Value], participant: &str, now: DateTime<Utc>) -> Decision {
    let mut reasons = Vec::new();
    for consent in consents.iter().filter(|c| c["resourceType"] == "Consent" && applies(c, participant)) {
        let id = consent["id"].as_str().unwrap_or("?");
        if consent["status"] != "active" {
            reasons.push(format!("Consent/{id} is {}", consent["status"].as_str().unwrap_or("without status")));
            continue;
        }
        let provision = &consent["provision"];
        if provision["type"] != "permit" {
            reasons.push(format!("Consent/{id} does not permit it"));
            continue;
        }
        if let Err(why) = within(&provision["period"], now) {
            reasons.push(format!("Consent/{id} does not cover now: {why}"));
            continue;
        }
        let denied = provision["provision"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["type"] == "deny" && within(&p["period"], now).is_ok());
        if denied {
            reasons.push(format!("Consent/{id} denies it for now"));
            continue;
        }
        return Decision::Permitted(format!("Consent/{id}"));
    }
    if reasons.is_empty() {
        Decision::Refused(format!("no active patient-privacy Consent permits calendar sync for {participant}"))
    } else {
        Decision::Refused(reasons.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn the_consent_calsync_asks_for_permits_exactly_its_participant() {
        let now = Utc::now();
        let own = permit("Patient/maria", "Patient/maria");
        assert!(matches!(calendar_sync(&[own], "Patient/maria", now), Decision::Permitted(_)));
        let daughter = permit("Patient/maria", "RelatedPerson/daughter");
        assert!(matches!(
            calendar_sync(std::slice::from_ref(&daughter), "RelatedPerson/daughter", now),
            Decision::Permitted(_)
        ));
        assert!(matches!(calendar_sync(&[daughter], "RelatedPerson/son", now), Decision::Refused(_)));
    }

    #[test]
    fn a_consent_names_its_patient_performers_and_actors_once() {
        let c = json!({"patient": {"reference": "Patient/maria"}, "performer": [{"reference": "RelatedPerson/son"},
            {"reference": "Patient/maria"}], "provision": {"actor": [{"reference": {"reference": "RelatedPerson/daughter"}}]}});
        assert_eq!(named(&c), ["Patient/maria", "RelatedPerson/daughter", "RelatedPerson/son"]);
    }

    fn consent(id: &str, status: &str, performer: &str, provision: Value) -> Value {
        json!({"resourceType": "Consent", "id": id, "status": status,
            "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/maria"}, "performer": [{"reference": performer}],
            "provision": provision})
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    fn permitted(d: &Decision) -> bool {
        matches!(d, Decision::Permitted(_))
    }

    #[test]
    fn an_active_permit_covering_now_permits_the_patient_and_the_consenting_caregiver() {
        let c = consent(
            "c1",
            "active",
            "RelatedPerson/ana",
            json!({"type": "permit", "period": {"start": "2026-11-01", "end": "2027-11-01"}}),
        );
        assert_eq!(
            calendar_sync(std::slice::from_ref(&c), "Patient/maria", now()),
            Decision::Permitted("Consent/c1".into())
        );
        assert!(permitted(&calendar_sync(std::slice::from_ref(&c), "RelatedPerson/ana", now())));
        // Someone the Consent does not name is not covered by it.
        assert!(!permitted(&calendar_sync(&[c], "RelatedPerson/ben", now())));
        assert!(!permitted(&calendar_sync(&[], "Patient/maria", now())));
    }

    #[test]
    fn revoked_expired_future_and_denied_consents_refuse_with_a_reason() {
        let cases = [
            (consent("c2", "inactive", "Patient/maria", json!({"type": "permit"})), "is inactive"),
            (consent("c3", "active", "Patient/maria", json!({"type": "deny"})), "does not permit"),
            (
                consent("c4", "active", "Patient/maria", json!({"type": "permit", "period": {"end": "2026-11-30"}})),
                "ended on 2026-11-30",
            ),
            (
                consent(
                    "c5",
                    "active",
                    "Patient/maria",
                    json!({"type": "permit", "period": {"start": "2026-12-01T12:00:01Z"}}),
                ),
                "starts on",
            ),
            (
                consent(
                    "c6",
                    "active",
                    "Patient/maria",
                    json!({"type": "permit", "provision": [{"type": "deny", "period": {"start": "2026-11-15", "end": "2026-12-15"}}]}),
                ),
                "denies it for now",
            ),
        ];
        for (c, why) in cases {
            match calendar_sync(&[c], "Patient/maria", now()) {
                Decision::Refused(reason) => assert!(reason.contains(why), "{reason} should say {why}"),
                other => panic!("{other:?} should be refused because {why}"),
            }
        }
    }

    #[test]
    fn period_ends_are_exclusive_and_a_date_end_covers_its_day() {
        let until =
            |end: &str| consent("c", "active", "Patient/maria", json!({"type": "permit", "period": {"end": end}}));
        assert!(permitted(&calendar_sync(&[until("2026-12-01")], "Patient/maria", now())), "the whole last day");
        assert!(!permitted(&calendar_sync(&[until("2026-12-01T12:00:00Z")], "Patient/maria", now())), "exclusive end");
        assert!(permitted(&calendar_sync(&[until("2026-12-01T12:00:01Z")], "Patient/maria", now())));
    }

    #[test]
    fn only_privacy_consents_for_calendar_sync_count_and_one_permit_is_enough() {
        let mut treatment = consent("t", "active", "Patient/maria", json!({"type": "permit"}));
        treatment["scope"] = json!({"coding": [{"system": SCOPE_SYSTEM, "code": "treatment"}]});
        assert!(!permitted(&calendar_sync(std::slice::from_ref(&treatment), "Patient/maria", now())));
        let other_action = consent(
            "a",
            "active",
            "Patient/maria",
            json!({"type": "permit",
            "action": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "disclose"}]}]}),
        );
        assert!(!permitted(&calendar_sync(&[other_action], "Patient/maria", now())));
        let sync = consent(
            "s",
            "active",
            "Patient/maria",
            json!({"type": "permit",
            "action": [{"coding": [{"system": ACTION_SYSTEM, "code": CALENDAR_SYNC}]}]}),
        );
        let revoked = consent("r", "inactive", "Patient/maria", json!({"type": "permit"}));
        assert_eq!(
            calendar_sync(&[revoked, treatment, sync], "Patient/maria", now()),
            Decision::Permitted("Consent/s".into())
        );
    }
}

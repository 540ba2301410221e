//! AuditEvents in the shape of IHE Basic Audit Log Patterns (BALP): the client application, the
//! user, the action, the patient, the outcome and the request id. They never hold resource
//! content, query strings, event text or tokens: references, codes and ids only.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// What was done (`AuditEvent.action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `C`: create.
    Create,
    /// `R`: read, vread, search.
    Read,
    /// `U`: update.
    Update,
    /// `D`: delete.
    Delete,
    /// `E`: execute an operation.
    Execute,
}

impl Action {
    fn code(self) -> &'static str {
        match self {
            Action::Create => "C",
            Action::Read => "R",
            Action::Update => "U",
            Action::Delete => "D",
            Action::Execute => "E",
        }
    }
}

/// How it ended (`AuditEvent.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Result {
    /// `0`: success.
    Success,
    /// `4`: refused (no token, or not permitted).
    Refused,
}

/// Who asked: the user (a person's reference, or the token's issuer and subject) and the client
/// application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Agent {
    /// `Patient/…`, `RelatedPerson/…`, `Practitioner/…` when the token names a person.
    pub person: Option<String>,
    /// The token's issuer and subject, or what stands for the caller (`operator`, `anonymous`,
    /// `calsync worker`).
    pub identity: (String, String),
    /// The client application (`client_id`).
    pub client: Option<String>,
}

/// One audited event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What was done.
    pub action: Action,
    /// The RESTful interaction (`read`, `vread`, `search-type`, `create`, `update`, `delete`) or
    /// the operation (`$find-mutual`, `$hold`, `$book`, `$cancel`, `sync`).
    pub subtype: String,
    /// How it ended.
    pub result: Result,
    /// Who asked.
    pub agent: Agent,
    /// The patients whose data it was.
    pub patients: Vec<String>,
    /// The other resources it concerned (`Appointment/…`, `Schedule/…`, a type searched).
    pub what: Vec<String>,
    /// The request's id.
    pub request: String,
    /// When.
    pub recorded: DateTime<Utc>,
}

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";

/// The AuditEvent of `record`.
pub fn event(record: &Record) -> Value {
    let interaction = if record.subtype.starts_with('$') || record.subtype == "sync" {
        json!({"system": "urn:ietf:rfc:3986", "code": record.subtype})
    } else {
        json!({"system": "http://hl7.org/fhir/restful-interaction", "code": record.subtype})
    };
    let a = &record.agent;
    let who = match &a.person {
        Some(person) => json!({"reference": person}),
        None => json!({"identifier": {"system": a.identity.0, "value": a.identity.1}}),
    };
    let mut agent = vec![json!({
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP",
            "display": "information recipient"}]},
        "who": who, "requestor": true})];
    if let Some(client) = &a.client {
        agent.push(json!({
            "type": {"coding": [{"system": DCM, "code": "110150", "display": "Application"}]},
            "who": {"identifier": {"system": a.identity.0, "value": client}}, "requestor": false}));
    }
    let mut entity: Vec<Value> = record
        .patients
        .iter()
        .map(|p| {
            json!({"what": {"reference": p},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"}})
        })
        .collect();
    entity.extend(record.what.iter().map(|w| {
        let what = if w.contains('/') { json!({"reference": w}) } else { json!({"display": w}) };
        json!({"what": what, "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"}})
    }));
    entity.push(json!({
        "what": {"identifier": {"value": record.request}},
        "type": {"system": "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType", "code": "XrequestId"}}));
    json!({
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest",
            "display": "RESTful Operation"},
        "subtype": [interaction],
        "action": record.action.code(),
        "recorded": record.recorded.to_rfc3339_opts(SecondsFormat::Millis, true),
        "outcome": match record.result { Result::Success => "0", Result::Refused => "4" },
        "agent": agent,
        "source": {"observer": {"display": "calsync"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
                "display": "Application Server"}]},
        "entity": entity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_names_who_what_and_whose_without_content() {
        let record = Record {
            action: Action::Read,
            subtype: "read".into(),
            result: Result::Success,
            agent: Agent {
                person: Some("RelatedPerson/ana".into()),
                identity: ("https://issuer".into(), "sub-1".into()),
                client: Some("calsync-page".into()),
            },
            patients: vec!["Patient/maria".into()],
            what: vec!["Appointment/a1".into()],
            request: "req-1".into(),
            recorded: DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z").unwrap().to_utc(),
        };
        let e = event(&record);
        assert_eq!(e["action"], "R");
        assert_eq!(e["outcome"], "0");
        assert_eq!(e["subtype"][0]["code"], "read");
        assert_eq!(e["agent"][0]["who"]["reference"], "RelatedPerson/ana");
        assert_eq!(e["agent"][1]["who"]["identifier"]["value"], "calsync-page");
        assert_eq!(e["entity"][0]["what"]["reference"], "Patient/maria");
        assert_eq!(e["entity"][1]["what"]["reference"], "Appointment/a1");
        assert_eq!(e["entity"][2]["what"]["identifier"]["value"], "req-1");
        assert_eq!(e["recorded"], "2026-12-05T10:00:00.000Z");
    }
}

//! Search parameters of token, reference and string type, and the values a resource has for
//! them. The facade parses queries with [`PARAMS`]; the store indexes what [`entries`] extracts.

use serde_json::Value;

/// How a search parameter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `system|code` (codes, Codings, CodeableConcepts, Identifiers, booleans).
    Token,
    /// `Type/id`.
    Reference,
    /// Text: starts-with ignoring case by default, `:exact`, `:contains`.
    Text,
}

impl ParamKind {
    /// The FHIR search parameter type.
    pub fn code(self) -> &'static str {
        match self {
            ParamKind::Token => "token",
            ParamKind::Reference => "reference",
            ParamKind::Text => "string",
        }
    }
}

/// One search parameter: where its values live in the resource.
#[derive(Debug, Clone, Copy)]
pub struct ParamDef {
    /// The resource type it applies to.
    pub resource_type: &'static str,
    /// Its name in the query.
    pub name: &'static str,
    /// How it matches.
    pub kind: ParamKind,
    /// Element paths (arrays are entered automatically).
    pub paths: &'static [&'static [&'static str]],
    /// For references: only targets of this type count.
    pub target: Option<&'static str>,
}

const fn def(
    resource_type: &'static str,
    name: &'static str,
    kind: ParamKind,
    paths: &'static [&'static [&'static str]],
) -> ParamDef {
    ParamDef { resource_type, name, kind, paths, target: None }
}

const fn typed(resource_type: &'static str, name: &'static str, target: &'static str) -> ParamDef {
    ParamDef {
        resource_type,
        name,
        kind: ParamKind::Reference,
        paths: &[&["participant", "actor"]],
        target: Some(target),
    }
}

use ParamKind::{Reference, Text, Token};

/// The indexed search parameters (R4 definitions, see `docs/api.md`).
pub const PARAMS: &[ParamDef] = &[
    def("Slot", "service-type", Token, &[&["serviceType"]]),
    def("Slot", "specialty", Token, &[&["specialty"]]),
    def("Slot", "appointment-type", Token, &[&["appointmentType"]]),
    def("Slot", "identifier", Token, &[&["identifier"]]),
    def("Schedule", "actor", Reference, &[&["actor"]]),
    def("Schedule", "active", Token, &[&["active"]]),
    def("Schedule", "service-type", Token, &[&["serviceType"]]),
    def("Schedule", "specialty", Token, &[&["specialty"]]),
    def("Schedule", "identifier", Token, &[&["identifier"]]),
    def("Appointment", "actor", Reference, &[&["participant", "actor"]]),
    typed("Appointment", "patient", "Patient"),
    typed("Appointment", "practitioner", "Practitioner"),
    typed("Appointment", "location", "Location"),
    def("Appointment", "status", Token, &[&["status"]]),
    def("Appointment", "slot", Reference, &[&["slot"]]),
    def("Appointment", "part-status", Token, &[&["participant", "status"]]),
    def("Appointment", "service-type", Token, &[&["serviceType"]]),
    def("Appointment", "identifier", Token, &[&["identifier"]]),
    def("Location", "name", Text, &[&["name"], &["alias"]]),
    def(
        "Location",
        "address",
        Text,
        &[
            &["address", "line"],
            &["address", "city"],
            &["address", "district"],
            &["address", "state"],
            &["address", "postalCode"],
            &["address", "country"],
            &["address", "text"],
        ],
    ),
    def("Location", "address-city", Text, &[&["address", "city"]]),
    def("Location", "address-state", Text, &[&["address", "state"]]),
    def("Location", "address-postalcode", Text, &[&["address", "postalCode"]]),
    def("Location", "status", Token, &[&["status"]]),
    def("Location", "type", Token, &[&["type"]]),
    def("Location", "identifier", Token, &[&["identifier"]]),
    def("Patient", "identifier", Token, &[&["identifier"]]),
    def("RelatedPerson", "identifier", Token, &[&["identifier"]]),
    def("RelatedPerson", "patient", Reference, &[&["patient"]]),
    def("Practitioner", "identifier", Token, &[&["identifier"]]),
    def("PractitionerRole", "identifier", Token, &[&["identifier"]]),
    def("PractitionerRole", "practitioner", Reference, &[&["practitioner"]]),
    def("PractitionerRole", "location", Reference, &[&["location"]]),
    def("HealthcareService", "identifier", Token, &[&["identifier"]]),
    def("Consent", "identifier", Token, &[&["identifier"]]),
    def("Consent", "patient", Reference, &[&["patient"]]),
    def("Consent", "status", Token, &[&["status"]]),
    def("Task", "identifier", Token, &[&["identifier"]]),
    def("Task", "status", Token, &[&["status"]]),
];

/// The definition of `name` on `resource_type`, if indexed.
pub fn param(resource_type: &str, name: &str) -> Option<&'static ParamDef> {
    PARAMS.iter().find(|p| p.resource_type == resource_type && p.name == name)
}

/// One indexed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Parameter name.
    pub param: &'static str,
    /// Token system ("" when none).
    pub system: String,
    /// The value as searched: lower-case text, the code, or `Type/id`.
    pub value: String,
    /// The value as written (for `:exact`).
    pub raw: String,
}

/// Lower case, for case-insensitive text matching.
pub fn normalize(text: &str) -> String {
    text.to_lowercase()
}

/// `Type/id` of a reference, from `Type/id` or an absolute URL ending in it.
pub fn reference_key(reference: &str) -> Option<String> {
    let mut parts = reference.trim_end_matches('/').rsplit('/');
    let id = parts.next()?;
    let t = parts.next()?;
    (!id.is_empty() && t.chars().next().is_some_and(|c| c.is_ascii_uppercase())).then(|| format!("{t}/{id}"))
}

fn walk<'a>(v: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| walk(i, path, out)),
        _ => match path.split_first() {
            None => out.push(v),
            Some((key, rest)) => {
                if let Some(next) = v.get(*key) {
                    walk(next, rest, out);
                }
            }
        },
    }
}

/// Every indexed value of a resource.
pub fn entries(resource_type: &str, resource: &Value) -> Vec<IndexEntry> {
    let mut out = Vec::new();
    for p in PARAMS.iter().filter(|p| p.resource_type == resource_type) {
        let mut found = Vec::new();
        for path in p.paths {
            walk(resource, path, &mut found);
        }
        for v in found {
            let entry = |system: &str, value: String, raw: &str| IndexEntry {
                param: p.name,
                system: system.to_string(),
                value,
                raw: raw.to_string(),
            };
            match p.kind {
                Token => match v {
                    Value::String(code) => out.push(entry("", code.clone(), code)),
                    Value::Bool(b) => out.push(entry("", b.to_string(), &b.to_string())),
                    Value::Object(o) => {
                        let codings: Vec<&Value> = match o.get("coding") {
                            Some(Value::Array(c)) => c.iter().collect(),
                            _ => vec![v],
                        };
                        for c in codings {
                            let system = c.get("system").and_then(Value::as_str).unwrap_or("");
                            // A Coding has a code; an Identifier a value.
                            if let Some(code) = c.get("code").or_else(|| c.get("value")).and_then(Value::as_str) {
                                out.push(entry(system, code.to_string(), code));
                            }
                        }
                    }
                    _ => {}
                },
                Reference => {
                    if let Some(key) = v.get("reference").and_then(Value::as_str).and_then(reference_key)
                        && p.target.is_none_or(|t| key.starts_with(&format!("{t}/")))
                    {
                        out.push(entry("", key.clone(), &key));
                    }
                }
                Text => {
                    if let Some(text) = v.as_str() {
                        out.push(entry("", normalize(text), text));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extracts_tokens_references_and_text() {
        let appt = json!({"resourceType": "Appointment", "status": "booked",
            "participant": [{"actor": {"reference": "Patient/maria"}, "status": "accepted"},
                            {"actor": {"reference": "http://x.org/fhir/Location/riverside"}, "status": "accepted"}],
            "serviceType": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "124"}]}],
            "identifier": [{"system": "urn:x", "value": "A-1"}]});
        let e = entries("Appointment", &appt);
        let has = |param: &str, system: &str, value: &str| {
            e.iter().any(|x| x.param == param && x.system == system && x.value == value)
        };
        assert!(has("status", "", "booked"));
        assert!(has("patient", "", "Patient/maria"));
        assert!(!e.iter().any(|x| x.param == "patient" && x.value.starts_with("Location")));
        assert!(has("location", "", "Location/riverside"));
        assert!(has("actor", "", "Patient/maria") && has("actor", "", "Location/riverside"));
        assert!(has("part-status", "", "accepted"));
        assert!(has("service-type", "http://terminology.hl7.org/CodeSystem/service-type", "124"));
        assert!(has("identifier", "urn:x", "A-1"));
        let loc = json!({"resourceType": "Location", "name": "Riverside Family Clinic", "address": {"line": ["12 River St"], "city": "Boston"}});
        let e = entries("Location", &loc);
        assert!(
            e.iter().any(|x| x.param == "name"
                && x.value == "riverside family clinic"
                && x.raw == "Riverside Family Clinic")
        );
        assert!(e.iter().any(|x| x.param == "address" && x.value == "12 river st"));
        assert!(e.iter().any(|x| x.param == "address-city" && x.value == "boston"));
        let sched = json!({"resourceType": "Schedule", "active": true, "actor": [{"reference": "Location/1"}]});
        let e = entries("Schedule", &sched);
        assert!(e.iter().any(|x| x.param == "active" && x.value == "true"));
    }
}

//! Search parameters of token, reference, string and date type, and the values a resource has
//! for them. The facade parses queries with [`PARAMS`]; the store indexes what [`entries`] and
//! [`date_entries`] extract. [`fingerprint`] changes whenever these definitions do, so a store
//! written under older definitions knows to reindex.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
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
    /// A date, dateTime, instant or Period: a range of time, compared by the date prefixes.
    Date,
}

impl ParamKind {
    /// The FHIR search parameter type.
    pub fn code(self) -> &'static str {
        match self {
            ParamKind::Token => "token",
            ParamKind::Reference => "reference",
            ParamKind::Text => "string",
            ParamKind::Date => "date",
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

impl ParamDef {
    /// Only references to `target` count.
    const fn target_only(mut self, target: &'static str) -> Self {
        self.target = Some(target);
        self
    }
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

use ParamKind::{Date, Reference, Text, Token};

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
    def("Schedule", "date", Date, &[&["planningHorizon"]]),
    def("Appointment", "actor", Reference, &[&["participant", "actor"]]),
    typed("Appointment", "patient", "Patient"),
    typed("Appointment", "practitioner", "Practitioner"),
    typed("Appointment", "location", "Location"),
    def("Appointment", "status", Token, &[&["status"]]),
    def("Appointment", "slot", Reference, &[&["slot"]]).target_only("Slot"),
    def("Appointment", "part-status", Token, &[&["participant", "status"]]),
    def("Appointment", "service-type", Token, &[&["serviceType"]]),
    def("Appointment", "identifier", Token, &[&["identifier"]]),
    def("Appointment", "date", Date, &[&["start"]]),
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
    def("Location", "organization", Reference, &[&["managingOrganization"]]).target_only("Organization"),
    def("Location", "status", Token, &[&["status"]]),
    def("Location", "type", Token, &[&["type"]]),
    def("Location", "identifier", Token, &[&["identifier"]]),
    def("Patient", "identifier", Token, &[&["identifier"]]),
    def("RelatedPerson", "identifier", Token, &[&["identifier"]]),
    def("RelatedPerson", "patient", Reference, &[&["patient"]]).target_only("Patient"),
    def("Practitioner", "identifier", Token, &[&["identifier"]]),
    def("PractitionerRole", "identifier", Token, &[&["identifier"]]),
    def("PractitionerRole", "practitioner", Reference, &[&["practitioner"]]).target_only("Practitioner"),
    def("PractitionerRole", "location", Reference, &[&["location"]]).target_only("Location"),
    def("PractitionerRole", "organization", Reference, &[&["organization"]]).target_only("Organization"),
    def("HealthcareService", "organization", Reference, &[&["providedBy"]]).target_only("Organization"),
    def("HealthcareService", "identifier", Token, &[&["identifier"]]),
    def("Consent", "identifier", Token, &[&["identifier"]]),
    def("Consent", "patient", Reference, &[&["patient"]]).target_only("Patient"),
    def("Consent", "performer", Reference, &[&["performer"]]),
    def("Consent", "status", Token, &[&["status"]]),
    def("Consent", "date", Date, &[&["dateTime"]]),
    def("Consent", "period", Date, &[&["provision", "period"]]),
    def("Task", "identifier", Token, &[&["identifier"]]),
    def("Task", "status", Token, &[&["status"]]),
    def("Task", "code", Token, &[&["code"]]),
    def("Task", "business-status", Token, &[&["businessStatus"]]),
    def("Task", "focus", Reference, &[&["focus"]]),
    def("Task", "patient", Reference, &[&["for"]]).target_only("Patient"),
    def("Task", "authored-on", Date, &[&["authoredOn"]]),
    def("Task", "period", Date, &[&["executionPeriod"]]),
    def("AuditEvent", "date", Date, &[&["recorded"]]),
    def("AuditEvent", "action", Token, &[&["action"]]),
    def("AuditEvent", "outcome", Token, &[&["outcome"]]),
    def("AuditEvent", "subtype", Token, &[&["subtype"]]),
    def("AuditEvent", "agent", Reference, &[&["agent", "who"]]),
    def("AuditEvent", "entity", Reference, &[&["entity", "what"]]),
    def("AuditEvent", "patient", Reference, &[&["entity", "what"]]).target_only("Patient"),
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

/// The `Type/id` keys of the references a resource has for a reference parameter.
pub fn references(def: &ParamDef, resource: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for path in def.paths {
        walk(resource, path, &mut found);
    }
    found.into_iter().filter_map(|v| reference_of(def, v)).collect()
}

/// `Type/id` of a Reference element, if it points at what `def` may point at.
fn reference_of(def: &ParamDef, v: &Value) -> Option<String> {
    let key = v.get("reference").and_then(Value::as_str).and_then(reference_key)?;
    def.target.is_none_or(|t| key.starts_with(&format!("{t}/"))).then_some(key)
}

/// One indexed date value: the range of time it stands for, as UTC milliseconds `[low, high)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateEntry {
    /// Parameter name.
    pub param: &'static str,
    /// Inclusive start (`i64::MIN` for a Period without start).
    pub low: i64,
    /// Exclusive end (`i64::MAX` for a Period without end).
    pub high: i64,
}

/// The range of time a FHIR date, dateTime or instant stands for: the whole of its precision
/// (a year, month, day, minute, second or millisecond). A dateTime without zone is read as UTC.
pub fn precision_range(v: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let midnight = |d: NaiveDate| d.and_time(Default::default()).and_utc();
    // FHIR's years are four digits (0001 to 9999): no sign, no more digits, which chrono would
    // read, up to where adding the precision overflows.
    let year = v.get(..4)?;
    if !year.bytes().all(|b| b.is_ascii_digit()) || v.len() > 4 && v.as_bytes()[4] != b'-' {
        return None;
    }
    match v.len() {
        4 => {
            let y: i32 = v.parse().ok()?;
            Some((midnight(NaiveDate::from_ymd_opt(y, 1, 1)?), midnight(NaiveDate::from_ymd_opt(y + 1, 1, 1)?)))
        }
        7 => {
            let d = NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d").ok()?;
            Some((midnight(d), midnight(d.checked_add_months(chrono::Months::new(1))?)))
        }
        10 => {
            let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
            Some((midnight(d), midnight(d.succ_opt()?)))
        }
        _ => {
            let (start, precision) = if let Ok(t) = DateTime::parse_from_rfc3339(v) {
                let p = if v.contains('.') { TimeDelta::milliseconds(1) } else { TimeDelta::seconds(1) };
                (t.to_utc(), p)
            } else if let Ok(t) = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
                (t.and_utc(), TimeDelta::seconds(1))
            } else if let Ok(t) = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M") {
                (t.and_utc(), TimeDelta::minutes(1))
            } else {
                let with_minutes = DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M%:z").ok()?;
                (with_minutes.to_utc(), TimeDelta::minutes(1))
            };
            Some((start, start.checked_add_signed(precision)?))
        }
    }
}

/// Every indexed date value of a resource. A Period runs from its start's range to its end's;
/// an unreadable value is left out (validation refuses it on write).
pub fn date_entries(resource_type: &str, resource: &Value) -> Vec<DateEntry> {
    let mut out = Vec::new();
    for p in PARAMS.iter().filter(|p| p.resource_type == resource_type && p.kind == Date) {
        let mut found = Vec::new();
        for path in p.paths {
            walk(resource, path, &mut found);
        }
        for v in found {
            let range = match v {
                Value::String(s) => precision_range(s).map(|(lo, hi)| (lo.timestamp_millis(), hi.timestamp_millis())),
                Value::Object(period) => {
                    let side = |k: &str| period.get(k).and_then(Value::as_str).map(precision_range);
                    match (side("start"), side("end")) {
                        (Some(None), _) | (_, Some(None)) | (None, None) => None,
                        (start, end) => Some((
                            start.flatten().map_or(i64::MIN, |(lo, _)| lo.timestamp_millis()),
                            end.flatten().map_or(i64::MAX, |(_, hi)| hi.timestamp_millis()),
                        )),
                    }
                }
                _ => None,
            };
            if let Some((low, high)) = range {
                out.push(DateEntry { param: p.name, low, high });
            }
        }
    }
    out
}

/// The first date value of a resource's date search parameters that is not a FHIR date,
/// dateTime or instant (nor a Period of them), as (element, value): what indexing could not read.
pub fn unreadable_date(resource_type: &str, resource: &Value) -> Option<(String, String)> {
    for p in PARAMS.iter().filter(|p| p.resource_type == resource_type && p.kind == Date) {
        for path in p.paths {
            let mut found = Vec::new();
            walk(resource, path, &mut found);
            let element = format!("{resource_type}.{}", path.join("."));
            for v in found {
                let texts: Vec<&str> = match v {
                    Value::String(s) => vec![s.as_str()],
                    Value::Object(period) => ["start", "end"].iter().filter_map(|k| period.get(*k)?.as_str()).collect(),
                    _ => Vec::new(),
                };
                if let Some(bad) = texts.into_iter().find(|t| precision_range(t).is_none()) {
                    return Some((element, bad.to_string()));
                }
            }
        }
    }
    None
}

/// Changes whenever the indexed parameters do (FNV-1a of their definitions).
pub fn fingerprint() -> String {
    fnv(&format!("{PARAMS:?}"))
}

/// The top-level members of a `resource_type` that hold values of its search parameters:
/// [`entries`] and [`date_entries`] read no others.
pub fn reads(resource_type: &str) -> &'static [&'static str] {
    static READS: std::sync::LazyLock<std::collections::HashMap<&'static str, Vec<&'static str>>> =
        std::sync::LazyLock::new(|| {
            let mut reads: std::collections::HashMap<&'static str, Vec<&'static str>> = Default::default();
            for p in PARAMS {
                let members = reads.entry(p.resource_type).or_default();
                for member in p.paths.iter().filter_map(|path| path.first()) {
                    if !members.contains(member) {
                        members.push(member);
                    }
                }
            }
            reads
        });
    READS.get(resource_type).map_or(&[], Vec::as_slice)
}

/// FNV-1a of `text` as 16 hex digits: a short stable name derived from a longer one.
pub fn fnv(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3));
    format!("{hash:016x}")
}

/// Every indexed token, reference and string value of a resource.
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
                    if let Some(key) = reference_of(p, v) {
                        out.push(entry("", key.clone(), &key));
                    }
                }
                Text => {
                    if let Some(text) = v.as_str() {
                        out.push(entry("", normalize(text), text));
                    }
                }
                Date => {}
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

    #[test]
    fn a_resource_is_indexed_alike_from_the_members_it_reads_alone() {
        let resources = [
            json!({"resourceType": "Slot", "id": "1", "schedule": {"reference": "Schedule/1"}, "status": "free",
                "start": "2026-12-07T14:00:00Z", "end": "2026-12-07T14:30:00Z", "comment": "x",
                "serviceType": [{"coding": [{"system": "urn:s", "code": "124"}]}],
                "identifier": [{"system": "urn:x", "value": "S-1"}], "appointmentType": {"coding": [{"code": "ROUTINE"}]}}),
            json!({"resourceType": "Schedule", "active": true, "actor": [{"reference": "Location/1"}],
                "planningHorizon": {"start": "2026-12-01"}, "comment": "y"}),
            json!({"resourceType": "Location", "name": "Riverside", "alias": ["RFC"], "status": "active",
                "address": {"city": "Boston", "state": "MA"}, "telecom": [{"system": "phone", "value": "1"}]}),
        ];
        for full in resources {
            let t = full["resourceType"].as_str().unwrap();
            let members: serde_json::Map<String, Value> = full
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| reads(t).contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            assert!(members.len() < full.as_object().unwrap().len(), "{t}: some members are not read");
            let part = Value::Object(members);
            assert!(!entries(t, &full).is_empty(), "{t}");
            assert_eq!(entries(t, &part), entries(t, &full), "{t}");
            assert_eq!(date_entries(t, &part), date_entries(t, &full), "{t}");
        }
        assert_eq!(reads("Slot"), ["serviceType", "specialty", "appointmentType", "identifier"]);
        assert!(reads("Basic").is_empty());
        for t in PARAMS.iter().map(|p| p.resource_type) {
            let bare = json!({"resourceType": t, "id": "1", "meta": {"versionId": "1"}, "text": {"status": "empty"}});
            assert!(
                entries(t, &bare).is_empty() && date_entries(t, &bare).is_empty(),
                "{t}: nothing read, nothing indexed"
            );
        }
    }

    fn ms(v: &str) -> i64 {
        DateTime::parse_from_rfc3339(v).unwrap().timestamp_millis()
    }

    #[test]
    fn dates_become_ranges_of_their_precision() {
        let sched = json!({"resourceType": "Schedule",
            "planningHorizon": {"start": "2026-12-01", "end": "2026-12-31T23:59:59Z"}});
        assert_eq!(
            date_entries("Schedule", &sched),
            vec![DateEntry { param: "date", low: ms("2026-12-01T00:00:00Z"), high: ms("2027-01-01T00:00:00Z") }]
        );
        let open = json!({"resourceType": "Schedule", "planningHorizon": {"start": "2026-12"}});
        assert_eq!(
            date_entries("Schedule", &open),
            vec![DateEntry { param: "date", low: ms("2026-12-01T00:00:00Z"), high: i64::MAX }]
        );
        let appt = json!({"resourceType": "Appointment", "start": "2026-12-07T09:00:00-05:00"});
        assert_eq!(
            date_entries("Appointment", &appt),
            vec![DateEntry { param: "date", low: ms("2026-12-07T14:00:00Z"), high: ms("2026-12-07T14:00:01Z") }]
        );
        let bad = json!({"resourceType": "Schedule", "planningHorizon": {"start": "soon"}});
        assert!(date_entries("Schedule", &bad).is_empty());
        let t = |v: &str| precision_range(v).map(|(a, b)| (a.timestamp_millis(), b.timestamp_millis()));
        assert_eq!(t("2026"), Some((ms("2026-01-01T00:00:00Z"), ms("2027-01-01T00:00:00Z"))));
        assert_eq!(t("2026-02"), Some((ms("2026-02-01T00:00:00Z"), ms("2026-03-01T00:00:00Z"))));
        assert_eq!(t("2026-12-07T10:00"), Some((ms("2026-12-07T10:00:00Z"), ms("2026-12-07T10:01:00Z"))));
        assert_eq!(
            t("2026-12-07T10:00:00.250Z"),
            Some((ms("2026-12-07T10:00:00.250Z"), ms("2026-12-07T10:00:00.251Z")))
        );
        assert_eq!(t("2026-13"), None);
    }

    #[test]
    fn references_follow_the_parameter_paths_and_target() {
        let task = json!({"resourceType": "Task", "for": {"reference": "Patient/maria"},
            "focus": {"reference": "https://x.org/fhir/Appointment/a1"}});
        assert_eq!(references(param("Task", "patient").unwrap(), &task), vec!["Patient/maria"]);
        assert_eq!(references(param("Task", "focus").unwrap(), &task), vec!["Appointment/a1"]);
        let group = json!({"resourceType": "Task", "for": {"reference": "Group/g"}});
        assert!(references(param("Task", "patient").unwrap(), &group).is_empty());
        assert_eq!(fingerprint(), fingerprint());
        assert_eq!(fingerprint().len(), 16);
    }
}

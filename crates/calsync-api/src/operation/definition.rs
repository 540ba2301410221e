//! The OperationDefinitions of the scheduling operations, served at
//! `GET /OperationDefinition/{id}` and referenced from the CapabilityStatement.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

/// One parameter: name, use (in/out), min, max, type, documentation.
type Param = (&'static str, &'static str, u32, &'static str, &'static str, &'static str);

/// One operation: id, code, resource, on instances (else type level), affects state, parameters.
pub struct Operation {
    pub id: &'static str,
    pub code: &'static str,
    pub resource: &'static str,
    pub instance: bool,
    pub affects_state: bool,
    pub parameters: &'static [Param],
}

const FIND_COMMON: &[Param] = &[
    ("start", "in", 1, "1", "dateTime", "Earliest start of the appointment"),
    ("end", "in", 1, "1", "dateTime", "Latest end of the appointment (a date includes that day)"),
    ("specialty", "in", 0, "*", "token", "Schedule specialty"),
    ("visit-type", "in", 0, "*", "token", "Service type of the Schedule"),
    ("practitioner", "in", 0, "*", "Reference", "Practitioner or PractitionerRole among the Schedule's actors"),
    ("location-reference", "in", 0, "*", "Reference", "Location among the Schedule's actors"),
    (
        "organization",
        "in",
        0,
        "*",
        "Reference",
        "Organization managing the Location, PractitionerRole or HealthcareService",
    ),
    ("location-string", "in", 0, "*", "string", "Text in a Location's name or address (city, postal code, street)"),
    ("patient-reference", "in", 0, "1", "Reference", "The patient; their derived Schedule's busy time counts"),
    ("schedule", "in", 0, "*", "Reference", "Only these provider Schedules"),
    ("duration", "in", 0, "1", "integer", "Minutes (default: the length of the shortest free Slot)"),
    ("timezone", "in", 0, "1", "code", "IANA zone for days and preferences (default: the first participant's)"),
    ("_count", "in", 0, "1", "integer", "Options to return (default 10, at most 100)"),
    ("return", "out", 1, "1", "Bundle", "searchset of proposed Appointments; an OperationOutcome entry when none fit"),
];

/// IHE ITI-115's parameters calsync takes without narrowing the options by them.
const FIND_IHE_EXTRA: &[Param] = &[
    ("patient-resource", "in", 0, "*", "Patient", "A patient without a record here: taken, not stored"),
    ("reason", "in", 0, "*", "token", "Clinical reason: taken, does not narrow the options"),
    ("referral-identifier", "in", 0, "1", "Identifier", "The referral: taken, does not narrow the options"),
    ("timing", "in", 0, "1", "Timing", "Preferred times: taken, not used (see $find-mutual's preference)"),
    ("insurance-reference", "in", 0, "*", "Reference", "Insurance: taken, does not narrow the options"),
];

const FIND_MUTUAL_EXTRA: &[Param] = &[
    (
        "participant",
        "in",
        0,
        "*",
        "Reference",
        "Required Patient or RelatedPerson; their derived Schedules constrain the result",
    ),
    ("optional-participant", "in", 0, "*", "Reference", "Optional Patient or RelatedPerson"),
    ("preference", "in", 0, "*", "string", "mornings, afternoons, evenings, weekdays, weekends or day names"),
    ("spread", "in", 0, "1", "boolean", "Options on distinct days"),
    ("explain", "in", 0, "1", "boolean", "Add an OperationOutcome naming who blocks each rejected time"),
];

/// Every operation the server offers.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        id: "appointment-find",
        code: "find",
        resource: "Appointment",
        instance: false,
        affects_state: false,
        parameters: FIND_IHE_EXTRA,
    },
    Operation {
        id: "appointment-find-mutual",
        code: "find-mutual",
        resource: "Appointment",
        instance: false,
        affects_state: false,
        parameters: FIND_MUTUAL_EXTRA,
    },
    Operation {
        id: "appointment-hold",
        code: "hold",
        resource: "Appointment",
        instance: false,
        affects_state: true,
        parameters: &[
            ("appointment", "in", 0, "1", "Appointment", "A proposed Appointment from $find or $find-mutual"),
            ("appointment-reference", "in", 0, "1", "Reference", "IHE ITI-116: an option of $find, by its id"),
            ("return", "out", 1, "1", "Resource", "The pending Appointment (IHE: a Bundle of it); see Expires"),
        ],
    },
    Operation {
        id: "appointment-book",
        code: "book",
        resource: "Appointment",
        instance: false,
        affects_state: true,
        parameters: &[
            ("appointment-reference", "in", 0, "1", "Reference", "A held (pending) Appointment, or an option of $find"),
            ("appointment", "in", 0, "1", "Appointment", "A proposed Appointment"),
            ("appointment-resource", "in", 0, "1", "Appointment", "IHE: pending books it, cancelled cancels it"),
            ("patient-resource", "in", 0, "*", "Patient", "IHE ITI-117: checked, not stored"),
            ("comment", "in", 0, "1", "string", "IHE ITI-117: kept as the Appointment's comment"),
            ("return", "out", 1, "1", "Resource", "The booked Appointment (IHE: a Bundle of it); 409 when taken"),
        ],
    },
    Operation {
        id: "appointment-cancel",
        code: "cancel",
        resource: "Appointment",
        instance: true,
        affects_state: true,
        parameters: &[("return", "out", 1, "1", "Appointment", "The cancelled Appointment")],
    },
    Operation {
        id: "appointment-ics",
        code: "ics",
        resource: "Appointment",
        instance: true,
        affects_state: false,
        parameters: &[(
            "return",
            "out",
            1,
            "1",
            "Binary",
            "text/calendar: the confirmation with time, place and provider only (also GET with Accept: text/calendar)",
        )],
    },
    Operation {
        id: "schedule-import-ics",
        code: "import-ics",
        resource: "Schedule",
        instance: true,
        affects_state: true,
        parameters: &[("return", "out", 1, "1", "OperationOutcome", "How many busy windows were added and removed")],
    },
];

/// Canonical URL of an operation's definition.
pub fn canonical(id: &str) -> String {
    format!("https://calsync.example.org/fhir/OperationDefinition/{id}")
}

fn resource(op: &Operation) -> Value {
    let params = |list: &[Param]| -> Vec<Value> {
        list.iter()
            .map(|(name, use_, min, max, ty, doc)| {
                let mut p = json!({"name": name, "use": use_, "min": min, "max": max, "documentation": doc});
                match *ty {
                    "Reference" => p["type"] = json!("Reference"),
                    "token" | "date" => {
                        p["type"] = json!("string");
                        p["searchType"] = json!(ty);
                    }
                    t => p["type"] = json!(t),
                }
                p
            })
            .collect()
    };
    let mut parameters = params(op.parameters);
    if matches!(op.code, "find" | "find-mutual") {
        parameters = params(FIND_COMMON).into_iter().chain(parameters).collect();
    }
    json!({
        "resourceType": "OperationDefinition",
        "id": op.id,
        "url": canonical(op.id),
        "name": op.id.replace('-', "_"),
        "status": "active",
        "kind": "operation",
        "code": op.code,
        "affectsState": op.affects_state,
        "resource": [op.resource],
        "system": false,
        "type": !op.instance,
        "instance": op.instance,
        "parameter": parameters,
    })
}

pub async fn read(req: HttpRequest, _cx: RequestContext, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let op = OPERATIONS
        .iter()
        .find(|o| o.id == path.as_str())
        .ok_or_else(|| ApiError::not_found(format!("OperationDefinition/{} is not known", path.as_str())))?;
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &resource(op))))
}

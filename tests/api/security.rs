//! Who may do what, over real HTTP with tokens of the tests' own issuer: anonymous callers,
//! forged tokens, two patients, a caregiver, a practitioner and a system; an authorization
//! matrix over every route of the router; searches that never leave a patient's compartment.

use std::collections::BTreeSet;
use std::time::Duration;

use calsync_auth::Grant;
use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

/// The roles of the matrix, in the order of its columns.
const ROLES: [&str; 6] =
    ["anonymous", "Patient/maria", "Patient/bob", "RelatedPerson/ana", "Practitioner/okafor", "system"];

/// A token of the tests' issuer for `who` (one of [`ROLES`]); none for `anonymous`.
fn token_of(app: &TestApp, who: &str) -> Option<String> {
    let grant = match who {
        "anonymous" => return None,
        "system" => return Some(system_token(&app.issuer)),
        "Practitioner/okafor" => Grant {
            subject: "okafor".into(),
            scope: "openid fhirUser user/*.cruds".into(),
            fhir_user: Some(format!("{TEST_ISSUER}fhir/{who}")),
            ..Default::default()
        },
        person => Grant {
            subject: person.replace('/', "-"),
            scope: "openid fhirUser launch/patient patient/*.cruds user/*.rs".into(),
            fhir_user: Some(person.into()),
            patient: None,
            client_id: Some("calsync-page".into()),
        },
    };
    Some(app.issuer.mint(&grant, chrono::Utc::now().timestamp(), Duration::from_secs(3600)))
}

/// A request as `who`, without the harness's system token.
async fn send(app: &TestApp, who: &str, method: Method, path: &str, body: Option<(&str, String)>) -> reqwest::Response {
    let mut r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .request(method, app.url(path));
    if let Some(t) = token_of(app, who) {
        r = r.bearer_auth(t);
    }
    if let Some((content_type, body)) = body {
        r = r.header("Content-Type", content_type).body(body);
    }
    r.send().await.unwrap()
}

async fn get_as(app: &TestApp, who: &str, path: &str) -> reqwest::Response {
    send(app, who, Method::GET, path, None).await
}

fn fhir(v: &Value) -> Option<(&'static str, String)> {
    Some(("application/fhir+json", v.to_string()))
}

/// Busy Slot `id` on Schedule `schedule` on the test day.
fn busy_slot(id: &str, schedule: &str) -> Value {
    json!({"resourceType": "Slot", "id": id, "schedule": {"reference": format!("Schedule/{schedule}")},
        "status": "busy", "start": format!("{}T09:00:00Z", day().0), "end": format!("{}T10:00:00Z", day().0)})
}

/// A free Slot of the clinic's; its id and time carry the matrix's `{r}`, so that each role's
/// booking is at a time of its own.
fn free_slot(id: &str) -> Value {
    json!({"resourceType": "Slot", "id": id, "schedule": {"reference": "Schedule/dr-okafor"}, "status": "free",
        "start": format!("{}T0{{r}}:00:00Z", day().0), "end": format!("{}T0{{r}}:30:00Z", day().0)})
}

fn consent(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Consent", "id": id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": patient}, "performer": [{"reference": patient}], "provision": {"type": "permit"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]}})
}

fn appointment(id: &str, people: &[&str], slot: &str) -> Value {
    let participant: Vec<Value> =
        people.iter().map(|p| json!({"actor": {"reference": p}, "status": "accepted"})).collect();
    json!({"resourceType": "Appointment", "id": id, "status": "booked", "slot": [{"reference": format!("Slot/{slot}")}],
        "start": format!("{}T14:00:00Z", day().0), "end": format!("{}T14:30:00Z", day().0), "participant": participant})
}

/// The clinic of the harness, and a second family: Bob (with caregiver Carl), each person's
/// derived Schedule with a busy Slot, an Appointment and a Consent for each patient.
async fn two_families(app: &TestApp) {
    load_clinic(app).await;
    let d = day().0;
    let resources = [
        json!({"resourceType": "Patient", "id": "bob", "name": [{"family": "Reyes"}]}),
        json!({"resourceType": "RelatedPerson", "id": "carl", "patient": {"reference": "Patient/bob"}}),
        json!({"resourceType": "Schedule", "id": "maria-busy", "active": true, "actor": [{"reference": "Patient/maria"}]}),
        json!({"resourceType": "Schedule", "id": "bob-busy", "active": true, "actor": [{"reference": "Patient/bob"}]}),
        json!({"resourceType": "Schedule", "id": "carl-busy", "active": true, "actor": [{"reference": "RelatedPerson/carl"}]}),
        busy_slot("maria-b1", "maria-busy"),
        busy_slot("ana-b1", "ana-busy"),
        busy_slot("bob-b1", "bob-busy"),
        busy_slot("carl-b1", "carl-busy"),
        appointment("maria-appt", &["Patient/maria", "Practitioner/okafor", "Location/riverside"], "s3"),
        appointment("bob-appt", &["Patient/bob", "Location/riverside"], "s3"),
        consent("maria-consent", "Patient/maria"),
        consent("bob-consent", "Patient/bob"),
        json!({"resourceType": "Task", "id": "bob-task", "status": "completed", "intent": "order",
            "for": {"reference": "Patient/bob"}, "focus": {"reference": "Appointment/bob-appt"}}),
    ];
    for r in resources {
        let path = format!("/{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
        let status = app.put(&path, &r, None).await.status();
        assert!(status.is_success(), "{path}: {status} ({d})");
    }
}

/// What belongs to Bob's family or is someone else's busy time: Maria must never see it.
const NOT_MARIAS: [&str; 10] = [
    "Patient/bob",
    "RelatedPerson/carl",
    "Schedule/bob-busy",
    "Schedule/carl-busy",
    "Slot/bob-b1",
    "Slot/carl-b1",
    "Slot/ana-b1",
    "Appointment/bob-appt",
    "Consent/bob-consent",
    "Task/bob-task",
];

#[tokio::test]
async fn without_a_token_only_discovery_and_the_public_feed_answer() {
    let app = spawn_app().await;
    two_families(&app).await;
    for path in [
        "/Patient/maria",
        "/Slot?status=free",
        "/Appointment/$find-mutual?participant=Patient/maria",
        "/connections?participant=Patient/maria",
        "/publishers",
    ] {
        let resp = get_as(&app, "anonymous", path).await;
        assert_eq!(
            resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()),
            Some("Bearer realm=\"calsync\"".to_string()),
            "{path}"
        );
        let issue = outcome(resp, StatusCode::UNAUTHORIZED).await;
        assert_eq!(issue["code"], "login", "{path}: {issue}");
    }
    for path in [
        "/metadata",
        "/.well-known/smart-configuration",
        "/OperationDefinition/appointment-find-mutual",
        "/SearchParameter/Slot-end",
        "/$bulk-publish",
    ] {
        assert_eq!(get_as(&app, "anonymous", path).await.status(), 200, "{path}");
    }
    // What discovery says: SMART on FHIR, the issuer's endpoints, the scopes read.
    let smart: Value = get_as(&app, "anonymous", "/.well-known/smart-configuration").await.json().await.unwrap();
    assert_eq!(smart["issuer"], TEST_ISSUER);
    assert!(smart["jwks_uri"].as_str().unwrap().ends_with("/jwks.json"), "{smart}");
    assert!(smart["capabilities"].as_array().unwrap().contains(&json!("permission-v2")), "{smart}");
    let metadata: Value = get_as(&app, "anonymous", "/metadata").await.json().await.unwrap();
    let security = &metadata["rest"][0]["security"];
    assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR", "{security}");
    app.database.finish().await;
}

#[tokio::test]
async fn every_forged_token_is_a_401_that_does_not_repeat_it() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let grant = Grant { subject: "s".into(), scope: "system/*.cruds".into(), ..Default::default() };
    let forged = calsync_auth::forgeries(&app.issuer, &grant, chrono::Utc::now().timestamp());
    assert!(forged.len() >= 14);
    for (name, token, _) in forged {
        let resp = app.client.get(app.url("/Location/riverside")).bearer_auth(&token).send().await.unwrap();
        let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")), "{name}");
        let issue = outcome(resp, StatusCode::UNAUTHORIZED).await;
        let said = issue.to_string();
        assert!(token.len() < 20 || !said.contains(&token[token.len() - 20..]), "{name}: {said}");
    }
    // Not a bearer token at all.
    for header in ["Basic dXNlcjpwdw==", "Bearer", "Bearer  "] {
        let resp = app.client.get(app.url("/Location/riverside")).header("Authorization", header).send().await.unwrap();
        outcome(resp, StatusCode::UNAUTHORIZED).await;
    }
    app.database.finish().await;
}

/// The references of every resource in a Bundle (matches and includes).
fn references_in(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let r = &e["resource"];
            Some(format!("{}/{}", r["resourceType"].as_str()?, r["id"].as_str()?))
        })
        .collect()
}

#[tokio::test]
async fn a_patient_and_her_caregiver_search_her_compartment_only() {
    let app = spawn_app().await;
    two_families(&app).await;
    let search = |who: &'static str, query: &'static str| {
        let app = &app;
        async move {
            let resp = get_as(app, who, query).await;
            assert_eq!(resp.status(), 200, "{who} {query}");
            let mut found: Vec<String> = references_in(&resp.json().await.unwrap());
            found.sort();
            found
        }
    };
    assert_eq!(search("Patient/maria", "/Patient").await, ["Patient/maria"]);
    assert_eq!(search("Patient/maria", "/RelatedPerson").await, ["RelatedPerson/ana"]);
    assert_eq!(search("Patient/bob", "/RelatedPerson").await, ["RelatedPerson/carl"]);
    assert_eq!(search("Patient/maria", "/Appointment").await, ["Appointment/maria-appt"]);
    assert_eq!(search("Practitioner/okafor", "/Appointment").await, ["Appointment/maria-appt"]);
    assert_eq!(search("Patient/maria", "/Consent").await, ["Consent/maria-consent"]);
    assert_eq!(search("Patient/maria", "/Task").await, Vec::<String>::new());
    // Busy windows: Maria sees her own, not her daughter's; her daughter both (she acts for
    // Maria); the practitioner none; provider Slots are everyone's.
    let busy = "/Slot?status=busy";
    assert_eq!(search("Patient/maria", busy).await, ["Slot/maria-b1"]);
    assert_eq!(search("RelatedPerson/ana", busy).await, ["Slot/ana-b1", "Slot/maria-b1"]);
    assert_eq!(search("Practitioner/okafor", busy).await, Vec::<String>::new());
    assert_eq!(search("Patient/maria", "/Slot?status=free").await.len(), 4, "the clinic's free Slots");
    assert_eq!(
        search("Patient/maria", "/Schedule").await,
        ["Schedule/ana-busy", "Schedule/dr-okafor", "Schedule/maria-busy"]
    );
    assert_eq!(search("system", busy).await.len(), 4);
    // Includes are checked one by one: Bob's Appointment names the clinic's Slot, and the
    // revinclude of that Slot does not bring it to Maria.
    let with_appointments = search("Patient/maria", "/Slot?_id=s3&_revinclude=Appointment:slot").await;
    assert_eq!(with_appointments, ["Appointment/maria-appt", "Slot/s3"]);
    let from_schedule = search("Patient/maria", "/Slot?status=busy&_include=Slot:schedule").await;
    assert_eq!(from_schedule, ["Schedule/maria-busy", "Slot/maria-b1"]);
    // Reads outside the compartment are not found, so that ids cannot be probed.
    for path in
        ["/Patient/bob", "/Slot/ana-b1", "/Appointment/bob-appt", "/Consent/bob-consent", "/Patient/bob/_history/1"]
    {
        outcome(get_as(&app, "Patient/maria", path).await, StatusCode::NOT_FOUND).await;
    }
    // A caregiver's token naming another patient than the one she cares for is refused.
    let grant = Grant {
        subject: "ana".into(),
        scope: "patient/*.rs".into(),
        fhir_user: Some("RelatedPerson/ana".into()),
        patient: Some("bob".into()),
        client_id: None,
    };
    let token = app.issuer.mint(&grant, chrono::Utc::now().timestamp(), Duration::from_secs(60));
    let resp = app.client.get(app.url("/Patient/bob")).bearer_auth(token).send().await.unwrap();
    outcome(resp, StatusCode::FORBIDDEN).await;
    // A conditional create matches in the caller's compartment only: Maria's criteria naming
    // Bob's Consent create hers, and never hand her his.
    let resp = reqwest::Client::new()
        .post(app.url("/Consent"))
        .bearer_auth(token_of(&app, "Patient/maria").unwrap())
        .header("Content-Type", "application/fhir+json")
        .header("If-None-Exist", "patient=Patient/bob")
        .body(consent("ignored", "Patient/maria").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["patient"]["reference"], "Patient/maria", "{created}");
    // A compartment is remembered for a while, but a new caregiver counts at once, and one who
    // no longer cares for Maria is out at once.
    let zoe = json!({"resourceType": "RelatedPerson", "id": "zoe", "patient": {"reference": "Patient/maria"}});
    assert!(app.put("/RelatedPerson/zoe", &zoe, None).await.status().is_success());
    assert_eq!(search("Patient/maria", "/RelatedPerson").await, ["RelatedPerson/ana", "RelatedPerson/zoe"]);
    assert_eq!(app.client.delete(app.url("/RelatedPerson/ana")).send().await.unwrap().status(), 204);
    assert_eq!(search("Patient/maria", "/RelatedPerson").await, ["RelatedPerson/zoe"]);
    outcome(get_as(&app, "Patient/maria", "/Slot/ana-b1").await, StatusCode::NOT_FOUND).await;
    app.database.finish().await;
}

#[tokio::test]
async fn find_mutual_and_booking_take_only_the_callers_people() {
    let app = spawn_app().await;
    two_families(&app).await;
    let d = day().0;
    let find = |people: &str| format!("/Appointment/$find-mutual?start={d}&end={d}&duration=30&{people}");
    let maria_and_ana = find("participant=Patient/maria&participant=RelatedPerson/ana");
    assert_eq!(get_as(&app, "Patient/maria", &maria_and_ana).await.status(), 200);
    assert_eq!(get_as(&app, "RelatedPerson/ana", &maria_and_ana).await.status(), 200);
    outcome(get_as(&app, "Patient/bob", &maria_and_ana).await, StatusCode::FORBIDDEN).await;
    outcome(get_as(&app, "Practitioner/okafor", &maria_and_ana).await, StatusCode::FORBIDDEN).await;
    let with_bob = find("participant=Patient/maria&participant=Patient/bob");
    outcome(get_as(&app, "Patient/maria", &with_bob).await, StatusCode::FORBIDDEN).await;

    // Booking Bob into a time, as Maria: refused; as Bob: booked.
    let body = |key: &str| {
        with_appointment(&proposed(
            &json!({"id": "s0", "start": format!("{d}T14:00:00Z"), "end": format!("{d}T14:30:00Z")}),
            &[key, "Practitioner/okafor"],
        ))
    };
    let resp = send(&app, "Patient/maria", Method::POST, "/Appointment/$book", fhir(&body("Patient/bob"))).await;
    outcome(resp, StatusCode::FORBIDDEN).await;

    // An idempotency key answers only its caller, and only the same request.
    let book = |who: &'static str, body: Value| {
        let app = &app;
        async move {
            let mut r = reqwest::Client::new()
                .post(app.url("/Appointment/$book"))
                .header("Content-Type", "application/fhir+json")
                .header("Idempotency-Key", "visit-1")
                .body(body.to_string());
            if let Some(t) = token_of(app, who) {
                r = r.bearer_auth(t);
            }
            r.send().await.unwrap()
        }
    };
    let first = book("Patient/maria", body("Patient/maria")).await;
    assert_eq!(first.status(), 200);
    let booked: Value = first.json().await.unwrap();
    let again: Value = book("Patient/maria", body("Patient/maria")).await.json().await.unwrap();
    assert_eq!(again["id"], booked["id"], "the same caller, the same request: the same booking");
    outcome(book("Patient/bob", body("Patient/bob")).await, StatusCode::CONFLICT).await;
    let other = with_appointment(&proposed(
        &json!({"id": "s1", "start": format!("{d}T14:30:00Z"), "end": format!("{d}T15:00:00Z")}),
        &["Patient/maria"],
    ));
    outcome(book("Patient/maria", other).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    // Bob cannot read, cancel or export Maria's booking.
    let id = booked["id"].as_str().unwrap();
    outcome(
        send(&app, "Patient/bob", Method::POST, &format!("/Appointment/{id}/$cancel"), None).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    outcome(get_as(&app, "Patient/bob", &format!("/Appointment/{id}/$ics")).await, StatusCode::NOT_FOUND).await;
    app.database.finish().await;
}

/// The routes of the router, as (method, pattern): read from calsync-api's sources, where every
/// route is a `web::resource("…")` with its `.route(…)`s.
fn routes_of_the_router() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../calsync-api/src");
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for piece in text.split("web::resource(\"").skip(1) {
                let pattern = piece.split('"').next().unwrap().to_string();
                let chain = piece.split("web::resource(").next().unwrap();
                for (call, method) in [
                    ("web::get()", "GET"),
                    ("get_or_head()", "GET"),
                    ("web::post()", "POST"),
                    ("web::put()", "PUT"),
                    ("web::delete()", "DELETE"),
                ] {
                    if chain.contains(&format!(".route({call}")) {
                        found.insert((method.to_string(), pattern.clone()));
                    }
                }
            }
        }
    }
    found
}

/// One row of the matrix: a request per role (`{r}` in the path is the role's column), what
/// the system writes before each role's attempt, and the status each role gets (2 = any 2xx
/// or 3xx).
struct Row {
    method: &'static str,
    pattern: &'static str,
    path: String,
    body: Option<Value>,
    before: Vec<Value>,
    expect: [u16; 6],
}

fn row(method: &'static str, pattern: &'static str, path: &str, expect: [u16; 6]) -> Row {
    Row { method, pattern, path: path.into(), body: None, before: Vec::new(), expect }
}

impl Row {
    fn with(mut self, body: Value) -> Row {
        self.body = Some(body);
        self
    }

    fn given(mut self, before: Vec<Value>) -> Row {
        self.before = before;
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_every_route_every_role() {
    let feed = serve_feed(busy_at("0900", "1000"));
    // Every path of this server answers the same (empty) manifest.
    let manifest =
        serve_json(json!({"transactionTime": "2026-12-01T00:00:00Z", "request": "x", "output": [], "error": []}))
            .trim_end_matches("/jwks.json")
            .to_string();
    let app = spawn_app_with(|s| {
        s.secret_key = Some("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".into());
        s.google = Some(calsync_system::OAuthProvider {
            client_id: "calsync-google".into(),
            client_secret: "g-secret".into(),
            authorize_url: "http://127.0.0.1:9/auth".into(),
            token_url: "http://127.0.0.1:9/token".into(),
            api_url: "http://127.0.0.1:9/".into(),
        });
    })
    .await;
    two_families(&app).await;
    let d = day().0;
    // What the system makes first: a connection of Maria's per role (to delete) and one to
    // read; a publisher per role (to delete) and one to read.
    let mut connections = Vec::new();
    let mut publishers = Vec::new();
    for copy in 0..7 {
        let c: Value = app
            .post("/connections", &json!({"participant": "Patient/maria", "kind": "ics", "url": feed}))
            .await
            .json()
            .await
            .unwrap();
        connections.push(c["id"].as_str().unwrap().to_string());
        let p = app.post("/publishers", &json!({"manifest": format!("{manifest}/copy-{copy}/$bulk-publish")})).await;
        assert_eq!(p.status(), 201);
        publishers.push(p.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    let (c, p) = (&connections[6], &publishers[6]);
    let proposal = |slot: &str, who: &str| {
        with_appointment(&proposed(
            &json!({"id": slot, "start": format!("{d}T0{{r}}:00:00Z"), "end": format!("{d}T0{{r}}:30:00Z")}),
            &[who, "Practitioner/okafor"],
        ))
    };
    let ics = busy_at("0800", "0830");
    const ALL: [u16; 6] = [2, 2, 2, 2, 2, 2];
    const SYSTEM: [u16; 6] = [401, 403, 403, 403, 403, 2];
    const MARIAS: [u16; 6] = [401, 2, 404, 2, 404, 2];
    let rows = vec![
        row("GET", "/metadata", "/metadata", ALL),
        row("GET", "/.well-known/smart-configuration", "/.well-known/smart-configuration", ALL),
        // The tests' server trusts an outside issuer: it has no keys of its own to publish.
        row("GET", "/.well-known/jwks.json", "/.well-known/jwks.json", [404; 6]),
        row("GET", "/OperationDefinition/{id}", "/OperationDefinition/appointment-find", ALL),
        row("GET", "/SearchParameter/{id}", "/SearchParameter/Slot-end", ALL),
        row("GET", "/$bulk-publish", "/$bulk-publish", ALL),
        row("GET", "/$bulk-publish/{file}", "/$bulk-publish/locations.ndjson", ALL),
        row("GET", "/{type}", "/Patient", [401, 2, 2, 2, 2, 2]),
        row("GET", "/{type}", "/Device", [401, 403, 403, 403, 403, 2]),
        row("POST", "/{type}", "/Consent", [401, 2, 403, 2, 403, 2]).with(consent("ignored", "Patient/maria")),
        row("POST", "/{type}", "/Location", [401, 403, 403, 403, 403, 2]).with(json!({"resourceType": "Location", "name": "New"})),
        row("POST", "/{type}/_search", "/Slot/_search", [401, 2, 2, 2, 2, 2]),
        row("GET", "/{type}/{id}", "/Patient/maria", MARIAS),
        row("GET", "/{type}/{id}", "/Slot/maria-b1", MARIAS),
        row("GET", "/{type}/{id}", "/Slot/ana-b1", [401, 404, 404, 2, 404, 2]),
        row("GET", "/{type}/{id}", "/Location/riverside", [401, 2, 2, 2, 2, 2]),
        row("PUT", "/{type}/{id}", "/Patient/maria", [401, 2, 403, 403, 403, 2]).with(json!({"resourceType": "Patient", "id": "maria", "name": [{"family": "Silva"}]})),
        row("PUT", "/{type}/{id}", "/Slot/s-new-{r}", [401, 403, 403, 403, 2, 2]).with(free_slot("s-new-{r}")),
        row("DELETE", "/{type}/{id}", "/Consent/gone-{r}", [401, 2, 403, 403, 403, 2]).given(vec![consent("gone-{r}", "Patient/maria")]),
        row("GET", "/{type}/{id}/_history/{vid}", "/Patient/maria/_history/1", MARIAS),
        row("GET", "/Appointment/$find", &format!("/Appointment/$find?start={d}&end={d}"), [401, 2, 2, 2, 2, 2]),
        row("POST", "/Appointment/$find", "/Appointment/$find", [401, 2, 2, 2, 2, 2]).with(json!({"resourceType": "Parameters", "parameter": [
            {"name": "start", "valueDate": d}, {"name": "end", "valueDate": d}]})),
        row("GET", "/Appointment/$find-mutual", &format!("/Appointment/$find-mutual?start={d}&end={d}&participant=Patient/maria"), [401, 2, 403, 2, 403, 2]),
        row("POST", "/Appointment/$find-mutual", "/Appointment/$find-mutual", [401, 2, 403, 2, 403, 2]).with(json!({"resourceType": "Parameters", "parameter": [
            {"name": "start", "valueDate": d}, {"name": "end", "valueDate": d}, {"name": "participant", "valueReference": {"reference": "Patient/maria"}}]})),
        row("POST", "/Appointment/$hold", "/Appointment/$hold", [401, 2, 403, 2, 403, 2]).with(proposal("h-{r}", "Patient/maria")).given(vec![free_slot("h-{r}")]),
        row("POST", "/Appointment/$book", "/Appointment/$book", [401, 2, 403, 2, 403, 2]).with(proposal("b-{r}", "Patient/maria")).given(vec![free_slot("b-{r}")]),
        row("POST", "/Appointment/{id}/$cancel", "/Appointment/c-{r}/$cancel", [401, 2, 404, 2, 2, 2]).given(vec![appointment("c-{r}", &["Patient/maria", "Practitioner/okafor"], "s2")]),
        row("GET", "/Appointment/{id}/$ics", "/Appointment/maria-appt/$ics", [401, 2, 404, 2, 2, 2]),
        row("POST", "/Schedule/{id}/$import-ics", "/Schedule/maria-busy/$import-ics", MARIAS),
        row("POST", "/Slot/{id}/$booking-link", "/Slot/link-{r}/$booking-link", [401, 2, 403, 2, 403, 2])
            .with(json!({"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": {"reference": "Patient/maria"}}]}))
            .given(vec![json!({"resourceType": "Slot", "id": "link-{r}", "schedule": {"reference": "Schedule/dr-okafor"}, "status": "free",
                "start": format!("{d}T19:00:00Z"), "end": format!("{d}T19:30:00Z"),
                "extension": [{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link", "valueUrl": "https://portal.example/book"}]})]),
        // Public, authenticated by their state alone: a forged one is a 400 for anyone.
        row("GET", "/$booking-return", "/$booking-return?state=forged&outcome=booked", [400; 6]),
        row("POST", "/$booking-return", "/$booking-return?state=forged&outcome=booked", [400; 6]),
        row("GET", "/connect/{provider}/callback", "/connect/google/callback?state=forged&code=x", [400; 6]),
        // The development issuer's sign-in is not there when an outside issuer is trusted.
        row("GET", "/auth/authorize", "/auth/authorize?response_type=code", [404; 6]),
        row("POST", "/auth/authorize", "/auth/authorize", [404; 6]),
        row("POST", "/auth/token", "/auth/token", [404; 6]),
        row("GET", "/connect/{provider}/start", "/connect/google/start?participant=Patient/maria", [401, 2, 403, 2, 403, 2]),
        row("POST", "/connections", "/connections", [401, 2, 403, 2, 403, 2]).with(json!({"participant": "Patient/maria", "kind": "ics", "url": feed})),
        row("GET", "/connections", "/connections?participant=Patient/maria", [401, 2, 403, 2, 403, 2]),
        row("POST", "/connections/$sync-all", "/connections/$sync-all", SYSTEM),
        row("GET", "/connections/{id}", &format!("/connections/{c}"), MARIAS),
        row("DELETE", "/connections/{id}", "/connections/{conn}", MARIAS),
        row("POST", "/connections/{id}/$sync", &format!("/connections/{c}/$sync"), MARIAS),
        row("POST", "/publishers", "/publishers", SYSTEM).with(json!({"manifest": format!("{manifest}/role-{{r}}/$bulk-publish")})),
        row("GET", "/publishers", "/publishers", SYSTEM),
        row("GET", "/publishers/{id}", &format!("/publishers/{p}"), SYSTEM),
        row("DELETE", "/publishers/{id}", "/publishers/{publisher}", SYSTEM),
        row("POST", "/publishers/{id}/$poll", &format!("/publishers/{p}/$poll"), SYSTEM),
    ];
    // Every route of the router has its row.
    let covered: BTreeSet<(String, String)> =
        rows.iter().map(|r| (r.method.to_string(), r.pattern.to_string())).collect();
    let missing: Vec<_> = routes_of_the_router().difference(&covered).cloned().collect();
    assert!(missing.is_empty(), "routes without a row in the matrix: {missing:?}");

    let mut wrong = Vec::new();
    for row in &rows {
        for (r, who) in ROLES.iter().enumerate() {
            let fill = |text: &str| {
                text.replace("{r}", &r.to_string())
                    .replace("{conn}", &connections[r])
                    .replace("{publisher}", &publishers[r])
            };
            for resource in &row.before {
                let resource: Value = serde_json::from_str(&fill(&resource.to_string())).unwrap();
                let path =
                    format!("/{}/{}", resource["resourceType"].as_str().unwrap(), resource["id"].as_str().unwrap());
                assert!(app.put(&path, &resource, None).await.status().is_success(), "{path}");
            }
            let path = fill(&row.path);
            let (content_type, body) = match (&row.body, row.pattern) {
                (_, "/Schedule/{id}/$import-ics") => (Some("text/calendar"), Some(ics.clone())),
                (Some(b), _) if b.get("resourceType").is_some() => {
                    (Some("application/fhir+json"), Some(fill(&b.to_string())))
                }
                (Some(b), _) => (Some("application/json"), Some(fill(&b.to_string()))),
                (None, _) => (None, None),
            };
            let body = content_type.zip(body);
            let resp = send(&app, who, row.method.parse().unwrap(), &path, body).await;
            let status = resp.status().as_u16();
            let expected = row.expect[r];
            let ok = if expected == 2 { (200..400).contains(&status) } else { status == expected };
            if !ok {
                wrong.push(format!(
                    "{} {path} as {who}: {status}, expected {expected}: {}",
                    row.method,
                    resp.text().await.unwrap_or_default().chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{} cells wrong:\n{}", wrong.len(), wrong.join("\n"));
    app.database.finish().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    /// No search of Maria's, whatever its parameters, includes and pages, returns what is not
    /// hers.
    #[test]
    fn no_search_path_leaves_the_patients_compartment(
        searches in proptest::collection::vec((0usize..6, proptest::collection::vec(0usize..12, 0..4), 1u32..4), 1..6)
    ) {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let app = spawn_app().await;
            two_families(&app).await;
            const TYPES: [&str; 6] = ["Slot", "Schedule", "Appointment", "Patient", "RelatedPerson", "Consent"];
            const PARAMS: [&str; 12] = [
                "_include=Slot:schedule", "_revinclude=Appointment:slot", "_include=Appointment:patient",
                "_include=Appointment:actor", "_revinclude=Slot:schedule", "_include:iterate=Schedule:actor",
                "_revinclude=Appointment:patient", "_revinclude=RelatedPerson:patient", "_include=RelatedPerson:patient",
                "status=busy", "_include=Consent:patient", "_revinclude=Consent:patient",
            ];
            for (t, params, count) in &searches {
                let mut query: Vec<String> = params.iter().map(|p| PARAMS[*p].to_string()).collect();
                query.push(format!("_count={count}"));
                let mut next = Some(format!("/{}?{}", TYPES[*t], query.join("&")));
                let mut pages = 0;
                while let Some(path) = next.take() {
                    pages += 1;
                    let resp = get_as(&app, "Patient/maria", &path).await;
                    let status = resp.status();
                    // A parameter a type does not have is a 400, never a leak.
                    if status == 400 {
                        break;
                    }
                    assert_eq!(status, 200, "{path}");
                    let bundle: Value = resp.json().await.unwrap();
                    for r in references_in(&bundle) {
                        assert!(!NOT_MARIAS.contains(&r.as_str()), "{path} returned {r}");
                    }
                    next = bundle["link"].as_array().into_iter().flatten().find(|l| l["relation"] == "next").and_then(|l| {
                        l["url"].as_str().map(|u| u.trim_start_matches(&app.base).to_string())
                    });
                    if pages > 20 {
                        break;
                    }
                }
            }
            app.database.finish().await;
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_records_participants_data_bookings_and_refusals() {
    let app = spawn_app().await;
    two_families(&app).await;
    let d = day().0;
    let asked = |r: reqwest::RequestBuilder| r.header("X-Request-Id", "req-maria-1");
    let maria = token_of(&app, "Patient/maria").unwrap();
    let read = asked(reqwest::Client::new().get(app.url("/Patient/maria")).bearer_auth(&maria)).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let find =
        format!("/Appointment/$find-mutual?start={d}&end={d}&participant=Patient/maria&participant=RelatedPerson/ana");
    assert_eq!(get_as(&app, "Patient/maria", &find).await.status(), 200);
    let body = with_appointment(&proposed(
        &json!({"id": "s0", "start": format!("{d}T14:00:00Z"), "end": format!("{d}T14:30:00Z")}),
        &["Patient/maria"],
    ));
    assert_eq!(send(&app, "Patient/maria", Method::POST, "/Appointment/$book", fhir(&body)).await.status(), 200);
    // Provider availability is nobody's data: not audited.
    assert_eq!(get_as(&app, "Patient/maria", "/Slot?status=free").await.status(), 200);
    // Refusals: Bob reading Maria (404 to him), and no token at all.
    assert_eq!(get_as(&app, "Patient/bob", "/Patient/maria").await.status(), 404);
    assert_eq!(get_as(&app, "anonymous", "/Patient/maria?name=secret-query").await.status(), 401);

    // The trail is written off the request's path: wait for it.
    let mut events = Vec::new();
    for _ in 0..100 {
        let b: Value = app.get("/AuditEvent?_count=100").await.json().await.unwrap();
        events =
            b["entry"].as_array().cloned().unwrap_or_default().into_iter().map(|e| e["resource"].clone()).collect();
        if events.len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let subtypes: Vec<(String, String, String)> = events
        .iter()
        .map(|e| {
            (
                e["subtype"][0]["code"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for expected in [("read", "R", "0"), ("$find-mutual", "E", "0"), ("$book", "C", "0"), ("read", "R", "4")] {
        let expected = (expected.0.to_string(), expected.1.to_string(), expected.2.to_string());
        assert!(subtypes.contains(&expected), "{expected:?} in {subtypes:?}");
    }
    assert!(!subtypes.iter().any(|s| s.0 == "search-type"), "free Slots are nobody's data: {subtypes:?}");
    let read = events.iter().find(|e| e["entity"].to_string().contains("req-maria-1")).expect("the request id");
    assert_eq!(read["agent"][0]["who"]["reference"], "Patient/maria");
    assert_eq!(read["agent"][1]["who"]["identifier"]["value"], "calsync-page");
    assert_eq!(read["entity"][0]["what"]["reference"], "Patient/maria");
    let found = events.iter().find(|e| e["subtype"][0]["code"] == "$find-mutual").unwrap();
    assert!(found["entity"].to_string().contains("RelatedPerson/ana"), "{found}");
    let all = serde_json::to_string(&events).unwrap();
    for never in ["secret-query", "Bearer", &maria[..30], "Silva"] {
        assert!(!all.contains(never), "the trail holds no {never:?}");
    }
    // Searchable by patient; for system callers only; written by calsync only.
    let by_patient: Value = app.get("/AuditEvent?patient=Patient/maria").await.json().await.unwrap();
    assert!(by_patient["total"].as_u64().unwrap() >= 3, "{by_patient}");
    outcome(get_as(&app, "Patient/maria", "/AuditEvent").await, StatusCode::FORBIDDEN).await;
    let forged = json!({"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-01-01T00:00:00Z", "agent": [], "source": {"observer": {"display": "x"}}});
    outcome(app.post("/AuditEvent", &forged).await, StatusCode::FORBIDDEN).await;
    app.database.finish().await;
}

#[tokio::test]
async fn the_development_issuer_signs_a_smart_app_in_with_pkce() {
    use base64::Engine;
    use sha2::Digest;
    let mut app = spawn_app_with(|s| {
        s.auth = calsync_system::AuthConfig::default();
    })
    .await;
    // The server trusts its own development issuer now, not the tests': the system token the
    // data is loaded with is the development issuer's too.
    let development = calsync_system::authentication::development_issuer(&calsync_system::Settings::new("", ""));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {}", system_token(&development)).parse().unwrap());
    app.client = reqwest::Client::builder().default_headers(headers).build().unwrap();
    load_clinic(&app).await;
    let smart: Value = get_as(&app, "anonymous", "/.well-known/smart-configuration").await.json().await.unwrap();
    let (authorize, token_url) = (
        smart["authorization_endpoint"].as_str().unwrap().to_string(),
        smart["token_endpoint"].as_str().unwrap().to_string(),
    );
    assert!(authorize.starts_with(&app.base) && token_url.starts_with(&app.base), "{smart}");
    let keys: Value = get_as(&app, "anonymous", "/.well-known/jwks.json").await.json().await.unwrap();
    assert_eq!(keys["keys"][0]["alg"], "ES256");

    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let verifier = "a-code-verifier-of-the-app-that-is-long-enough-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let params = |redirect: &str| {
        vec![
            ("response_type", "code".to_string()),
            ("client_id", "test-app".to_string()),
            ("redirect_uri", redirect.to_string()),
            ("scope", "openid fhirUser launch/patient patient/*.rs".to_string()),
            ("state", "s-42".to_string()),
            ("code_challenge", challenge.clone()),
            ("code_challenge_method", "S256".to_string()),
        ]
    };
    let callback = "http://127.0.0.1:9/callback";
    let page = browser.get(&authorize).query(&params(callback)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Silva") && html.contains("RelatedPerson/ana") && html.contains("Practitioner/okafor"),
        "{html}"
    );
    // Ana signs in: the code comes back with the state.
    let sign_in = |person: &str, decision: &str| {
        let mut form = params(callback);
        form.push(("person", person.to_string()));
        form.push(("decision", decision.to_string()));
        browser.post(&authorize).form(&form).send()
    };
    let back = sign_in("RelatedPerson/ana", "allow").await.unwrap();
    assert_eq!(back.status(), 302);
    let location = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let query: std::collections::HashMap<String, String> = location.query_pairs().into_owned().collect();
    assert!(location.as_str().starts_with(callback) && query["state"] == "s-42", "{location}");
    let exchange = |code: &str, verifier: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", callback),
            ("client_id", "test-app"),
            ("code_verifier", verifier),
        ];
        browser.post(&token_url).form(&form).send()
    };
    let wrong = exchange(&query["code"], "another-verifier-that-is-long-enough-for-the-rule-0123456").await.unwrap();
    assert_eq!(wrong.status(), 400);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_grant");
    // The code was spent by the wrong verifier: sign in again.
    let back = sign_in("RelatedPerson/ana", "allow").await.unwrap();
    let location = url::Url::parse(back.headers()["location"].to_str().unwrap()).unwrap();
    let code = location.query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let answer: Value = exchange(&code, verifier).await.unwrap().json().await.unwrap();
    assert_eq!(
        (answer["token_type"].as_str(), answer["patient"].as_str()),
        (Some("Bearer"), Some("maria")),
        "{answer}"
    );
    assert_eq!(answer["fhirUser"], "RelatedPerson/ana");
    assert_eq!(exchange(&code, verifier).await.unwrap().status(), 400, "a code works once");
    // The token works as Ana's, acting for Maria, and reaches no further.
    let token = answer["access_token"].as_str().unwrap();
    let read = |path: &str| browser.get(app.url(path)).bearer_auth(token).send();
    assert_eq!(read("/Patient/maria").await.unwrap().status(), 200);
    assert_eq!(read("/Device").await.unwrap().status(), 403);
    // Declining sends the app an error; a redirect elsewhere is refused.
    let declined = sign_in("Patient/maria", "deny").await.unwrap();
    assert!(declined.headers()["location"].to_str().unwrap().contains("error=access_denied"));
    let elsewhere = browser.get(&authorize).query(&params("https://evil.example/cb")).send().await.unwrap();
    assert_eq!(elsewhere.status(), 400);
    app.database.finish().await;
}

#[tokio::test]
async fn absolute_urls_come_from_public_url_and_forwarded_headers_only_from_trusted_proxies() {
    let self_link = |b: &Value| {
        b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "self").unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // Not configured: the request's Host; a forwarded host from an untrusted peer is ignored.
    let app = spawn_app().await;
    load_clinic(&app).await;
    let forged = app
        .client
        .get(app.url("/Location"))
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .header("Forwarded", "host=evil.example;proto=https")
        .send()
        .await
        .unwrap();
    let link = self_link(&forged.json().await.unwrap());
    assert!(link.starts_with(&app.base), "{link}");
    app.database.finish().await;
    // From a trusted proxy (loopback here), its headers name the address.
    let app = spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let proxied = app
        .client
        .get(app.url("/Location"))
        .header("X-Forwarded-Host", "calsync.example.org")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert!(self_link(&proxied.json().await.unwrap()).starts_with("https://calsync.example.org/"));
    app.database.finish().await;
    // public_url wins over everything.
    let app = spawn_app_with(|s| s.public_url = Some("https://calsync.example.org/fhir".into())).await;
    let answer = app.client.get(app.url("/Location")).header("X-Forwarded-Host", "evil.example").send().await.unwrap();
    assert!(self_link(&answer.json().await.unwrap()).starts_with("https://calsync.example.org/fhir/Location"));
    let smart: Value = app.get("/.well-known/smart-configuration").await.json().await.unwrap();
    assert!(
        smart["jwks_uri"].as_str().unwrap().starts_with("http://127.0.0.1:"),
        "the tests' issuer's own address: {smart}"
    );
    app.database.finish().await;
}

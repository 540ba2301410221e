//! The harness every black-box test shares: the real server on a random port with a fresh
//! database (SQLite, or PostgreSQL when CALSYNC_TEST_POSTGRES_URL is set), real HTTP, and the
//! helpers more than one capability uses.

use std::time::Duration;

use calsync_auth::{Grant, Issuer};
use calsync_store::testing::TestDatabase;
use calsync_system::{Application, AuthMode, Settings};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

pub(crate) struct TestApp {
    pub(crate) base: String,
    /// A client whose every request carries a system token (`system/*.cruds`): what the tests
    /// of the API's behaviour use. The security tests send their own tokens.
    pub(crate) client: Client,
    pub(crate) database: TestDatabase,
    /// The tests' own token issuer, the one the server trusts (its JWKS served on loopback).
    pub(crate) issuer: Issuer,
}

/// The `iss` of the tests' issuer.
pub(crate) const TEST_ISSUER: &str = "https://issuer.test.example/";
/// The `aud` the tests' server requires.
pub(crate) const TEST_AUDIENCE: &str = "https://calsync.test.example/fhir";

/// A token issuer of the tests' own: a key pair from a seed drawn now, and its JWKS served on
/// loopback (returns the issuer and the JWKS address).
pub(crate) fn test_issuer() -> (Issuer, String) {
    let seed = format!("{:?}-{}", std::time::SystemTime::now(), std::process::id());
    let issuer = Issuer::from_seed(TEST_ISSUER, TEST_AUDIENCE, seed.as_bytes());
    let url = serve_json(issuer.jwks());
    (issuer, url)
}

/// A system token of `issuer`: every resource, every interaction.
pub(crate) fn system_token(issuer: &Issuer) -> String {
    let grant = Grant { subject: "test-service".into(), scope: "system/*.cruds".into(), ..Default::default() };
    issuer.mint(&grant, chrono::Utc::now().timestamp(), Duration::from_secs(3600))
}

pub(crate) async fn spawn_app() -> TestApp {
    spawn_app_holding(600).await
}

pub(crate) async fn spawn_app_holding(hold_seconds: u32) -> TestApp {
    spawn_app_with(|s| s.hold_seconds = hold_seconds).await
}

pub(crate) async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::create().await;
    let mut settings = Settings::new("127.0.0.1:0", database.url.clone());
    // The calendars and publishers these tests serve are on loopback.
    settings.egress.private_networks = true;
    let (issuer, jwks) = test_issuer();
    settings.auth.mode = Some(AuthMode::Issuer);
    settings.auth.issuer = Some(TEST_ISSUER.into());
    settings.auth.audience = Some(TEST_AUDIENCE.into());
    settings.auth.jwks_url = Some(jwks);
    configure(&mut settings);
    let app = Application::build(&settings).await.expect("server starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run());
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {}", system_token(&issuer)).parse().unwrap());
    let client = Client::builder().default_headers(headers).build().unwrap();
    TestApp { base, client, database, issuer }
}

impl TestApp {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .header("Content-Type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    pub(crate) async fn put(&self, path: &str, body: &Value, if_match: Option<&str>) -> Response {
        let mut r =
            self.client.put(self.url(path)).header("Content-Type", "application/fhir+json").body(body.to_string());
        if let Some(m) = if_match {
            r = r.header("If-Match", m);
        }
        r.send().await.unwrap()
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
}

/// Asserts an OperationOutcome with `status`, and returns its first issue.
pub(crate) async fn outcome(resp: Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/fhir+json"), "{ct}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    body["issue"][0].clone()
}

pub(crate) fn slot() -> Value {
    json!({"resourceType": "Slot", "schedule": {"reference": "Schedule/dr-okafor"}, "status": "free",
           "start": "2026-12-07T14:00:00Z", "end": "2026-12-07T14:30:00Z"})
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

pub(crate) async fn bundle(app: &TestApp, query: &str) -> Value {
    let resp = app.get(&format!("/Slot?{query}")).await;
    assert_eq!(resp.status(), 200, "{query}");
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    b
}

pub(crate) fn ids(b: &Value) -> Vec<String> {
    b["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap().to_string()).collect()
}

/// The test day: 30 days ahead (calendars are imported over the next 180 days), as
/// `YYYY-MM-DD` and `YYYYMMDD`.
pub(crate) fn day() -> (String, String) {
    let d = (chrono::Utc::now() + chrono::TimeDelta::days(30)).date_naive();
    (d.format("%Y-%m-%d").to_string(), d.format("%Y%m%d").to_string())
}

/// A clinic with one practitioner's Schedule and four half-hour Slots from 14:00Z on the test
/// day, a patient, and a caregiver whose derived Schedule is in Los Angeles.
pub(crate) async fn load_clinic(app: &TestApp) {
    let put = |path: String, body: Value| async move {
        let status = app.put(&path, &body, None).await.status();
        assert!(status.is_success(), "{path}: {status}");
    };
    put(
        "/Location/riverside".into(),
        json!({"resourceType": "Location", "id": "riverside", "name": "Riverside Clinic"}),
    )
    .await;
    put(
        "/Schedule/dr-okafor".into(),
        json!({"resourceType": "Schedule", "id": "dr-okafor", "active": true,
        "actor": [{"reference": "Location/riverside"}, {"reference": "Practitioner/okafor"}]}),
    )
    .await;
    for (i, start) in ["14:00", "14:30", "15:00", "15:30"].iter().enumerate() {
        let (h, m) = start.split_once(':').unwrap();
        let end = if m == "00" { format!("{h}:30") } else { format!("{}:00", h.parse::<u32>().unwrap() + 1) };
        put(
            format!("/Slot/s{i}"),
            json!({"resourceType": "Slot", "id": format!("s{i}"), "schedule": {"reference": "Schedule/dr-okafor"},
            "status": "free", "start": format!("{}T{start}:00Z", day().0), "end": format!("{}T{end}:00Z", day().0)}),
        )
        .await;
    }
    put(
        "/Practitioner/okafor".into(),
        json!({"resourceType": "Practitioner", "id": "okafor", "name": [{"prefix": ["Dr."], "given": ["Ada"], "family": "Okafor"}]}),
    )
    .await;
    put("/Patient/maria".into(), json!({"resourceType": "Patient", "id": "maria", "name": [{"family": "Silva"}]}))
        .await;
    put(
        "/RelatedPerson/ana".into(),
        json!({"resourceType": "RelatedPerson", "id": "ana", "patient": {"reference": "Patient/maria"}}),
    )
    .await;
    put(
        "/Schedule/ana-busy".into(),
        json!({"resourceType": "Schedule", "id": "ana-busy", "active": true,
        "actor": [{"reference": "RelatedPerson/ana"}],
        "extension": [{"url": "https://calsync.example.org/fhir/StructureDefinition/participant-availability",
            "extension": [{"url": "timezone", "valueCode": "America/Los_Angeles"}]}]}),
    )
    .await;
}

pub(crate) fn find_path() -> String {
    let d = day().0;
    format!(
        "/Appointment/$find-mutual?start={d}&end={d}&duration=30&participant=Patient/maria&participant=RelatedPerson/ana&practitioner=Practitioner/okafor"
    )
}

pub(crate) async fn proposals(app: &TestApp, path: &str) -> Vec<Value> {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    matches(&resp.json().await.unwrap())
}

/// The resources of a Bundle's entries of search mode `match`.
pub(crate) fn matches(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"].clone())
        .collect()
}

/// Start times (HH:MM, UTC) of proposals.
pub(crate) fn starts(found: &[Value]) -> Vec<String> {
    found.iter().map(|a| a["start"].as_str().unwrap()[11..16].to_string()).collect()
}

/// An iCalendar event on the test day from `from` to `to` (HHMM, UTC).
pub(crate) fn busy_at(from: &str, to: &str) -> String {
    let d = day().1;
    ics_busy(&format!("{d}T{from}00Z"), &format!("{d}T{to}00Z"))
}

pub(crate) async fn import_ics(app: &TestApp, schedule: &str, ics: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/Schedule/{schedule}/$import-ics")))
        .header("Content-Type", "text/calendar")
        .body(ics.to_string())
        .send()
        .await
        .unwrap()
}

pub(crate) fn ics_busy(start: &str, end: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:x@test\r\nDTSTAMP:20300101T000000Z\r\nSUMMARY:Dentist\r\nDTSTART:{start}\r\nDTEND:{end}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

pub(crate) async fn post_parameters(
    app: &TestApp,
    path: &str,
    parameters: Value,
    key: Option<&str>,
) -> reqwest::Response {
    let mut r =
        app.client.post(app.url(path)).header("Content-Type", "application/fhir+json").body(parameters.to_string());
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    r.send().await.unwrap()
}

pub(crate) fn with_appointment(a: &Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "appointment", "resource": a}]})
}

pub(crate) fn with_reference(id: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{id}")}}]})
}

/// A proposed Appointment for a Slot and its time, with required participants.
pub(crate) fn proposed(slot: &Value, people: &[&str]) -> Value {
    let participant: Vec<Value> = people
        .iter()
        .map(|p| json!({"actor": {"reference": p}, "required": "required", "status": "needs-action"}))
        .collect();
    json!({"resourceType": "Appointment", "status": "proposed", "slot": [{"reference": format!("Slot/{}", slot["id"].as_str().unwrap())}],
        "start": slot["start"], "end": slot["end"], "participant": participant})
}

/// A JSON document served on loopback (a JWKS); returns its address.
pub(crate) fn serve_json(body: Value) -> String {
    serve_body(body.to_string(), "application/json", "/jwks.json")
}

/// An ICS feed on loopback whose events carry a title, for the connections test.
pub(crate) fn serve_feed(body: String) -> String {
    serve_body(body, "text/calendar", "/secret-token-81/cal.ics")
}

fn serve_body(body: String, content_type: &'static str, path: &str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}{path}", listener.local_addr().unwrap().port());
    let server = actix_web::HttpServer::new(move || {
        let body = body.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let body = body.clone();
            async move { actix_web::HttpResponse::Ok().content_type(content_type).body(body) }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

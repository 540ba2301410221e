//! Black-box tests of the FHIR facade: the real server on a random port, a fresh database
//! (SQLite, or PostgreSQL when CALSYNC_TEST_POSTGRES_URL is set), real HTTP.

use calsync_store::testing::TestDatabase;
use calsync_system::{Application, Settings};
use chrono::Datelike;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

struct TestApp {
    base: String,
    client: Client,
    database: TestDatabase,
}

async fn spawn_app() -> TestApp {
    spawn_app_holding(600).await
}

async fn spawn_app_holding(hold_seconds: u32) -> TestApp {
    spawn_app_with(|s| s.hold_seconds = hold_seconds).await
}

async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let database = TestDatabase::create().await;
    let mut settings = Settings::new("127.0.0.1:0", database.url.clone());
    // The calendars and publishers these tests serve are on loopback.
    settings.egress.private_networks = true;
    configure(&mut settings);
    let app = Application::build(&settings).await.expect("server starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run());
    TestApp { base, client: Client::new(), database }
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .header("Content-Type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    async fn put(&self, path: &str, body: &Value, if_match: Option<&str>) -> Response {
        let mut r =
            self.client.put(self.url(path)).header("Content-Type", "application/fhir+json").body(body.to_string());
        if let Some(m) = if_match {
            r = r.header("If-Match", m);
        }
        r.send().await.unwrap()
    }

    async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }
}

/// Asserts an OperationOutcome with `status`, and returns its first issue.
async fn outcome(resp: Response, status: StatusCode) -> Value {
    assert_eq!(resp.status(), status);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/fhir+json"), "{ct}");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    body["issue"][0].clone()
}

fn slot() -> Value {
    json!({"resourceType": "Slot", "schedule": {"reference": "Schedule/dr-okafor"}, "status": "free",
           "start": "2026-12-07T14:00:00Z", "end": "2026-12-07T14:30:00Z"})
}

#[tokio::test]
async fn metadata_lists_every_resource_and_interaction() {
    let app = spawn_app().await;
    let resp = app.get("/metadata").await;
    assert_eq!(resp.status(), 200);
    let cs: Value = resp.json().await.unwrap();
    assert_eq!(cs["resourceType"], "CapabilityStatement");
    assert_eq!(cs["fhirVersion"], "4.0.1");
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let types: Vec<&str> = resources.iter().map(|r| r["type"].as_str().unwrap()).collect();
    for t in [
        "Appointment",
        "Consent",
        "HealthcareService",
        "Location",
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "RelatedPerson",
        "Schedule",
        "Slot",
        "Task",
    ] {
        assert!(types.contains(&t), "{t} missing");
    }
    let codes: Vec<&str> =
        resources[0]["interaction"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap()).collect();
    assert_eq!(codes, vec!["read", "vread", "create", "update", "delete", "search-type"]);
    let slot = resources.iter().find(|r| r["type"] == "Slot").unwrap();
    let params: Vec<&str> =
        slot["searchParam"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        params,
        vec![
            "_id",
            "_lastUpdated",
            "schedule",
            "status",
            "start",
            "end",
            "service-type",
            "specialty",
            "appointment-type",
            "identifier"
        ]
    );
    app.database.finish().await;
}

#[tokio::test]
async fn create_read_vread() {
    let app = spawn_app().await;
    let resp = app.post("/Slot", &slot()).await;
    assert_eq!(resp.status(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["etag"], "W/\"1\"");
    assert!(resp.headers().contains_key("last-modified"));
    let created: Value = resp.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location, app.url(&format!("/Slot/{id}/_history/1")));
    assert_eq!(created["meta"]["versionId"], "1");

    let read = app.get(&format!("/Slot/{id}")).await;
    assert_eq!(read.status(), 200);
    assert_eq!(read.headers()["content-type"], "application/fhir+json");
    let body: Value = read.json().await.unwrap();
    assert_eq!(body, created);
    assert_eq!(app.get(&format!("/Slot/{id}/_history/1")).await.status(), 200);
    assert!(app.get(&format!("/Slot/{id}?_pretty=true")).await.text().await.unwrap().contains("\n  "));
    app.database.finish().await;
}

#[tokio::test]
async fn update_with_if_match_and_update_as_create() {
    let app = spawn_app().await;
    let mut s = slot();
    s["id"] = json!("slot-1");
    let resp = app.put("/Slot/slot-1", &s, None).await;
    assert_eq!(resp.status(), 201, "update of an unknown id creates it");
    s["status"] = json!("busy");
    let resp = app.put("/Slot/slot-1", &s, Some("W/\"1\"")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["etag"], "W/\"2\"");
    let issue = outcome(app.put("/Slot/slot-1", &s, Some("W/\"1\"")).await, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(issue["code"], "conflict");
    outcome(app.put("/Slot/slot-1", &s, Some("yesterday")).await, StatusCode::BAD_REQUEST).await;
    outcome(app.put("/Slot/other", &s, None).await, StatusCode::BAD_REQUEST).await;
    let current: Value = app.get("/Slot/slot-1").await.json().await.unwrap();
    assert_eq!(current["status"], "busy");
    assert_eq!(current["meta"]["versionId"], "2");
    app.database.finish().await;
}

#[tokio::test]
async fn delete_then_gone() {
    let app = spawn_app().await;
    let created: Value = app.post("/Patient", &json!({"resourceType": "Patient"})).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let resp = app.client.delete(app.url(&format!("/Patient/{id}"))).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    outcome(app.get(&format!("/Patient/{id}")).await, StatusCode::GONE).await;
    assert_eq!(app.get(&format!("/Patient/{id}/_history/1")).await.status(), 200);
    outcome(app.get(&format!("/Patient/{id}/_history/2")).await, StatusCode::GONE).await;
    outcome(app.get("/Patient/never-was").await, StatusCode::NOT_FOUND).await;
    app.database.finish().await;
}

#[tokio::test]
async fn bad_input_gets_the_right_status_and_an_operation_outcome() {
    let app = spawn_app().await;
    let c = &app.client;
    let post_raw =
        |path: &str, ct: &str, body: String| c.post(app.url(path)).header("Content-Type", ct).body(body).send();

    outcome(post_raw("/Slot", "application/fhir+json", "{not json".into()).await.unwrap(), StatusCode::BAD_REQUEST)
        .await;
    outcome(
        post_raw("/Slot", "application/fhir+json", json!({"resourceType": "Patient"}).to_string()).await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let mut unknown = slot();
    unknown["colour"] = json!("blue");
    let issue = outcome(app.post("/Slot", &unknown).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("colour"), "{issue}");
    let mut bad_date = slot();
    bad_date["start"] = json!("2026-12-07 14:00");
    let issue = outcome(app.post("/Slot", &bad_date).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(issue["expression"][0], "Slot.start");
    let issue = outcome(
        app.post("/Schedule", &json!({"resourceType": "Schedule", "active": true})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(issue["expression"][0], "Schedule.actor");
    outcome(post_raw("/Slot", "text/plain", slot().to_string()).await.unwrap(), StatusCode::UNSUPPORTED_MEDIA_TYPE)
        .await;
    outcome(
        c.get(app.url("/metadata")).header("Accept", "application/fhir+xml").send().await.unwrap(),
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    outcome(app.get("/metadata?_format=xml").await, StatusCode::NOT_ACCEPTABLE).await;
    assert_eq!(app.get("/metadata?_format=json").await.status(), 200);
    assert_eq!(app.get("/metadata?_format=application%2Ffhir%2Bjson").await.status(), 200);
    outcome(app.get("/Dinosaur/1").await, StatusCode::NOT_FOUND).await;
    outcome(app.post("/Dinosaur", &json!({"resourceType": "Dinosaur"})).await, StatusCode::NOT_FOUND).await;
    outcome(c.patch(app.url("/Slot/1")).send().await.unwrap(), StatusCode::METHOD_NOT_ALLOWED).await;
    outcome(app.get("/Slot/1/_history/first").await, StatusCode::BAD_REQUEST).await;
    let huge = format!("{{\"resourceType\":\"Patient\",\"id\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    outcome(post_raw("/Patient", "application/fhir+json", huge).await.unwrap(), StatusCode::PAYLOAD_TOO_LARGE).await;
    for injection in ["1' OR '1'='1", "a\u{0}b", "x".repeat(65).as_str()] {
        outcome(app.get(&format!("/Patient/{}", urlencode(injection))).await, StatusCode::NOT_FOUND).await;
        outcome(app.get(&format!("/Patient/{}/_history/1", urlencode(injection))).await, StatusCode::NOT_FOUND).await;
        let del = app.client.delete(app.url(&format!("/Patient/{}", urlencode(injection)))).send().await.unwrap();
        outcome(del, StatusCode::NOT_FOUND).await;
    }
    app.database.finish().await;
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// 3 days x 10 half-hour Slots on Schedule/a (every third busy), 5 on Schedule/b, one all-day.
async fn load_slots(app: &TestApp) {
    for day in 7..10 {
        for k in 0..10 {
            let id = format!("a-{day}-{k:02}");
            let start = format!("2026-12-{day:02}T{:02}:{:02}:00Z", 14 + k / 2, (k % 2) * 30);
            let end = format!("2026-12-{day:02}T{:02}:{:02}:00Z", 14 + (k + 1) / 2, ((k + 1) % 2) * 30);
            let status = if k % 3 == 0 { "busy" } else { "free" };
            let body = json!({"resourceType": "Slot", "id": id, "schedule": {"reference": "Schedule/a"}, "status": status, "start": start, "end": end});
            assert_eq!(app.put(&format!("/Slot/{id}"), &body, None).await.status(), 201);
        }
    }
    for k in 0..5 {
        let id = format!("b-{k}");
        let body = json!({"resourceType": "Slot", "id": id, "schedule": {"reference": "Schedule/b"}, "status": "free",
                          "start": format!("2026-12-08T1{k}:00:00Z"), "end": format!("2026-12-08T1{k}:30:00Z")});
        assert_eq!(app.put(&format!("/Slot/{id}"), &body, None).await.status(), 201);
    }
    let day = json!({"resourceType": "Slot", "id": "b-day", "schedule": {"reference": "Schedule/b"}, "status": "free",
                     "start": "2026-12-09T13:00:00Z", "end": "2026-12-09T22:00:00Z"});
    assert_eq!(app.put("/Slot/b-day", &day, None).await.status(), 201);
}

async fn bundle(app: &TestApp, query: &str) -> Value {
    let resp = app.get(&format!("/Slot?{query}")).await;
    assert_eq!(resp.status(), 200, "{query}");
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["resourceType"], "Bundle");
    assert_eq!(b["type"], "searchset");
    b
}

fn ids(b: &Value) -> Vec<String> {
    b["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn slot_search_parameters() {
    let app = spawn_app().await;
    load_slots(&app).await;
    let total = |b: &Value| b["total"].as_u64().unwrap();
    assert_eq!(total(&bundle(&app, "").await), 36);
    // Reference in three forms.
    for s in ["Schedule/a", "a", &format!("{}/Schedule/a", app.base)] {
        assert_eq!(total(&bundle(&app, &format!("schedule={}", urlencode(s))).await), 30, "{s}");
    }
    // Date prefixes and precision: the 8th of December, by day.
    let b = bundle(&app, "schedule=Schedule/a&start=ge2026-12-08&start=lt2026-12-09").await;
    assert_eq!(total(&b), 10);
    assert_eq!(total(&bundle(&app, "start=2026-12-08").await), 15);
    assert_eq!(total(&bundle(&app, "start=2026-12-08T14:30").await), 1);
    // A zone offset's `+` sent raw in the URL is a plus sign, and percent-encoded it is too.
    assert_eq!(total(&bundle(&app, "start=2026-12-08T15:30:00+01:00").await), 1);
    assert_eq!(total(&bundle(&app, "start=2026-12-08T15:30:00%2B01:00").await), 1);
    outcome(app.get("/Slot?start=ge2026-12-08%ZZ").await, StatusCode::BAD_REQUEST).await;
    assert_eq!(total(&bundle(&app, "start=gt2026-12-08&schedule=a").await), 10);
    assert_eq!(total(&bundle(&app, "start=le2026-12-07&schedule=a").await), 10);
    assert_eq!(total(&bundle(&app, "start=ne2026-12-07&schedule=a").await), 20);
    // Tokens: comma is OR, :not excludes, system|code accepted.
    assert_eq!(total(&bundle(&app, "schedule=a&status=busy").await), 12);
    assert_eq!(total(&bundle(&app, "schedule=a&status=busy,free").await), 30);
    assert_eq!(total(&bundle(&app, "schedule=a&status:not=busy").await), 18);
    assert_eq!(total(&bundle(&app, "schedule=a&status=http://hl7.org/fhir/slotstatus|busy").await), 12);
    // Overlap with the custom end parameter: what is open at 15:10 on the 9th.
    let b = bundle(&app, "start=lt2026-12-09T15:10:00Z&end=gt2026-12-09T15:10:00Z").await;
    let mut found = ids(&b);
    found.sort();
    assert_eq!(found, vec!["a-9-02", "b-day"]);
    // _id, and entries carry fullUrl and search mode.
    let b = bundle(&app, "_id=a-7-00,b-1").await;
    assert_eq!(total(&b), 2);
    assert_eq!(b["entry"][0]["fullUrl"], format!("{}/Slot/a-7-00", app.base));
    assert_eq!(b["entry"][0]["search"]["mode"], "match");
    // POST _search with a form body answers the same.
    let resp = app
        .client
        .post(app.url("/Slot/_search"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("schedule=a&status=busy")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(total(&b), 12);
    app.database.finish().await;
}

#[tokio::test]
async fn paging_walks_every_result_once_even_with_concurrent_inserts() {
    let app = spawn_app().await;
    load_slots(&app).await;
    let mut url = app.url("/Slot?_count=7");
    let mut seen: Vec<String> = Vec::new();
    let mut starts: Vec<String> = Vec::new();
    let mut pages = 0;
    loop {
        let b: Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(b["total"].as_u64().unwrap(), 36 + u64::from(pages > 0));
        for e in b["entry"].as_array().unwrap() {
            seen.push(e["resource"]["id"].as_str().unwrap().to_string());
            starts.push(e["resource"]["start"].as_str().unwrap().to_string());
        }
        pages += 1;
        if pages == 1 {
            // A Slot inserted before the cursor must not shift the pages that follow.
            let early = json!({"resourceType": "Slot", "id": "early", "schedule": {"reference": "Schedule/a"}, "status": "free",
                               "start": "2026-12-01T08:00:00Z", "end": "2026-12-01T08:30:00Z"});
            assert_eq!(app.put("/Slot/early", &early, None).await.status(), 201);
        }
        let next = b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .map(|l| l["url"].as_str().unwrap().to_string());
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    assert_eq!(pages, 6);
    assert!(url.contains("_cursor="), "the last page was reached through a next link");
    let last: Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(last["link"][0]["url"], url, "self names the page itself, cursor included");
    assert_eq!(seen.len(), 36, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 36);
    assert!(starts.windows(2).all(|w| w[0] <= w[1]), "sorted by start");
    assert!(!seen.contains(&"early".to_string()));
    app.database.finish().await;
}

#[tokio::test]
async fn unknown_parameters_and_limits() {
    let app = spawn_app().await;
    load_slots(&app).await;
    let b = bundle(&app, "schedule=a&colour=blue").await;
    assert_eq!(b["total"], 30, "an unknown parameter never narrows the answer");
    let self_link = b["link"][0]["url"].as_str().unwrap();
    assert!(!self_link.contains("colour") && self_link.contains("schedule=a"), "{self_link}");
    let strict = app
        .client
        .get(app.url("/Slot?schedule=a&colour=blue"))
        .header("Prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    outcome(strict, StatusCode::BAD_REQUEST).await;
    let b = bundle(&app, "_count=100000").await;
    assert!(b["link"][0]["url"].as_str().unwrap().contains("_count=500"));
    let strict =
        app.client.get(app.url("/Slot?_count=100000")).header("Prefer", "handling=strict").send().await.unwrap();
    outcome(strict, StatusCode::BAD_REQUEST).await;
    for bad in [
        "_count=many",
        "start=tomorrow",
        "start:exact=2026-12-07",
        "status:contains=fr",
        "schedule=Location/1",
        "_cursor=zz",
    ] {
        outcome(app.get(&format!("/Slot?{bad}")).await, StatusCode::BAD_REQUEST).await;
    }
    // Other types search by _id.
    let p: Value = app.post("/Patient", &json!({"resourceType": "Patient"})).await.json().await.unwrap();
    let b: Value = app.get(&format!("/Patient?_id={}", p["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(b["total"], 1);
    app.database.finish().await;
}

#[tokio::test]
async fn injection_looking_values_are_only_values() {
    let app = spawn_app().await;
    load_slots(&app).await;
    for param in ["_id", "schedule", "status", "status:not"] {
        for evil in ["' OR '1'='1", "a'; DROP TABLE slot; --", "\" OR 1=1 --", "%00", "a\u{0}b"] {
            let resp = app.get(&format!("/Slot?{param}={}", urlencode(evil))).await;
            let status = resp.status();
            assert!(status == 200 || status == 400, "{param}={evil:?}: {status}");
            if status == 200 {
                let b: Value = resp.json().await.unwrap();
                let expected = if param == "status:not" { 36 } else { 0 };
                assert_eq!(b["total"], expected, "{param}={evil:?}");
            }
        }
    }
    assert_eq!(bundle(&app, "").await["total"], 36, "the table is intact");
    app.database.finish().await;
}

#[tokio::test]
async fn summary_count_and_conditional_create() {
    let app = spawn_app().await;
    load_slots(&app).await;
    let b = bundle(&app, "schedule=a&_summary=count").await;
    assert_eq!(b["total"], 30);
    assert!(b["entry"].as_array().unwrap().is_empty());

    let post_if = |criteria: &str| {
        app.client
            .post(app.url("/Slot"))
            .header("Content-Type", "application/fhir+json")
            .header("If-None-Exist", criteria)
            .body(slot().to_string())
            .send()
    };
    // One match: nothing created, the match returned.
    let resp = post_if("_id=a-7-00").await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "a-7-00");
    // No match: created.
    assert_eq!(post_if("_id=nothing-here").await.unwrap().status(), 201);
    // Several matches: 412.
    outcome(post_if("schedule=b").await.unwrap(), StatusCode::PRECONDITION_FAILED).await;
    // Criteria we cannot evaluate are refused, never ignored.
    outcome(post_if("colour=blue").await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert_eq!(bundle(&app, "_summary=count").await["total"], 37);
    app.database.finish().await;
}

#[tokio::test]
async fn include_iterate_and_revinclude() {
    let app = spawn_app().await;
    load_slots(&app).await;
    let location = json!({"resourceType": "Location", "id": "riverside", "name": "Riverside Family Clinic"});
    assert_eq!(app.put("/Location/riverside", &location, None).await.status(), 201);
    for s in ["a", "b"] {
        let schedule = json!({"resourceType": "Schedule", "id": s, "active": true, "actor": [{"reference": "Location/riverside"}]});
        assert_eq!(app.put(&format!("/Schedule/{s}"), &schedule, None).await.status(), 201);
    }
    let modes = |b: &Value| -> Vec<(String, String)> {
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["search"]["mode"].as_str().unwrap().to_string(),
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap(),
                        e["resource"]["id"].as_str().unwrap()
                    ),
                )
            })
            .collect()
    };
    // Two Slots of Schedule/a: the Schedule is included once.
    // (A time needs minutes in FHIR: an hour alone is refused.)
    outcome(app.get("/Slot?start=2026-12-07T14").await, StatusCode::BAD_REQUEST).await;
    let m = modes(&bundle(&app, "schedule=a&_count=2&_include=Slot:schedule").await);
    assert_eq!(m.iter().filter(|(mode, _)| mode == "match").count(), 2);
    assert_eq!(
        m.iter().filter(|(mode, _)| mode == "include").cloned().collect::<Vec<_>>(),
        vec![("include".to_string(), "Schedule/a".to_string())]
    );
    // :iterate follows Schedule:actor from the included Schedule; without it, it does not.
    let m = modes(&bundle(&app, "schedule=a&_count=2&_include=Slot:schedule&_include:iterate=Schedule:actor").await);
    assert!(m.contains(&("include".to_string(), "Location/riverside".to_string())), "{m:?}");
    let m = modes(&bundle(&app, "schedule=a&_count=2&_include=Slot:schedule&_include=Schedule:actor").await);
    assert!(!m.iter().any(|(_, r)| r == "Location/riverside"), "{m:?}");
    // _revinclude: a Schedule with its Slots.
    let resp = app.get("/Schedule?_id=b&_revinclude=Slot:schedule").await;
    let b: Value = resp.json().await.unwrap();
    let m = modes(&b);
    assert_eq!(m[0], ("match".to_string(), "Schedule/b".to_string()));
    assert_eq!(m.iter().filter(|(mode, r)| mode == "include" && r.starts_with("Slot/b-")).count(), 6);
    // Unsupported includes are ignored, or refused under strict handling.
    assert_eq!(bundle(&app, "schedule=a&_include=Slot:nothing").await["total"], 30);
    let strict = app
        .client
        .get(app.url("/Slot?_include=Slot:nothing"))
        .header("Prefer", "handling=strict")
        .send()
        .await
        .unwrap();
    outcome(strict, StatusCode::BAD_REQUEST).await;
    // The CapabilityStatement lists them.
    let cs: Value = app.get("/metadata").await.json().await.unwrap();
    let slot = cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Slot").unwrap().clone();
    assert_eq!(slot["searchInclude"], json!(["Slot:schedule"]));
    assert!(slot["searchRevInclude"].as_array().unwrap().contains(&json!("Appointment:slot")));
    let schedule =
        cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Schedule").unwrap().clone();
    assert!(schedule["searchRevInclude"].as_array().unwrap().contains(&json!("Slot:schedule")));
    assert!(!schedule["searchRevInclude"].as_array().unwrap().contains(&json!("Appointment:slot")));
    app.database.finish().await;
}

#[tokio::test]
async fn sort_descending_pages_and_last_updated() {
    let app = spawn_app().await;
    load_slots(&app).await;
    let mut url = app.url("/Slot?schedule=a&_sort=-start&_count=4");
    let mut starts: Vec<String> = Vec::new();
    loop {
        let b: Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
        starts.extend(
            b["entry"].as_array().unwrap().iter().map(|e| e["resource"]["start"].as_str().unwrap().to_string()),
        );
        match b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
            Some(n) => url = n["url"].as_str().unwrap().to_string(),
            None => break,
        }
    }
    assert_eq!(starts.len(), 30);
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "newest first: {starts:?}");
    assert_eq!(starts[0], "2026-12-09T18:30:00Z");
    outcome(app.get("/Slot?_sort=status").await, StatusCode::BAD_REQUEST).await;

    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    for _ in 0..3 {
        app.post("/Patient", &json!({"resourceType": "Patient"})).await;
    }
    let stamp = before.format("%Y-%m-%dT%H:%M:%SZ");
    let b: Value = app.get(&format!("/Patient?_lastUpdated=ge{stamp}&_sort=-_id")).await.json().await.unwrap();
    assert_eq!(b["total"], 3);
    let ids: Vec<&str> = b["entry"].as_array().unwrap().iter().map(|e| e["resource"]["id"].as_str().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let b: Value = app.get(&format!("/Patient?_lastUpdated=lt{stamp}")).await.json().await.unwrap();
    assert_eq!(b["total"], 0);
    app.database.finish().await;
}

#[tokio::test]
async fn elements_subset_and_the_end_search_parameter() {
    let app = spawn_app().await;
    load_slots(&app).await;
    let b = bundle(&app, "_id=a-7-01&_elements=start,status").await;
    let r = &b["entry"][0]["resource"];
    assert_eq!(r["start"], "2026-12-07T14:30:00Z");
    assert_eq!(r["status"], "free");
    assert!(r.get("end").is_none() && r.get("schedule").is_none(), "{r}");
    assert_eq!(r["meta"]["tag"][0]["code"], "SUBSETTED");
    assert!(b["link"][0]["url"].as_str().unwrap().contains("_elements=start,status"));

    let cs: Value = app.get("/metadata").await.json().await.unwrap();
    let slot = cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Slot").unwrap().clone();
    let end = slot["searchParam"].as_array().unwrap().iter().find(|p| p["name"] == "end").unwrap().clone();
    let definition = end["definition"].as_str().unwrap();
    let resp = app.get("/SearchParameter/Slot-end").await;
    assert_eq!(resp.status(), 200);
    let sp: Value = resp.json().await.unwrap();
    assert_eq!(sp["resourceType"], "SearchParameter");
    assert_eq!(sp["url"], definition);
    assert_eq!(
        (sp["code"].as_str(), sp["type"].as_str(), sp["base"][0].as_str()),
        (Some("end"), Some("date"), Some("Slot"))
    );
    outcome(app.get("/SearchParameter/nope").await, StatusCode::NOT_FOUND).await;
    app.database.finish().await;
}

async fn search_total(app: &TestApp, path: &str) -> u64 {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    let b: Value = resp.json().await.unwrap();
    b["total"].as_u64().unwrap()
}

#[tokio::test]
async fn token_reference_and_string_parameters() {
    let app = spawn_app().await;
    let st = "http://terminology.hl7.org/CodeSystem/service-type";
    for (id, name, city) in
        [("riverside", "Riverside Family Clinic", "Boston"), ("harbor", "Harbor 100% Health", "Salem")]
    {
        let l = json!({"resourceType": "Location", "id": id, "name": name, "status": "active",
                       "address": {"line": ["12 River St"], "city": city, "postalCode": "02108"}});
        assert_eq!(app.put(&format!("/Location/{id}"), &l, None).await.status(), 201);
    }
    for (id, loc, active) in [("s1", "riverside", true), ("s2", "harbor", true), ("s3", "harbor", false)] {
        let s = json!({"resourceType": "Schedule", "id": id, "active": active, "actor": [{"reference": format!("Location/{loc}")}],
                       "serviceType": [{"coding": [{"system": st, "code": if id == "s1" { "124" } else { "57" }}]}]});
        assert_eq!(app.put(&format!("/Schedule/{id}"), &s, None).await.status(), 201);
    }
    for (id, status, patient) in [("a1", "booked", "maria"), ("a2", "proposed", "maria"), ("a3", "cancelled", "joao")] {
        let a = json!({"resourceType": "Appointment", "id": id, "status": status, "start": "2026-12-07T14:00:00Z", "end": "2026-12-07T14:30:00Z",
            "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "accepted"},
                            {"actor": {"reference": "Location/riverside"}, "status": "needs-action"}]});
        assert_eq!(app.put(&format!("/Appointment/{id}"), &a, None).await.status(), 201);
    }
    let cases: &[(&str, u64)] = &[
        ("/Schedule?actor=Location/harbor", 2),
        ("/Schedule?actor=Location/harbor&active=true", 1),
        ("/Schedule?active=false", 1),
        (&format!("/Schedule?service-type={st}|124"), 1),
        ("/Schedule?service-type=57", 2),
        ("/Schedule?service-type=urn:other|57", 0),
        (&format!("/Schedule?service-type={st}|"), 3),
        ("/Appointment?patient=maria", 2),
        ("/Appointment?patient=Patient/maria", 2),
        ("/Appointment?actor=Location/riverside", 3),
        ("/Appointment?location=riverside", 3),
        ("/Appointment?status=booked,proposed", 2),
        ("/Appointment?status:not=cancelled", 2),
        ("/Appointment?part-status=needs-action", 3),
        ("/Location?name=river", 1),
        ("/Location?name=RIVERSIDE%20fam", 1),
        ("/Location?name=family", 0),
        ("/Location?name:contains=family", 1),
        ("/Location?name:exact=Riverside%20Family%20Clinic", 1),
        ("/Location?name:exact=riverside%20family%20clinic", 0),
        ("/Location?name:contains=%25", 1),
        ("/Location?name:contains=_", 0),
        ("/Location?address-city=boston", 1),
        ("/Location?address=02108", 2),
        ("/Location?identifier:missing=true", 2),
        ("/Location?identifier:missing=false", 0),
    ];
    for (path, expected) in cases {
        assert_eq!(search_total(&app, path).await, *expected, "{path}");
    }
    // A write re-indexes: the old name no longer matches.
    let renamed = json!({"resourceType": "Location", "id": "riverside", "name": "Northside Clinic"});
    assert_eq!(app.put("/Location/riverside", &renamed, Some("W/\"1\"")).await.status(), 200);
    assert_eq!(search_total(&app, "/Location?name=river").await, 0);
    assert_eq!(search_total(&app, "/Location?name=north").await, 1);
    // Bad values and modifiers are 400s.
    for bad in [
        "/Appointment?actor=riverside",
        "/Location?name:below=x",
        "/Location?identifier:missing=maybe",
        "/Schedule?active:contains=t",
    ] {
        outcome(app.get(bad).await, StatusCode::BAD_REQUEST).await;
    }
    app.database.finish().await;
}

#[tokio::test]
async fn slot_index_parameters_combine_with_the_range_table() {
    let app = spawn_app().await;
    load_slots(&app).await;
    let mut s = slot();
    s["id"] = json!("typed");
    s["serviceType"] =
        json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/service-type", "code": "124"}]}]);
    assert_eq!(app.put("/Slot/typed", &s, None).await.status(), 201);
    assert_eq!(search_total(&app, "/Slot?service-type=124").await, 1);
    assert_eq!(search_total(&app, "/Slot?service-type=124&start=2026-12-07").await, 1);
    assert_eq!(search_total(&app, "/Slot?service-type=124&start=2026-12-08").await, 0);
    assert_eq!(search_total(&app, "/Slot?service-type:missing=true").await, 36);
    app.database.finish().await;
}

/// Entries of a searchset as (mode, Type/id).
fn modes(b: &Value) -> Vec<(String, String)> {
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let r = &e["resource"];
            (
                e["search"]["mode"].as_str().unwrap().to_string(),
                format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()),
            )
        })
        .collect()
}

#[tokio::test]
async fn date_parameters_over_periods_and_instants() {
    let app = spawn_app().await;
    // Planning horizons: December; the first week of December; from January on (open end).
    for (id, horizon) in [
        ("december", json!({"start": "2026-12-01", "end": "2026-12-31"})),
        ("first-week", json!({"start": "2026-12-01T00:00:00Z", "end": "2026-12-08T00:00:00Z"})),
        ("from-january", json!({"start": "2027-01-01"})),
    ] {
        let s = json!({"resourceType": "Schedule", "id": id, "active": true, "actor": [{"reference": "Location/x"}],
            "planningHorizon": horizon});
        assert_eq!(app.put(&format!("/Schedule/{id}"), &s, None).await.status(), 201);
    }
    let found = |q: &'static str| {
        let app = &app;
        async move {
            let mut ids = ids(&bundle_of(app, "Schedule", q).await);
            ids.sort();
            ids
        }
    };
    // eq: the search range contains the whole horizon.
    assert_eq!(found("date=2026-12").await, vec!["december", "first-week"]);
    assert_eq!(found("date=2026-12-01").await, Vec::<String>::new());
    assert_eq!(found("date=ne2026-12").await, vec!["from-january"]);
    // Overlap with the week of 14 December: reaching past its start and starting before its end.
    assert_eq!(found("date=ge2026-12-14&date=le2026-12-20").await, vec!["december"]);
    assert_eq!(found("date=sa2026-12-31").await, vec!["from-january"]);
    assert_eq!(found("date=eb2026-12-10").await, vec!["first-week"]);
    assert_eq!(found("date=gt2027-06-01").await, vec!["from-january"]);
    assert_eq!(found("date=lt2026-12-02").await, vec!["december", "first-week"]);
    // Comma is OR.
    assert_eq!(found("date=eb2026-12-10,sa2026-12-31").await, vec!["first-week", "from-january"]);
    outcome(app.get("/Schedule?date=soon").await, StatusCode::BAD_REQUEST).await;
    outcome(app.get("/Schedule?date:missing=true").await, StatusCode::BAD_REQUEST).await;

    // Appointment.date is its start, an instant with a zone.
    for (id, start) in [("a1", "2026-12-07T09:00:00-05:00"), ("a2", "2026-12-08T09:00:00-05:00")] {
        let a = json!({"resourceType": "Appointment", "id": id, "status": "proposed", "start": start, "end": start,
            "participant": [{"actor": {"reference": "Patient/maria"}, "status": "needs-action"}]});
        assert_eq!(app.put(&format!("/Appointment/{id}"), &a, None).await.status(), 201, "{id}");
    }
    assert_eq!(ids(&bundle_of(&app, "Appointment", "date=2026-12-07").await), vec!["a1"]);
    assert_eq!(ids(&bundle_of(&app, "Appointment", "date=ge2026-12-07T15:00:00Z").await), vec!["a2"]);
    assert!(ids(&bundle_of(&app, "Appointment", "date=ap2026-12-07T14:00:00Z").await).contains(&"a1".to_string()));
    let cs: Value = app.get("/metadata").await.json().await.unwrap();
    let appointment =
        cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Appointment").unwrap().clone();
    assert!(appointment["searchParam"].as_array().unwrap().contains(&json!({"name": "date", "type": "date"})));
    app.database.finish().await;
}

async fn bundle_of(app: &TestApp, t: &str, query: &str) -> Value {
    let resp = app.get(&format!("/{t}?{query}")).await;
    assert_eq!(resp.status(), 200, "{t}?{query}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn last_updated_on_slots_sorting_and_reference_includes() {
    let app = spawn_app().await;
    let with_id = |id: &str| {
        let mut s = slot();
        s["id"] = json!(id);
        s
    };
    assert_eq!(app.put("/Slot/early", &with_id("early"), None).await.status(), 201);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(app.put("/Slot/late", &with_id("late"), None).await.status(), 201);
    assert_eq!(ids(&bundle_of(&app, "Slot", &format!("_lastUpdated=gt{between}")).await), vec!["late"]);
    assert_eq!(ids(&bundle_of(&app, "Slot", &format!("_lastUpdated=lt{between}")).await), vec!["early"]);

    // _sort=_lastUpdated pages in update order, whatever the ids.
    for id in ["p-c", "p-a", "p-b"] {
        let p = json!({"resourceType": "Patient", "id": id});
        assert_eq!(app.put(&format!("/Patient/{id}"), &p, None).await.status(), 201);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut url = app.url("/Patient?_sort=-_lastUpdated&_count=1");
    let mut order = Vec::new();
    loop {
        let b: Value = app.client.get(&url).send().await.unwrap().json().await.unwrap();
        order.extend(ids(&b));
        match b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next") {
            Some(n) => url = n["url"].as_str().unwrap().to_string(),
            None => break,
        }
    }
    assert_eq!(order, vec!["p-b", "p-a", "p-c"]);
    outcome(app.get("/Patient?_sort=birthdate").await, StatusCode::BAD_REQUEST).await;

    // Appointment:patient includes; Appointment:slot and RelatedPerson:patient revinclude.
    let appt = json!({"resourceType": "Appointment", "id": "ap1", "status": "booked",
        "start": "2026-12-07T14:00:00Z", "end": "2026-12-07T14:30:00Z", "slot": [{"reference": "Slot/late"}],
        "participant": [{"actor": {"reference": "Patient/p-a"}, "status": "accepted"}]});
    assert_eq!(app.put("/Appointment/ap1", &appt, None).await.status(), 201);
    let rp = json!({"resourceType": "RelatedPerson", "id": "daughter", "patient": {"reference": "Patient/p-a"}});
    assert_eq!(app.put("/RelatedPerson/daughter", &rp, None).await.status(), 201);
    let m = modes(&bundle_of(&app, "Appointment", "_include=Appointment:patient").await);
    assert_eq!(m, vec![("match".into(), "Appointment/ap1".into()), ("include".into(), "Patient/p-a".into())]);
    let m = modes(&bundle_of(&app, "Slot", "_revinclude=Appointment:slot").await);
    assert!(m.contains(&("include".into(), "Appointment/ap1".into())), "{m:?}");
    assert_eq!(m.iter().filter(|(mode, _)| mode == "include").count(), 1);
    let m = modes(
        &bundle_of(&app, "Patient", "_id=p-a&_revinclude=RelatedPerson:patient&_revinclude=Appointment:patient").await,
    );
    assert_eq!(
        m,
        vec![
            ("match".into(), "Patient/p-a".into()),
            ("include".into(), "RelatedPerson/daughter".into()),
            ("include".into(), "Appointment/ap1".into())
        ]
    );
    app.database.finish().await;
}

// ---- Scheduling operations -------------------------------------------------------------

/// The test day: 30 days ahead (calendars are imported over the next 180 days), as
/// `YYYY-MM-DD` and `YYYYMMDD`.
fn day() -> (String, String) {
    let d = (chrono::Utc::now() + chrono::TimeDelta::days(30)).date_naive();
    (d.format("%Y-%m-%d").to_string(), d.format("%Y%m%d").to_string())
}

/// A clinic with one practitioner's Schedule and four half-hour Slots from 14:00Z on the test
/// day, a patient, and a caregiver whose derived Schedule is in Los Angeles.
async fn load_clinic(app: &TestApp) {
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

fn find_path() -> String {
    let d = day().0;
    format!(
        "/Appointment/$find-mutual?start={d}&end={d}&duration=30&participant=Patient/maria&participant=RelatedPerson/ana&practitioner=Practitioner/okafor"
    )
}

async fn proposals(app: &TestApp, path: &str) -> Vec<Value> {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    let b: Value = resp.json().await.unwrap();
    b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"].clone())
        .collect()
}

/// Start times (HH:MM, UTC) of proposals.
fn starts(found: &[Value]) -> Vec<String> {
    found.iter().map(|a| a["start"].as_str().unwrap()[11..16].to_string()).collect()
}

/// An iCalendar event on the test day from `from` to `to` (HHMM, UTC).
fn busy_at(from: &str, to: &str) -> String {
    let d = day().1;
    ics_busy(&format!("{d}T{from}00Z"), &format!("{d}T{to}00Z"))
}

async fn import_ics(app: &TestApp, schedule: &str, ics: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/Schedule/{schedule}/$import-ics")))
        .header("Content-Type", "text/calendar")
        .body(ics.to_string())
        .send()
        .await
        .unwrap()
}

fn ics_busy(start: &str, end: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:x@test\r\nDTSTAMP:20300101T000000Z\r\nSUMMARY:Dentist\r\nDTSTART:{start}\r\nDTEND:{end}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

async fn post_parameters(app: &TestApp, path: &str, parameters: Value, key: Option<&str>) -> reqwest::Response {
    let mut r =
        app.client.post(app.url(path)).header("Content-Type", "application/fhir+json").body(parameters.to_string());
    if let Some(k) = key {
        r = r.header("Idempotency-Key", k);
    }
    r.send().await.unwrap()
}

fn with_appointment(a: &Value) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "appointment", "resource": a}]})
}

fn with_reference(id: &str) -> Value {
    json!({"resourceType": "Parameters", "parameter": [{"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{id}")}}]})
}

#[tokio::test]
async fn find_hold_book_cancel_the_whole_story() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    // Everyone free: four options, each listing the patient, the caregiver and the provider.
    let found = proposals(&app, &find_path()).await;
    assert_eq!(starts(&found), vec!["14:00", "14:30", "15:00", "15:30"]);
    let actors: Vec<&str> =
        found[0]["participant"].as_array().unwrap().iter().map(|p| p["actor"]["reference"].as_str().unwrap()).collect();
    for who in ["Patient/maria", "RelatedPerson/ana", "Practitioner/okafor", "Location/riverside"] {
        assert!(actors.contains(&who), "{actors:?}");
    }
    assert_eq!(found[0]["status"], "proposed");
    // Each option has a stable urn:uuid fullUrl: the same option, the same id, in every answer.
    let full_urls = |b: Value| -> Vec<String> {
        b["entry"].as_array().unwrap().iter().map(|e| e["fullUrl"].as_str().unwrap().to_string()).collect()
    };
    let first = full_urls(app.get(&find_path()).await.json().await.unwrap());
    assert!(first.iter().all(|u| u.len() == 45 && u.starts_with("urn:uuid:")), "{first:?}");
    assert_eq!(first.iter().collect::<std::collections::HashSet<_>>().len(), 4);
    assert_eq!(first, full_urls(app.get(&find_path()).await.json().await.unwrap()));
    // The caregiver's calendar blocks two of them (14:30-15:30Z); a re-import replaces the
    // first import; the event's title is not kept.
    assert_eq!(import_ics(&app, "ana-busy", &busy_at("1600", "1700")).await.status(), 200);
    assert_eq!(import_ics(&app, "ana-busy", &busy_at("1430", "1530")).await.status(), 200);
    let busy: Value = app.get("/Slot?schedule=ana-busy").await.json().await.unwrap();
    assert_eq!(busy["total"], 1, "the re-import replaced the first import: {busy}");
    assert!(!busy.to_string().contains("Dentist"));
    assert_eq!(busy["entry"][0]["resource"]["start"], format!("{}T14:30:00Z", day().0));
    let found = proposals(&app, &find_path()).await;
    assert_eq!(starts(&found), vec!["14:00", "15:30"]);
    // A broken calendar is a 400 and the previous busy data stays.
    let resp = import_ics(&app, "ana-busy", "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n").await;
    outcome(resp, StatusCode::BAD_REQUEST).await;
    assert_eq!(starts(&proposals(&app, &find_path()).await).len(), 2);

    // Hold the first: pending, an Expires header, and the Slot leaves every search.
    let resp = post_parameters(&app, "/Appointment/$hold", with_appointment(&found[0]), None).await;
    assert_eq!(resp.status(), 201);
    assert!(resp.headers().contains_key("expires"));
    let held: Value = resp.json().await.unwrap();
    assert_eq!(held["status"], "pending");
    let held_id = held["id"].as_str().unwrap().to_string();
    assert_eq!(starts(&proposals(&app, &find_path()).await), vec!["15:30"]);
    let find = format!("/Appointment/$find?start={d}&end={d}&practitioner=Practitioner/okafor", d = day().0);
    assert_eq!(
        starts(&proposals(&app, &find).await),
        vec!["14:30", "15:00", "15:30"],
        "$find never offers the held Slot"
    );
    // A second hold of the same time is refused.
    outcome(post_parameters(&app, "/Appointment/$hold", with_appointment(&found[0]), None).await, StatusCode::CONFLICT)
        .await;

    // Book the hold: booked, accepted, the Slot busy, busy Slots for both participants, a Task.
    let resp = post_parameters(&app, "/Appointment/$book", with_reference(&held_id), Some("key-1")).await;
    assert_eq!(resp.status(), 200);
    let booked: Value = resp.json().await.unwrap();
    assert_eq!(booked["status"], "booked");
    assert_eq!(booked["id"], held_id.as_str());
    assert!(booked["participant"].as_array().unwrap().iter().all(|p| p["status"] == "accepted"));
    let slot: Value = app.get("/Slot/s0").await.json().await.unwrap();
    assert_eq!(slot["status"], "busy");
    let mine: Value = app.get(&format!("/Slot?_id={held_id}-p0,{held_id}-p1")).await.json().await.unwrap();
    assert_eq!(mine["total"], 2);
    let tasks: Value = app.get(&format!("/Task?focus=Appointment/{held_id}")).await.json().await.unwrap();
    assert_eq!(tasks["total"], 1);
    assert_eq!(tasks["entry"][0]["resource"]["code"]["coding"][0]["code"], "book-appointment");
    // The confirmation as iCalendar: time, place and provider, no participant's name.
    let resp = app
        .client
        .get(app.url(&format!("/Appointment/{held_id}")))
        .header("Accept", "text/calendar")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/calendar"));
    let ics = resp.text().await.unwrap();
    let unfolded = ics.replace("\r\n ", "");
    let (_, compact) = day();
    for line in [
        format!("DTSTART:{compact}T140000Z"),
        format!("DTEND:{compact}T143000Z"),
        "STATUS:CONFIRMED".into(),
        "SUMMARY:Appointment with Dr. Ada Okafor".into(),
        "LOCATION:Riverside Clinic".into(),
        format!("UID:{held_id}@"),
    ] {
        assert!(unfolded.contains(&line), "{line} in {unfolded}");
    }
    for private in ["maria", "Silva", "ana", "RelatedPerson", "Patient"] {
        assert!(!unfolded.contains(private), "{private} leaked into {unfolded}");
    }
    let via_operation = app.get(&format!("/Appointment/{held_id}/$ics")).await.text().await.unwrap();
    assert_eq!(via_operation, ics);
    // A retry with the same key answers the same booking, not a conflict.
    let again = post_parameters(&app, "/Appointment/$book", with_reference(&held_id), Some("key-1")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], held_id.as_str());
    // The patient is now busy at that time for any other provider too.
    assert_eq!(starts(&proposals(&app, &find_path()).await), vec!["15:30"]);

    // Cancel: the Slot is free again, the participants' busy Slots are gone.
    let resp = app.client.post(app.url(&format!("/Appointment/{held_id}/$cancel"))).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap()["status"], "cancelled");
    let slot: Value = app.get("/Slot/s0").await.json().await.unwrap();
    assert_eq!(slot["status"], "free");
    let mine: Value = app.get(&format!("/Slot?_id={held_id}-p0,{held_id}-p1")).await.json().await.unwrap();
    assert_eq!(mine["total"], 0);
    let ics = app.get(&format!("/Appointment/{held_id}/$ics")).await.text().await.unwrap();
    assert!(ics.contains("STATUS:CANCELLED") && ics.contains("METHOD:CANCEL"), "{ics}");
    assert_eq!(starts(&proposals(&app, &find_path()).await), vec!["14:00", "15:30"]);

    // Operations are defined and listed.
    let def: Value = app.get("/OperationDefinition/appointment-find-mutual").await.json().await.unwrap();
    assert_eq!(def["code"], "find-mutual");
    assert!(def["parameter"].as_array().unwrap().iter().any(|p| p["name"] == "participant"));
    let cs: Value = app.get("/metadata").await.json().await.unwrap();
    let appointment =
        cs["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Appointment").unwrap().clone();
    let ops: Vec<&str> =
        appointment["operation"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(ops, vec!["find", "find-mutual", "hold", "book", "cancel", "ics"]);
    app.database.finish().await;
}

#[tokio::test]
async fn nothing_fits_says_why_and_offers_alternatives() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    // The caregiver is busy all morning.
    assert_eq!(import_ics(&app, "ana-busy", &busy_at("1300", "1700")).await.status(), 200);
    let path = find_path().replace("participant=RelatedPerson/ana", "optional-participant=RelatedPerson/ana")
        + "&explain=true";
    let b: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(b["total"], 0);
    let entries = b["entry"].as_array().unwrap();
    let why = entries.iter().find(|e| e["resource"]["resourceType"] == "OperationOutcome").unwrap();
    assert!(why["resource"]["issue"][0]["diagnostics"].as_str().unwrap().contains("No mutual time"), "{why}");
    let alternatives: Vec<&Value> = entries.iter().filter(|e| e["search"]["mode"] == "include").collect();
    assert_eq!(alternatives.len(), 4, "all four without the optional caregiver");
    assert_eq!(alternatives[0]["resource"]["extension"][0]["valueCode"], "without-optional");
    // Bad input: a clear 400.
    for bad in [
        "/Appointment/$find-mutual?end=2030-03-04",
        "/Appointment/$find-mutual?start=2030-03-04&end=2030-03-01",
        "/Appointment/$find-mutual?start=2030-03-04&end=2030-03-05&participant=Practitioner/okafor",
        "/Appointment/$find-mutual?start=2030-03-04&end=2030-03-05&participant=Patient/nobody",
        "/Appointment/$find-mutual?start=2030-03-04&end=2030-03-05&duration=forever",
        "/Appointment/$find-mutual?start=2030-01-01&end=2030-12-31",
        "/Appointment/$find-mutual?start=2030-03-04&end=2030-03-05&spread=maybe",
    ] {
        outcome(app.get(bad).await, StatusCode::BAD_REQUEST).await;
    }
    app.database.finish().await;
}

/// The days after the window are read, and offered as `after-window` alternatives, when nothing
/// in the window fits; a free Slot that began days before the window is found in it, with a
/// provider named or not.
#[tokio::test]
async fn nothing_in_the_window_reads_the_days_after_it_and_long_slots_count() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    assert_eq!(import_ics(&app, "ana-busy", &busy_at("1300", "1700")).await.status(), 200);
    let d = chrono::NaiveDate::parse_from_str(&day().0, "%Y-%m-%d").unwrap();
    let date = |days: i64| (d + chrono::TimeDelta::days(days)).format("%Y-%m-%d").to_string();
    let put = |path: &'static str, body: Value| {
        let app = &app;
        async move { assert!(app.put(path, &body, None).await.status().is_success(), "{path}") }
    };
    put(
        "/Slot/next-day",
        json!({"resourceType": "Slot", "id": "next-day", "schedule": {"reference": "Schedule/dr-okafor"}, "status": "free",
            "start": format!("{}T14:00:00Z", date(1)), "end": format!("{}T14:30:00Z", date(1))}),
    )
    .await;
    let b: Value = app.get(&find_path()).await.json().await.unwrap();
    assert_eq!(b["total"], 0);
    let after: Vec<&str> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["extension"][0]["valueCode"] == "after-window")
        .map(|e| e["resource"]["start"].as_str().unwrap())
        .collect();
    assert_eq!(after, [format!("{}T14:00:00Z", date(1))]);

    // Three whole days, from two days before the window.
    put(
        "/Schedule/dr-okafor-days",
        json!({"resourceType": "Schedule", "id": "dr-okafor-days", "active": true,
            "actor": [{"reference": "Practitioner/okafor"}]}),
    )
    .await;
    put(
        "/Slot/long",
        json!({"resourceType": "Slot", "id": "long", "schedule": {"reference": "Schedule/dr-okafor-days"}, "status": "free",
            "start": format!("{}T00:00:00Z", date(-2)), "end": format!("{}T00:00:00Z", date(1))}),
    )
    .await;
    // No Slot at all in a window, no duration asked for: the days after it offer their own
    // shortest Slot's length (the next day's half hour, not a default that might not fit).
    put(
        "/Slot/short-later",
        json!({"resourceType": "Slot", "id": "short-later", "schedule": {"reference": "Schedule/dr-okafor"},
            "status": "free", "start": format!("{}T09:00:00Z", date(5)), "end": format!("{}T09:15:00Z", date(5))}),
    )
    .await;
    let empty = format!("/Appointment/$find?start={d}&end={d}&practitioner=Practitioner/okafor", d = date(4));
    let b: Value = app.get(&empty).await.json().await.unwrap();
    assert_eq!(b["total"], 0);
    let after: Vec<(&str, &Value)> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["extension"][0]["valueCode"] == "after-window")
        .map(|e| (e["resource"]["start"].as_str().unwrap(), &e["resource"]["minutesDuration"]))
        .collect();
    assert_eq!(after, [(format!("{}T09:00:00Z", date(5)).as_str(), &json!(15))]);

    let uses_long = |found: &[Value]| found.iter().any(|a| a["slot"][0]["reference"] == "Slot/long");
    let found = proposals(&app, &format!("{}&_count=100", find_path())).await;
    assert!(uses_long(&found), "{found:?}");
    let found = proposals(&app, &format!("/Appointment/$find?start={d}&end={d}&_count=100", d = date(0))).await;
    assert!(uses_long(&found), "{found:?}");
    app.database.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_bookings_of_one_slot_book_it_once() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let found = proposals(&app, &find_path()).await;
    let offer = found[0].clone();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (client, url, body) =
            (app.client.clone(), app.url("/Appointment/$book"), with_appointment(&offer).to_string());
        tasks.push(tokio::spawn(async move {
            client.post(url).header("Content-Type", "application/fhir+json").body(body).send().await.unwrap().status()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap().as_u16());
    }
    assert_eq!(codes.iter().filter(|c| **c == 200).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 409).count(), 99, "{codes:?}");
    let booked: Value = app.get("/Appointment?status=booked").await.json().await.unwrap();
    assert_eq!(booked["total"], 1);
    app.database.finish().await;
}

#[tokio::test]
async fn a_participant_busy_since_the_search_makes_booking_fail() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let found = proposals(&app, &find_path()).await;
    // After the search, the caregiver's calendar fills 14:00-14:30Z.
    assert_eq!(import_ics(&app, "ana-busy", &busy_at("1400", "1430")).await.status(), 200);
    let resp = post_parameters(&app, "/Appointment/$book", with_appointment(&found[0]), None).await;
    let issue = outcome(resp, StatusCode::CONFLICT).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("RelatedPerson/ana is now busy"), "{issue}");
    let booked: Value = app.get("/Appointment?status=booked").await.json().await.unwrap();
    assert_eq!(booked["total"], 0);
    let slot: Value = app.get("/Slot/s0").await.json().await.unwrap();
    assert_eq!(slot["status"], "free");
    app.database.finish().await;
}

#[tokio::test]
async fn an_expired_hold_frees_its_slot_by_itself() {
    let app = spawn_app_holding(1).await;
    load_clinic(&app).await;
    let found = proposals(&app, &find_path()).await;
    let resp = post_parameters(&app, "/Appointment/$hold", with_appointment(&found[0]), None).await;
    assert_eq!(resp.status(), 201);
    let held: Value = resp.json().await.unwrap();
    assert_eq!(app.get("/Slot/s0").await.json::<Value>().await.unwrap()["status"], "busy-tentative");
    // Past its expiry another client may book the time even before the sweeper ran...
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let mut freed = false;
    for _ in 0..40 {
        let slot: Value = app.get("/Slot/s0").await.json().await.unwrap();
        if slot["status"] == "free" {
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // ...and the sweeper releases it without anyone calling anything.
    assert!(freed, "the hold was not released");
    let appointment: Value =
        app.get(&format!("/Appointment/{}", held["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(appointment["status"], "cancelled");
    // Booking on the expired hold is re-validated: the Slot is free, so it books.
    let resp = post_parameters(&app, "/Appointment/$book", with_appointment(&found[0]), None).await;
    assert_eq!(resp.status(), 200);
    app.database.finish().await;
}

const SLOT_CAPACITY: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity";

/// A group Slot (14:00-15:00Z on the test day) that takes `capacity` appointments.
async fn load_group_slot(app: &TestApp, capacity: i64) {
    let (d, _) = day();
    let schedule = json!({"resourceType": "Schedule", "id": "group", "active": true,
        "actor": [{"reference": "Location/riverside"}]});
    assert!(app.put("/Schedule/group", &schedule, None).await.status().is_success());
    let slot = json!({"resourceType": "Slot", "id": "g", "schedule": {"reference": "Schedule/group"},
        "status": "free", "start": format!("{d}T14:00:00Z"), "end": format!("{d}T15:00:00Z"),
        "extension": [{"url": SLOT_CAPACITY, "valueInteger": capacity}]});
    assert!(app.put("/Slot/g", &slot, None).await.status().is_success());
}

/// A proposed Appointment for a Slot and its time, with required participants.
fn proposed(slot: &Value, people: &[&str]) -> Value {
    let participant: Vec<Value> = people
        .iter()
        .map(|p| json!({"actor": {"reference": p}, "required": "required", "status": "needs-action"}))
        .collect();
    json!({"resourceType": "Appointment", "status": "proposed", "slot": [{"reference": format!("Slot/{}", slot["id"].as_str().unwrap())}],
        "start": slot["start"], "end": slot["end"], "participant": participant})
}

fn units_left(slot: &Value) -> Option<i64> {
    slot["extension"].as_array()?.iter().find(|e| e["url"] == SLOT_CAPACITY)?["valueInteger"].as_i64()
}

#[tokio::test]
async fn a_slot_with_capacity_takes_that_many_appointments() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    load_group_slot(&app, 2).await;
    let slot: Value = app.get("/Slot/g").await.json().await.unwrap();
    let book = |who: &'static str| {
        let body = with_appointment(&proposed(&slot, &[who]));
        let app = &app;
        async move { post_parameters(app, "/Appointment/$book", body, None).await }
    };
    let first = book("Patient/maria").await;
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.unwrap();
    let g: Value = app.get("/Slot/g").await.json().await.unwrap();
    assert_eq!((g["status"].as_str(), units_left(&g)), (Some("free"), Some(1)), "one unit left: {g}");
    // Still offered by $find while a unit is left.
    let find = format!("/Appointment/$find?start={d}&end={d}&location-reference=Location/riverside", d = day().0);
    assert!(proposals(&app, &find).await.iter().any(|a| a["slot"][0]["reference"] == "Slot/g"));
    assert_eq!(book("RelatedPerson/ana").await.status(), 200);
    let g: Value = app.get("/Slot/g").await.json().await.unwrap();
    assert_eq!((g["status"].as_str(), units_left(&g)), (Some("busy"), Some(0)));
    assert!(!proposals(&app, &find).await.iter().any(|a| a["slot"][0]["reference"] == "Slot/g"));
    let issue = outcome(book("Patient/maria").await, StatusCode::CONFLICT).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("fully booked"), "{issue}");
    // A cancellation gives its unit back.
    let id = first["id"].as_str().unwrap();
    assert_eq!(app.client.post(app.url(&format!("/Appointment/{id}/$cancel"))).send().await.unwrap().status(), 200);
    let g: Value = app.get("/Slot/g").await.json().await.unwrap();
    assert_eq!((g["status"].as_str(), units_left(&g)), (Some("free"), Some(1)));
    app.database.finish().await;
}

/// A small deterministic generator for the randomized test (xorshift64*).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// Many clients booking, holding and cancelling over five Slots (one taking two appointments)
/// and four participants at once. Afterwards no Slot holds more than its capacity, its status
/// and units agree with what is booked, no participant has two overlapping booked appointments,
/// and every booked appointment (and no other) has its participants' busy Slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn randomized_booking_and_cancelling_keeps_every_invariant() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    load_group_slot(&app, 2).await;
    assert!(
        app.put("/Patient/joe", &json!({"resourceType": "Patient", "id": "joe"}), None).await.status().is_success()
    );
    let ben = json!({"resourceType": "RelatedPerson", "id": "ben", "patient": {"reference": "Patient/joe"}});
    assert!(app.put("/RelatedPerson/ben", &ben, None).await.status().is_success());
    let mut slots = Vec::new();
    for id in ["s0", "s1", "s2", "s3", "g"] {
        slots.push(app.get(&format!("/Slot/{id}")).await.json::<Value>().await.unwrap());
    }
    let people = ["Patient/maria", "RelatedPerson/ana", "Patient/joe", "RelatedPerson/ben"];
    let seed = std::env::var("CALSYNC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| chrono::Utc::now().timestamp_nanos_opt().unwrap_or(1) as u64 | 1);
    eprintln!("CALSYNC_TEST_SEED={seed}");
    let app = std::sync::Arc::new(app);
    let mut clients = Vec::new();
    for c in 0..8u64 {
        let (app, slots) = (app.clone(), slots.clone());
        clients.push(tokio::spawn(async move {
            let mut dice = Dice(seed.wrapping_add(c.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
            let mut mine: Vec<String> = Vec::new();
            let mut codes = Vec::new();
            for _ in 0..25 {
                let slot = &slots[dice.below(slots.len())];
                let who: Vec<&str> = people.iter().copied().filter(|_| dice.below(2) == 0).collect();
                let who = if who.is_empty() { vec![people[dice.below(people.len())]] } else { who };
                let offer = proposed(slot, &who);
                match dice.below(4) {
                    0 if !mine.is_empty() => {
                        let id = mine.swap_remove(dice.below(mine.len()));
                        let url = app.url(&format!("/Appointment/{id}/$cancel"));
                        let status = app.client.post(url).send().await.unwrap().status();
                        codes.push(status.as_u16());
                        if status != 200 {
                            mine.push(id);
                        }
                    }
                    1 => {
                        let resp = post_parameters(&app, "/Appointment/$hold", with_appointment(&offer), None).await;
                        codes.push(resp.status().as_u16());
                        if resp.status() != 201 {
                            continue;
                        }
                        let held: Value = resp.json().await.unwrap();
                        let id = held["id"].as_str().unwrap().to_string();
                        let resp = post_parameters(&app, "/Appointment/$book", with_reference(&id), None).await;
                        codes.push(resp.status().as_u16());
                        if resp.status() == 200 {
                            mine.push(id);
                        } else {
                            // Give the hold back (retrying while others change the same Slot).
                            for _ in 0..20 {
                                let url = app.url(&format!("/Appointment/{id}/$cancel"));
                                if app.client.post(url).send().await.unwrap().status() == 200 {
                                    break;
                                }
                            }
                        }
                    }
                    _ => {
                        let resp = post_parameters(&app, "/Appointment/$book", with_appointment(&offer), None).await;
                        codes.push(resp.status().as_u16());
                        if resp.status() == 200 {
                            mine.push(resp.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
                        }
                    }
                }
            }
            codes
        }));
    }
    let mut codes = Vec::new();
    for c in clients {
        codes.extend(c.await.unwrap());
    }
    assert!(codes.iter().all(|c| matches!(c, 200 | 201 | 409)), "only successes and conflicts: {codes:?}");
    assert!(codes.contains(&200) && codes.contains(&409), "the run both booked and collided: {codes:?}");

    let all: Value = app.get("/Appointment?_count=500").await.json().await.unwrap();
    let appointments: Vec<Value> = all["entry"].as_array().unwrap().iter().map(|e| e["resource"].clone()).collect();
    let booked: Vec<&Value> = appointments.iter().filter(|a| a["status"] == "booked").collect();
    assert!(appointments.iter().all(|a| a["status"] == "booked" || a["status"] == "cancelled"), "no hold is left");
    for slot in &slots {
        let id = slot["id"].as_str().unwrap();
        let capacity = if id == "g" { 2 } else { 1 };
        let taken = booked.iter().filter(|a| a["slot"][0]["reference"] == format!("Slot/{id}")).count() as i64;
        assert!(taken <= capacity, "Slot/{id} has {taken} appointments for {capacity} places");
        let now: Value = app.get(&format!("/Slot/{id}")).await.json().await.unwrap();
        let expected = if taken == capacity { "busy" } else { "free" };
        assert_eq!(now["status"], expected, "Slot/{id} with {taken} of {capacity}: {now}");
        if id == "g" {
            assert_eq!(units_left(&now), Some(capacity - taken), "{now}");
        }
    }
    let interval = |a: &Value| {
        let t = |k: &str| chrono::DateTime::parse_from_rfc3339(a[k].as_str().unwrap()).unwrap();
        (t("start"), t("end"))
    };
    for who in people {
        let theirs: Vec<&&Value> = booked
            .iter()
            .filter(|a| a["participant"].as_array().unwrap().iter().any(|p| p["actor"]["reference"] == who))
            .collect();
        for (i, a) in theirs.iter().enumerate() {
            for b in &theirs[i + 1..] {
                let ((s1, e1), (s2, e2)) = (interval(a), interval(b));
                assert!(e1 <= s2 || e2 <= s1, "{who} has overlapping bookings {} and {}", a["id"], b["id"]);
            }
        }
    }
    for a in &appointments {
        let id = a["id"].as_str().unwrap();
        let n = a["participant"].as_array().unwrap().len();
        let ids: Vec<String> = (0..n).map(|k| format!("{id}-p{k}")).collect();
        let found: Value = app.get(&format!("/Slot?_id={}", ids.join(","))).await.json().await.unwrap();
        let expected = if a["status"] == "booked" { n as u64 } else { 0 };
        assert_eq!(found["total"], expected, "participants' busy Slots of {} Appointment/{id}", a["status"]);
    }
    std::sync::Arc::into_inner(app).expect("clients are done").database.finish().await;
}

#[tokio::test]
async fn find_narrows_by_organization_and_location_text() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let (d, _) = day();
    let hillside = json!({"resourceType": "Location", "id": "hillside", "name": "Hillside Health",
        "managingOrganization": {"reference": "Organization/acme"},
        "address": {"line": ["4 Hill Rd"], "city": "Springfield", "postalCode": "01103"}});
    assert!(app.put("/Location/hillside", &hillside, None).await.status().is_success());
    let schedule = json!({"resourceType": "Schedule", "id": "dr-hill", "active": true, "actor": [{"reference": "Location/hillside"}]});
    assert!(app.put("/Schedule/dr-hill", &schedule, None).await.status().is_success());
    let slot = json!({"resourceType": "Slot", "id": "h0", "schedule": {"reference": "Schedule/dr-hill"}, "status": "free",
        "start": format!("{d}T16:00:00Z"), "end": format!("{d}T16:30:00Z")});
    assert!(app.put("/Slot/h0", &slot, None).await.status().is_success());
    let slots_of = |query: &str| {
        let path = format!("/Appointment/$find?start={d}&end={d}&_count=20&{query}");
        let app = &app;
        async move {
            let found = proposals(app, &path).await;
            found.iter().map(|a| a["slot"][0]["reference"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        }
    };
    assert_eq!(slots_of("").await.len(), 5);
    assert_eq!(slots_of("location-string=springfield").await, vec!["Slot/h0"]);
    assert_eq!(slots_of("location-string=01103").await, vec!["Slot/h0"]);
    assert_eq!(slots_of("location-string=Riverside").await, vec!["Slot/s0", "Slot/s1", "Slot/s2", "Slot/s3"]);
    assert_eq!(slots_of("organization=Organization/acme").await, vec!["Slot/h0"]);
    assert!(slots_of("organization=Organization/nobody").await.is_empty());
    assert!(slots_of("location-string=Atlantis").await.is_empty());
    assert!(slots_of("location-string=Riverside&organization=Organization/acme").await.is_empty(), "both narrow");
    outcome(
        app.get(&format!("/Appointment/$find?start={d}&end={d}&organization=Location/x")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    app.database.finish().await;
}

/// An ICS feed on loopback whose events carry a title, for the connections test.
fn serve_feed(body: String) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/secret-token-81/cal.ics", listener.local_addr().unwrap().port());
    let server = actix_web::HttpServer::new(move || {
        let body = body.clone();
        actix_web::App::new().default_service(actix_web::web::to(move || {
            let body = body.clone();
            async move { actix_web::HttpResponse::Ok().content_type("text/calendar").body(body) }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_connections_are_created_synced_listed_and_deleted() {
    // Without a secret key the server cannot keep credentials: 503, said clearly.
    let plain = spawn_app().await;
    let resp = plain
        .post("/connections", &json!({"participant": "Patient/maria", "kind": "ics", "url": "https://x.example/c.ics"}))
        .await;
    outcome(resp, StatusCode::SERVICE_UNAVAILABLE).await;
    plain.database.finish().await;

    let app = spawn_app_with(|s| s.secret_key = Some("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".into())).await;
    load_clinic(&app).await;
    let consent = json!({"resourceType": "Consent", "id": "maria-sync", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/maria"}, "provision": {"type": "permit"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]}});
    assert!(app.put("/Consent/maria-sync", &consent, None).await.status().is_success());
    let url = serve_feed(busy_at("1400", "1500"));
    for (bad, status) in [
        (json!({"participant": "Patient/nobody", "kind": "ics", "url": url}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Practitioner/okafor", "kind": "ics", "url": url}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "ics"}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "ics", "url": "file:///etc/passwd"}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "caldav", "url": url}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "google", "url": url}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "fax", "url": url}), StatusCode::BAD_REQUEST),
    ] {
        outcome(app.post("/connections", &bad).await, status).await;
    }
    let resp = app.post("/connections", &json!({"participant": "Patient/maria", "kind": "ics", "url": url})).await;
    assert_eq!(resp.status(), 201);
    assert!(resp.headers().contains_key("location"));
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["state"], "new");
    assert!(created["host"].as_str().unwrap().starts_with("127.0.0.1:"), "{created}");
    assert!(!created.to_string().contains("secret-token-81"), "the address stays sealed: {created}");
    let id = created["id"].as_str().unwrap();
    // Sync now: Maria is busy 14:00-15:00Z on the test day, in her derived Schedule.
    let synced: Value =
        app.client.post(app.url(&format!("/connections/{id}/$sync"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(synced["state"], "ok", "{synced}");
    assert!(synced["lastSuccess"].is_string() && synced["nextRun"].is_string());
    let schedule = created["schedule"].as_str().unwrap().trim_start_matches("Schedule/").to_string();
    let busy: Value = app.get(&format!("/Slot?schedule={schedule}")).await.json().await.unwrap();
    assert_eq!(busy["total"], 1, "{busy}");
    assert!(!busy.to_string().contains("Dentist"), "no event text");
    let path = find_path().replace("&participant=RelatedPerson/ana", "");
    assert_eq!(starts(&proposals(&app, &path).await), vec!["15:00", "15:30"], "the synced busy time counts");
    let listed: Value = app.get("/connections?participant=Patient/maria").await.json().await.unwrap();
    assert_eq!(listed["connections"].as_array().unwrap().len(), 1);
    outcome(app.get("/connections?participant=Location/riverside").await, StatusCode::BAD_REQUEST).await;
    outcome(app.get("/connections/unknown").await, StatusCode::NOT_FOUND).await;
    // Deleting the connection takes its busy Slots with it.
    assert_eq!(app.client.delete(app.url(&format!("/connections/{id}"))).send().await.unwrap().status(), 204);
    let busy: Value = app.get(&format!("/Slot?schedule={schedule}")).await.json().await.unwrap();
    assert_eq!(busy["total"], 0);
    outcome(app.get(&format!("/connections/{id}")).await, StatusCode::NOT_FOUND).await;
    app.database.finish().await;
}

/// Serves an emulator's routes on a random loopback port; returns its base URL (no slash).
fn serve_emulator(configure: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    base
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_and_microsoft_calendars_connect_through_oauth_with_pkce_and_least_scopes() {
    use calsync_emulators::{google, microsoft};
    let (g, m) = (google::State::new("calsync-google", "g-secret"), microsoft::State::new("calsync-ms", "m-secret"));
    let (gs, ms) = (g.clone(), m.clone());
    let google_base = serve_emulator(move |cfg| google::routes(gs.clone())(cfg));
    let graph_base = serve_emulator(move |cfg| microsoft::routes(ms.clone())(cfg));
    let (busy_start, busy_end) = {
        let d = (chrono::Utc::now() + chrono::TimeDelta::days(3)).date_naive().and_hms_opt(14, 0, 0).unwrap().and_utc();
        (d, d + chrono::TimeDelta::hours(1))
    };
    g.lock().unwrap().accounts.insert("ann".into(), google::Account { busy: vec![(busy_start, busy_end)] });
    m.lock().unwrap().mailboxes.insert(
        "bob".into(),
        vec![microsoft::Event {
            start: busy_start,
            end: busy_end,
            show_as: "busy".into(),
            all_day: false,
            cancelled: false,
            subject: "Chemotherapy".into(),
        }],
    );
    let (gb, mb) = (google_base.clone(), graph_base.clone());
    let app = spawn_app_with(move |s| {
        s.secret_key = Some("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".into());
        s.google = Some(calsync_system::OAuthProvider {
            client_id: "calsync-google".into(),
            client_secret: "g-secret".into(),
            authorize_url: format!("{gb}/o/oauth2/v2/auth"),
            token_url: format!("{gb}/token"),
            api_url: format!("{gb}/"),
        });
        s.microsoft = Some(calsync_system::OAuthProvider {
            client_id: "calsync-ms".into(),
            client_secret: "m-secret".into(),
            authorize_url: format!("{mb}/common/oauth2/v2.0/authorize"),
            token_url: format!("{mb}/common/oauth2/v2.0/token"),
            api_url: format!("{mb}/"),
        });
    })
    .await;
    load_clinic(&app).await;
    for (participant, id) in [("Patient/maria", "maria-sync"), ("RelatedPerson/ana", "ana-sync")] {
        let consent = json!({"resourceType": "Consent", "id": id, "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/maria"}, "performer": [{"reference": participant}],
            "provision": {"type": "permit"},
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]}});
        assert!(app.put(&format!("/Consent/{id}"), &consent, None).await.status().is_success());
    }
    // A browser: follows nothing by itself here, so each hop is checked.
    let browser = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let hop = |url: String| {
        let browser = browser.clone();
        async move { browser.get(url).header("Accept", "application/json").send().await.unwrap() }
    };

    for (provider, participant, account, scope) in [
        ("google", "Patient/maria", "ann", "https://www.googleapis.com/auth/calendar.freebusy"),
        ("microsoft", "RelatedPerson/ana", "bob", "offline_access Calendars.ReadBasic"),
    ] {
        match provider {
            "google" => g.lock().unwrap().consent.next_account = Some(account.into()),
            _ => m.lock().unwrap().consent.next_account = Some(account.into()),
        }
        let start = hop(app.url(&format!("/connect/{provider}/start?participant={participant}"))).await;
        assert_eq!(start.status(), 302, "{provider}");
        let to_provider = start.headers()["location"].to_str().unwrap().to_string();
        let q = query_of(&to_provider);
        assert_eq!(q["scope"], scope, "least scopes only");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["redirect_uri"], app.url(&format!("/connect/{provider}/callback")));
        if provider == "google" {
            assert_eq!((q["access_type"].as_str(), q["prompt"].as_str()), ("offline", "consent"));
        }
        let consented = hop(to_provider).await;
        assert_eq!(consented.status(), 302);
        let back = consented.headers()["location"].to_str().unwrap().to_string();
        let created = hop(back.clone()).await;
        assert_eq!(created.status(), 201, "{provider}: {}", created.text().await.unwrap());
        let c: Value = created.json().await.unwrap();
        assert_eq!(
            (c["kind"].as_str(), c["participant"].as_str(), c["state"].as_str()),
            (Some(provider), Some(participant), Some("new"))
        );
        assert!(!c.to_string().contains("emulated"), "no token in the answer: {c}");
        // The code works once.
        outcome(hop(back).await, StatusCode::BAD_REQUEST).await;
        // The connection syncs with the refresh token it got.
        let id = c["id"].as_str().unwrap();
        let synced: Value =
            app.client.post(app.url(&format!("/connections/{id}/$sync"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(synced["state"], "ok", "{synced}");
        let schedule = synced["schedule"].as_str().unwrap();
        let busy = bundle(&app, &format!("schedule={schedule}&status=busy")).await;
        assert_eq!(busy["total"], 1, "{provider}: {busy}");
    }
    // Bob's event subject never reached calsync.
    assert!(m.lock().unwrap().selects.iter().all(|s| !s.contains("subject")));

    // Declining at the provider connects nothing, and says so.
    g.lock().unwrap().consent.next_account = None;
    let start = hop(app.url("/connect/google/start?participant=Patient/maria")).await;
    let declined = hop(start.headers()["location"].to_str().unwrap().to_string()).await;
    let back = declined.headers()["location"].to_str().unwrap().to_string();
    assert!(back.contains("error=access_denied"), "{back}");
    let issue = outcome(hop(back).await, StatusCode::BAD_REQUEST).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("access_denied"), "{issue}");
    let listed: Value = app.get("/connections?participant=Patient/maria").await.json().await.unwrap();
    assert_eq!(listed["connections"].as_array().unwrap().len(), 1);

    // A forged state, an unknown provider, a participant who does not exist.
    outcome(hop(app.url("/connect/google/callback?state=forged&code=x")).await, StatusCode::BAD_REQUEST).await;
    outcome(hop(app.url("/connect/yahoo/start?participant=Patient/maria")).await, StatusCode::NOT_FOUND).await;
    outcome(hop(app.url("/connect/google/start?participant=Patient/nobody")).await, StatusCode::BAD_REQUEST).await;

    // Ana's consent is revoked: her connection is purged by the Consent write itself, before
    // any sync: busy Slots and credentials gone, the connection says why.
    let mut revoked: Value = app.get("/Consent/ana-sync").await.json().await.unwrap();
    revoked["status"] = json!("inactive");
    assert_eq!(app.put("/Consent/ana-sync", &revoked, None).await.status(), 200);
    let listed: Value = app.get("/connections?participant=RelatedPerson/ana").await.json().await.unwrap();
    let ana = &listed["connections"][0];
    assert_eq!(ana["state"], "consent-withdrawn", "{ana}");
    assert!(ana["reason"].as_str().unwrap().contains("1 busy windows and the credentials were deleted"), "{ana}");
    let schedule = ana["schedule"].as_str().unwrap();
    assert_eq!(bundle(&app, &format!("schedule={schedule}&status=busy")).await["total"], 0);
    // Maria's connection is untouched by Ana's consent.
    let listed: Value = app.get("/connections?participant=Patient/maria").await.json().await.unwrap();
    assert_eq!(listed["connections"][0]["state"], "ok");
    app.database.finish().await;
}

/// The SSL conformance kit's checks on one NDJSON line of `kind` (Location with a phone or url,
/// Schedule with a Location actor, Slot with status free or busy(-tentative) and instants).
fn assert_ssl_resource(kind: &str, r: &Value) {
    assert_eq!(r["resourceType"], kind, "{r}");
    let id = r["id"].as_str().unwrap();
    assert!(id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'), "{id}");
    let instant = |v: &Value| v.as_str().is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
    match kind {
        "Location" => {
            let telecom = r["telecom"].as_array().expect("telecom");
            assert!(telecom.iter().any(|t| t["system"] == "phone" || t["system"] == "url"), "{r}");
        }
        "Schedule" => {
            let actors = r["actor"].as_array().unwrap();
            assert!(actors.iter().any(|a| a["reference"].as_str().unwrap().starts_with("Location/")), "{r}");
            assert!(actors.iter().all(|a| !a["reference"].as_str().unwrap().starts_with("Patient/")), "{r}");
        }
        _ => {
            assert!(
                ["free", "busy", "busy-tentative", "busy-unavailable"].contains(&r["status"].as_str().unwrap()),
                "{r}"
            );
            assert!(instant(&r["start"]) && instant(&r["end"]), "{r}");
            assert!(r["schedule"]["reference"].as_str().unwrap().starts_with("Schedule/"), "{r}");
        }
    }
}

async fn ndjson_lines(app: &TestApp, url: &str) -> Vec<Value> {
    let resp = app.client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    assert_eq!(resp.headers()["content-type"], "application/fhir+ndjson", "{url}");
    let text = resp.text().await.unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{url}: {e}: {l}"))).collect()
}

/// The clinic of [`load_clinic`] as a publisher has it: a Location with its address, phone and
/// page, and Slot s3 with a booking link and two places.
async fn load_published_clinic(app: &TestApp) {
    load_clinic(app).await;
    let location = json!({"resourceType": "Location", "id": "riverside", "name": "Riverside Clinic",
        "telecom": [{"system": "phone", "value": "617-555-0100"}, {"system": "url", "value": "https://riverside.example"}],
        "address": {"line": ["1 River St"], "city": "Boston", "state": "MA", "postalCode": "02110"}});
    assert_eq!(app.put("/Location/riverside", &location, None).await.status(), 200);
    let mut s3: Value = app.get("/Slot/s3").await.json().await.unwrap();
    s3["extension"] = json!([
        {"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link", "valueUrl": "https://riverside.example/book?slot=s3"},
        {"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity", "valueInteger": 2}]);
    assert_eq!(app.put("/Slot/s3", &s3, None).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_publish_serves_provider_availability_only_and_follows_changes() {
    let app = spawn_app().await;
    load_published_clinic(&app).await;
    // A second clinic in another state, with one Slot the week after the test day.
    let harbor = json!({"resourceType": "Location", "id": "harbor", "name": "Harbor Clinic",
        "telecom": [{"system": "phone", "value": "603-555-0100"}],
        "address": {"line": ["2 Dock Rd"], "city": "Portsmouth", "state": "NH", "postalCode": "03801"}});
    assert_eq!(app.put("/Location/harbor", &harbor, None).await.status(), 201);
    let lee = json!({"resourceType": "Schedule", "id": "dr-lee", "active": true,
        "actor": [{"reference": "Location/harbor"}]});
    assert_eq!(app.put("/Schedule/dr-lee", &lee, None).await.status(), 201);
    let later = chrono::NaiveDate::parse_from_str(&day().0, "%Y-%m-%d").unwrap() + chrono::TimeDelta::weeks(1);
    let h1 = json!({"resourceType": "Slot", "id": "h1", "schedule": {"reference": "Schedule/dr-lee"},
        "status": "free", "start": format!("{later}T14:00:00Z"), "end": format!("{later}T14:30:00Z")});
    assert_eq!(app.put("/Slot/h1", &h1, None).await.status(), 201);
    // A booking link and a capacity stay; a participant's busy time and a hold never appear.
    assert!(import_ics(&app, "ana-busy", &busy_at("1400", "1500")).await.status().is_success());
    let found = proposals(&app, &find_path().replace("&participant=RelatedPerson/ana", "")).await;
    let held = post_parameters(&app, "/Appointment/$hold", with_appointment(&found[0]), None).await;
    assert_eq!(held.status(), 201);

    // The manifest, with no Accept header.
    let resp = app.client.get(app.url("/$bulk-publish")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    assert_eq!(resp.headers()["cache-control"], "max-age=60");
    let tag = resp.headers()["etag"].to_str().unwrap().to_string();
    let manifest: Value = resp.json().await.unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(manifest["transactionTime"].as_str().unwrap()).is_ok());
    assert_eq!(manifest["request"], app.url("/$bulk-publish"));
    assert_eq!(manifest["error"], json!([]));
    let outputs = manifest["output"].as_array().unwrap();
    let of = |t: &str| outputs.iter().filter(|o| o["type"] == t).collect::<Vec<_>>();
    assert_eq!((of("Location").len(), of("Schedule").len()), (1, 1));
    let week = {
        let d = chrono::NaiveDate::parse_from_str(&day().0, "%Y-%m-%d").unwrap().iso_week();
        format!("slots-{}-W{:02}.ndjson", d.year(), d.week())
    };
    let slot_files = of("Slot");
    // One file per week with published Slots, naming the states of their Locations: the
    // clinic's week (MA); the week after, the harbor clinic's (NH). The participant's busy
    // time counts for no week.
    let next_week = {
        let d =
            (chrono::NaiveDate::parse_from_str(&day().0, "%Y-%m-%d").unwrap() + chrono::TimeDelta::weeks(1)).iso_week();
        format!("slots-{}-W{:02}.ndjson", d.year(), d.week())
    };
    let files: Vec<(&str, &Value)> = slot_files
        .iter()
        .map(|o| (o["url"].as_str().unwrap().rsplit('/').next().unwrap(), &o["extension"]["state"]))
        .collect();
    assert_eq!(files, [(week.as_str(), &json!(["MA"])), (next_week.as_str(), &json!(["NH"]))]);
    for o in &slot_files {
        assert!(reqwest::Url::parse(o["url"].as_str().unwrap()).is_ok());
    }
    let week_url =
        slot_files.iter().find(|o| o["url"].as_str().unwrap().ends_with(&week)).expect("the test day's week")["url"]
            .as_str()
            .unwrap()
            .to_string();

    // The files.
    let locations = ndjson_lines(&app, of("Location")[0]["url"].as_str().unwrap()).await;
    let schedules = ndjson_lines(&app, of("Schedule")[0]["url"].as_str().unwrap()).await;
    let slots = ndjson_lines(&app, &week_url).await;
    for (kind, lines) in [("Location", &locations), ("Schedule", &schedules), ("Slot", &slots)] {
        lines.iter().for_each(|r| assert_ssl_resource(kind, r));
    }
    assert_eq!(locations.len(), 2);
    assert_eq!(
        schedules.iter().map(|s| s["id"].as_str().unwrap()).collect::<Vec<_>>(),
        ["dr-lee", "dr-okafor"],
        "no derived Schedule"
    );
    let mut ids: Vec<&str> = slots.iter().map(|s| s["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["s0", "s1", "s2", "s3"], "provider Slots only: no participant's busy Slot");
    let text = serde_json::to_string(&slots).unwrap();
    assert!(!text.contains("calsync.example.org/fhir/StructureDefinition/hold"), "no hold bookkeeping: {text}");
    let s3 = slots.iter().find(|s| s["id"] == "s3").unwrap();
    assert_eq!(s3["extension"].as_array().unwrap().len(), 2, "booking extensions kept: {s3}");
    // A week listed for nothing is empty; an unknown file is a 404 OperationOutcome.
    let this_week = {
        let d = chrono::Utc::now().date_naive().iso_week();
        format!("/$bulk-publish/slots-{}-W{:02}.ndjson", d.year(), d.week())
    };
    assert!(ndjson_lines(&app, &app.url(&this_week)).await.is_empty());
    outcome(app.get("/$bulk-publish/slots-2026-W99.ndjson").await, StatusCode::NOT_FOUND).await;
    outcome(app.get("/$bulk-publish/secrets.ndjson").await, StatusCode::NOT_FOUND).await;
    outcome(app.get("/$bulk-publish?_since=yesterday").await, StatusCode::BAD_REQUEST).await;

    // Conditional GET: unchanged → 304 (by tag, or by date); a Slot write moves the tag.
    let again = app.client.get(app.url("/$bulk-publish")).header("If-None-Match", &tag).send().await.unwrap();
    assert_eq!(again.status(), 304);
    let modified = again.headers()["last-modified"].to_str().unwrap().to_string();
    let by_date =
        app.client.get(app.url("/$bulk-publish")).header("If-Modified-Since", &modified).send().await.unwrap();
    assert_eq!(by_date.status(), 304);
    let before = (chrono::DateTime::parse_from_rfc2822(&modified).unwrap() - chrono::TimeDelta::seconds(1))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let older = app.client.get(app.url("/$bulk-publish")).header("If-Modified-Since", &before).send().await.unwrap();
    assert_eq!(older.status(), 200);
    let since = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let mut s2: Value = app.get("/Slot/s2").await.json().await.unwrap();
    s2["status"] = json!("busy");
    assert_eq!(app.put("/Slot/s2", &s2, None).await.status(), 200);
    let changed = app.client.get(app.url("/$bulk-publish")).header("If-None-Match", &tag).send().await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), tag);

    // _since: the file URLs carry it, and only what changed comes back.
    let stamp = since.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let m: Value = app.get(&format!("/$bulk-publish?_since={stamp}")).await.json().await.unwrap();
    let url =
        m["output"].as_array().unwrap().iter().find(|o| o["url"].as_str().unwrap().contains(&week)).unwrap()["url"]
            .as_str()
            .unwrap()
            .to_string();
    assert!(url.contains("_since="), "{url}");
    let fresh = ndjson_lines(&app, &url).await;
    assert_eq!(fresh.iter().map(|s| s["id"].as_str().unwrap()).collect::<Vec<_>>(), ["s2"]);
    assert!(ndjson_lines(&app, m["output"][0]["url"].as_str().unwrap()).await.is_empty(), "no Location changed");

    // The harbor clinic moves to Maine: its week's file says so at once.
    let mut moved = harbor.clone();
    moved["address"]["state"] = json!("ME");
    assert_eq!(app.put("/Location/harbor", &moved, None).await.status(), 200);
    let m: Value = app.get("/$bulk-publish").await.json().await.unwrap();
    let states = m["output"].as_array().unwrap().iter().find(|o| o["url"].as_str().unwrap().ends_with(&next_week));
    assert_eq!(states.unwrap()["extension"]["state"], json!(["ME"]));
    app.database.finish().await;
}

/// Every resource of a published NDJSON file set of one type, by id.
async fn published(app: &TestApp, t: &str) -> std::collections::BTreeMap<String, Value> {
    let m: Value = app.get("/$bulk-publish").await.json().await.unwrap();
    let mut all = std::collections::BTreeMap::new();
    for o in m["output"].as_array().unwrap().iter().filter(|o| o["type"] == t) {
        for r in ndjson_lines(app, o["url"].as_str().unwrap()).await {
            all.insert(r["id"].as_str().unwrap().to_string(), r);
        }
    }
    all
}

/// A resource without what a store stamps or an ingester adds, its references as `{prefix}{id}`.
fn comparable(mut r: Value, prefix: &str) -> Value {
    r.as_object_mut().unwrap().remove("id");
    r.as_object_mut().unwrap().remove("meta");
    for pointer in ["/schedule/reference", "/actor/0/reference"] {
        if let Some(Value::String(reference)) = r.pointer_mut(pointer) {
            let (t, id) = reference.split_once('/').unwrap();
            *reference = format!("{t}/{}", id.trim_start_matches(prefix));
        }
    }
    r
}

/// Addresses given to the API (publishers' manifests, ICS and CalDAV calendars) that are not
/// public are refused with a 422 naming the field, and nothing is stored, unless the
/// configuration allows them (`[egress]`); the production default allows none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_on_private_networks_are_refused_unless_the_configuration_allows_them() {
    let a = spawn_app().await;
    load_published_clinic(&a).await;
    let key = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";
    let b = spawn_app_with(|s| {
        s.egress = calsync_system::EgressConfig::default();
        s.secret_key = Some(key.into());
    })
    .await;
    load_clinic(&b).await;
    let port = a.base.rsplit(':').next().unwrap().to_string();
    for manifest in [
        a.url("/$bulk-publish"),
        format!("http://localhost:{port}/$bulk-publish"),
        "http://169.254.169.254/latest/$bulk-publish".to_string(),
        "https://[::1]/$bulk-publish".to_string(),
    ] {
        let issue =
            outcome(b.post("/publishers", &json!({"manifest": manifest})).await, StatusCode::UNPROCESSABLE_ENTITY)
                .await;
        assert!(issue["diagnostics"].as_str().unwrap().contains("not a public address"), "{manifest}: {issue}");
        assert_eq!(issue["expression"], json!(["manifest"]));
    }
    let listed: Value = b.get("/publishers").await.json().await.unwrap();
    assert_eq!(listed["publishers"], json!([]));
    for connection in [
        json!({"participant": "Patient/maria", "kind": "ics", "url": serve_feed(busy_at("1400", "1500"))}),
        json!({"participant": "Patient/maria", "kind": "ics", "url": "webcal://localhost/maria.ics"}),
        json!({"participant": "Patient/maria", "kind": "caldav", "url": "http://192.168.1.10/dav/maria/",
            "username": "maria", "password": "secret"}),
    ] {
        let issue = outcome(b.post("/connections", &connection).await, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(issue["diagnostics"].as_str().unwrap().contains("not a public address"), "{connection}: {issue}");
        assert_eq!(issue["expression"], json!(["url"]));
    }
    let listed: Value = b.get("/connections?participant=Patient/maria").await.json().await.unwrap();
    assert_eq!(listed["connections"], json!([]));

    // Allowed by address: the same publisher registers and is read.
    let c = spawn_app_with(|s| {
        s.egress = calsync_system::EgressConfig { private_networks: false, allow: vec!["127.0.0.1".into()] }
    })
    .await;
    let created = c.post("/publishers", &json!({"manifest": a.url("/$bulk-publish")})).await;
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let polled: Value = c.post(&format!("/publishers/{id}/$poll"), &json!({})).await.json().await.unwrap();
    assert_eq!(polled["state"], "ok", "{polled}");
    for app in [a, b, c] {
        app.database.finish().await;
    }
}

#[tokio::test]
async fn one_instance_ingests_what_another_publishes_then_only_what_changed() {
    // A publishes a clinic; B registers A's manifest through its API and polls it.
    let a = spawn_app().await;
    load_published_clinic(&a).await;
    let b = spawn_app().await;

    // Bad registrations are OperationOutcomes.
    outcome(b.post("/publishers", &json!({})).await, StatusCode::BAD_REQUEST).await;
    outcome(b.post("/publishers", &json!({"manifest": "/etc"})).await, StatusCode::BAD_REQUEST).await;
    outcome(b.post("/publishers", &json!({"manifest": a.url("/feed.json")})).await, StatusCode::BAD_REQUEST).await;
    outcome(b.get("/publishers/nobody").await, StatusCode::NOT_FOUND).await;

    let created = b.post("/publishers", &json!({"manifest": a.url("/$bulk-publish")})).await;
    assert_eq!(created.status(), 201);
    let publisher: Value = created.json().await.unwrap();
    let ns = publisher["id"].as_str().unwrap().to_string();
    assert_eq!(publisher["state"], "new");
    let polled: Value = b.post(&format!("/publishers/{ns}/$poll"), &json!({})).await.json().await.unwrap();
    assert_eq!(polled["state"], "ok", "{polled:#}");
    assert_eq!(polled["report"]["full"], true);

    // B's Slots equal A's published Slots, one for one.
    let theirs = published(&a, "Slot").await;
    assert!(theirs.len() >= 4);
    let prefix = format!("{ns}.");
    for (id, slot) in &theirs {
        let ours: Value = b.get(&format!("/Slot/{ns}.{id}")).await.json().await.unwrap();
        assert_eq!(comparable(ours.clone(), &prefix), comparable(slot.clone(), ""), "Slot {id}");
        assert!(ours["meta"]["source"].as_str().unwrap().ends_with(&format!("/$bulk-publish#Slot/{id}")));
    }
    for (t, resources) in [("Location", published(&a, "Location").await), ("Schedule", published(&a, "Schedule").await)]
    {
        for (id, r) in resources {
            let ours: Value = b.get(&format!("/{t}/{ns}.{id}")).await.json().await.unwrap();
            assert_eq!(comparable(ours, &prefix), comparable(r, ""), "{t} {id}");
        }
    }
    // B searches them like its own.
    let found = bundle(&b, &format!("/Slot?schedule=Schedule/{ns}.dr-okafor&_count=100")).await;
    assert_eq!(found["total"].as_u64(), Some(theirs.len() as u64));
    // B publishes what it ingested under its own ids: a chain of publishers keeps working.
    assert!(published(&b, "Slot").await.contains_key(&format!("{ns}.s3")));

    // Nothing changed at A: the manifest answers 304 and nothing is read.
    let again: Value = b.post(&format!("/publishers/{ns}/$poll"), &json!({})).await.json().await.unwrap();
    assert_eq!(again["report"]["notModified"], true, "{again:#}");

    // A changes one Slot and adds one; B's next poll asks with _since, which A honours.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let mut s2: Value = a.get("/Slot/s2").await.json().await.unwrap();
    s2["status"] = json!("busy");
    assert_eq!(a.put("/Slot/s2", &s2, None).await.status(), 200);
    let mut s9 = s2.clone();
    s9["id"] = json!("s9");
    s9["status"] = json!("free");
    assert_eq!(a.put("/Slot/s9", &s9, None).await.status(), 201);
    let next: Value = b.post(&format!("/publishers/{ns}/$poll"), &json!({})).await.json().await.unwrap();
    let report = &next["report"];
    assert_eq!(report["since"], polled["since"], "{next:#}");
    assert_eq!(report["full"], false, "A honoured _since: {report:#}");
    assert_eq!(report["types"]["Slot"]["lines"], 2, "only what changed was sent: {report:#}");
    assert_eq!(
        (report["types"]["Slot"]["changed"].as_u64(), report["types"]["Slot"]["created"].as_u64()),
        (Some(1), Some(1))
    );
    let ours: Value = b.get(&format!("/Slot/{ns}.s2")).await.json().await.unwrap();
    assert_eq!(ours["status"], "busy");
    assert_eq!(ours["meta"]["versionId"], "2");
    let ours: Value = b.get(&format!("/Slot/{ns}.s9")).await.json().await.unwrap();
    assert_eq!(ours["status"], "free");
    let unchanged: Value = b.get(&format!("/Slot/{ns}.s1")).await.json().await.unwrap();
    assert_eq!(unchanged["meta"]["versionId"], "1", "an incremental poll leaves the rest alone");

    // The list shows it; deleting it removes everything that came from A.
    let list: Value = b.get("/publishers").await.json().await.unwrap();
    assert_eq!(list["publishers"][0]["id"], ns.as_str());
    assert_eq!(b.client.delete(b.url(&format!("/publishers/{ns}"))).send().await.unwrap().status(), 204);
    assert_eq!(b.get(&format!("/Slot/{ns}.s1")).await.status(), 410);
    outcome(b.get(&format!("/publishers/{ns}")).await, StatusCode::NOT_FOUND).await;
    a.database.finish().await;
    b.database.finish().await;
}

#[tokio::test]
async fn a_booking_handed_off_to_the_publishers_portal_completes_its_task_on_return() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let portal = "https://portal.example/book?slot=s3&lang=en";
    let mut s3: Value = app.get("/Slot/s3").await.json().await.unwrap();
    s3["extension"] = json!([
        {"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link", "valueUrl": portal},
        {"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity", "valueInteger": 1}]);
    // A link a patient's app must not open is refused, and the Slot stays as it was.
    let mut scripted = s3.clone();
    scripted["extension"][0]["valueUrl"] = json!("javascript:alert(document.cookie)");
    let refused = outcome(app.put("/Slot/s3", &scripted, None).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(refused["expression"][0], "Slot.extension", "{refused}");
    assert_eq!(app.get("/Slot/s3").await.json::<Value>().await.unwrap()["meta"]["versionId"], s3["meta"]["versionId"]);
    assert_eq!(app.put("/Slot/s3", &s3, None).await.status(), 200);
    let who = json!({"resourceType": "Parameters", "parameter": [
        {"name": "patient", "valueReference": {"reference": "Patient/maria"}},
        {"name": "participant", "valueReference": {"reference": "RelatedPerson/ana"}}]});

    // A Slot without a link, an unknown patient: OperationOutcomes.
    outcome(app.post("/Slot/s1/$booking-link", &who).await, StatusCode::UNPROCESSABLE_ENTITY).await;
    let stranger = json!({"resourceType": "Parameters", "parameter": [{"name": "patient", "valueReference": {"reference": "Patient/nobody"}}]});
    outcome(app.post("/Slot/s3/$booking-link", &stranger).await, StatusCode::BAD_REQUEST).await;

    let handoff = |body: Value| {
        let app = &app;
        async move {
            let resp = app.post("/Slot/s3/$booking-link", &body).await;
            assert_eq!(resp.status(), 200);
            let out: Value = resp.json().await.unwrap();
            let get =
                |name: &str| out["parameter"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap().clone();
            let link = reqwest::Url::parse(get("link")["valueUrl"].as_str().unwrap()).unwrap();
            let task = get("task")["valueReference"]["reference"].as_str().unwrap().to_string();
            let appointment = get("appointment")["valueReference"]["reference"].as_str().unwrap().to_string();
            (link, task, appointment)
        }
    };
    let (link, task, appointment) = handoff(who.clone()).await;
    // The portal's link, its own parameters kept, ours added.
    assert_eq!((link.host_str(), link.path()), (Some("portal.example"), "/book"));
    let params: Vec<(String, String)> = link.query_pairs().into_owned().collect();
    assert_eq!(&params[..2], &[("slot".into(), "s3".into()), ("lang".into(), "en".into())]);
    assert_eq!(params[2], ("source".into(), app.base.clone()));
    assert_eq!(params[3].0, "booking-referral");
    let state = params[3].1.clone();
    assert!(state.len() >= 32 && !state.contains("maria"), "opaque: {state}");
    let t: Value = app.get(&format!("/{task}")).await.json().await.unwrap();
    assert_eq!(
        (t["status"].as_str(), t["code"]["coding"][0]["code"].as_str()),
        (Some("requested"), Some("book-appointment"))
    );
    assert_eq!(t["for"]["reference"], "Patient/maria");
    assert_eq!(t["focus"]["reference"], appointment.as_str());
    assert!(!t.to_string().contains(&state), "the token is kept only as a digest");
    let a: Value = app.get(&format!("/{appointment}")).await.json().await.unwrap();
    assert_eq!(a["status"], "proposed");

    // Bad returns: OperationOutcomes, nothing changed.
    outcome(app.get("/$booking-return?outcome=booked").await, StatusCode::BAD_REQUEST).await;
    outcome(app.get(&format!("/$booking-return?state={state}&outcome=maybe")).await, StatusCode::BAD_REQUEST).await;
    outcome(app.get("/$booking-return?state=forged&outcome=booked").await, StatusCode::BAD_REQUEST).await;

    // Booked at the portal: Task completed, Appointment booked, busy time for both people, the
    // Slot's last place taken here.
    let back = app
        .get(&format!("/$booking-return?state={state}&outcome=booked&appointmentRef=PORTAL-77&bookingRef=B-1"))
        .await;
    assert_eq!(back.status(), 200);
    let done: Value = back.json().await.unwrap();
    assert_eq!((done["status"].as_str(), done["businessStatus"]["text"].as_str()), (Some("completed"), Some("booked")));
    let a: Value = app.get(&format!("/{appointment}")).await.json().await.unwrap();
    assert_eq!(a["status"], "booked");
    assert_eq!(a["identifier"][0]["value"], "PORTAL-77");
    assert!(a["participant"].as_array().unwrap().iter().all(|p| p["status"] == "accepted"));
    let s3: Value = app.get("/Slot/s3").await.json().await.unwrap();
    assert_eq!(s3["status"], "busy");
    let id = appointment.trim_start_matches("Appointment/");
    for n in 0..2 {
        let busy: Value = app.get(&format!("/Slot/{id}-p{n}")).await.json().await.unwrap();
        assert_eq!((busy["status"].as_str(), busy["start"].as_str()), (Some("busy"), a["start"].as_str()));
    }
    // The token is single-use.
    outcome(app.get(&format!("/$booking-return?state={state}&outcome=cancelled")).await, StatusCode::CONFLICT).await;
    // The Slot is full now: no new hand-off.
    outcome(app.post("/Slot/s3/$booking-link", &who).await, StatusCode::CONFLICT).await;

    // A failed attempt on another Slot: the Task fails, the Appointment is cancelled, and a
    // browser gets a page, not JSON.
    let mut s2: Value = app.get("/Slot/s2").await.json().await.unwrap();
    s2["extension"] = json!([{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link", "valueUrl": "https://portal.example/book?slot=s2"}]);
    assert_eq!(app.put("/Slot/s2", &s2, None).await.status(), 200);
    let resp = app.post("/Slot/s2/$booking-link", &who).await;
    let out: Value = resp.json().await.unwrap();
    let link = reqwest::Url::parse(out["parameter"][0]["valueUrl"].as_str().unwrap()).unwrap();
    let state = link.query_pairs().find(|(k, _)| k == "booking-referral").unwrap().1.to_string();
    let page = app
        .client
        .post(app.url("/$booking-return"))
        .header("Accept", "text/html")
        .form(&[("state", state.as_str()), ("outcome", "failed"), ("reason", "no insurance on file")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("did not go through"));
    let failed_task = out["parameter"][1]["valueReference"]["reference"].as_str().unwrap();
    let t: Value = app.get(&format!("/{failed_task}")).await.json().await.unwrap();
    assert_eq!((t["status"].as_str(), t["businessStatus"]["text"].as_str()), (Some("failed"), Some("failed")));
    let a: Value = app
        .get(&format!("/{}", out["parameter"][2]["valueReference"]["reference"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (a["status"].as_str(), a["cancelationReason"]["text"].as_str()),
        (Some("cancelled"), Some("no insurance on file"))
    );
    let s2: Value = app.get("/Slot/s2").await.json().await.unwrap();
    assert_eq!(s2["status"], "free", "nothing was taken");
    app.database.finish().await;
}

/// A server started with `--clock-start` has one clock: what it writes is stamped by it, date
/// searches read `ap` (approximately) against it, `$find` offers nothing before it, and the
/// CapabilityStatement is dated by it.
#[tokio::test]
async fn under_clock_start_searches_writes_and_find_read_the_same_clock() {
    let start = chrono::DateTime::parse_from_rfc3339("2016-12-07T12:00:00Z").unwrap().to_utc();
    let app = spawn_app_with(|s| s.clock_start = Some(start)).await;
    let schedule = json!({"resourceType": "Schedule", "id": "dr-okafor", "active": true,
        "actor": [{"reference": "Practitioner/okafor"}]});
    assert!(app.put("/Schedule/dr-okafor", &schedule, None).await.status().is_success());
    let slots = [
        ("december", "2016-12-07T14:00:00Z", "2016-12-07T14:30:00Z"),
        ("june", "2016-06-07T14:00:00Z", "2016-06-07T14:30:00Z"),
        ("morning", "2016-12-07T10:00:00Z", "2016-12-07T10:30:00Z"),
    ];
    for (id, start, end) in slots {
        let slot = json!({"resourceType": "Slot", "id": id, "schedule": {"reference": "Schedule/dr-okafor"},
            "status": "free", "start": start, "end": end});
        let resp = app.put(&format!("/Slot/{id}"), &slot, None).await;
        assert_eq!(resp.status(), 201, "{id}");
        let written: Value = resp.json().await.unwrap();
        assert!(written["meta"]["lastUpdated"].as_str().unwrap().starts_with("2016-12-07T12:"), "{written}");
    }
    // `ap` widens by a tenth of the distance to now (at least a day): on the server's clock the
    // June Slot is half a year from the December day; on the real clock ten years would widen it.
    let near = ids(&bundle(&app, "start=ap2016-12-07").await);
    assert_eq!(near, ["morning", "december"]);
    // Written at the server's now, found by it.
    assert_eq!(ids(&bundle(&app, "_lastUpdated=ap2016-12-07").await).len(), 3);
    // $find offers the day's times from the server's now on: not the morning one.
    let found = proposals(&app, "/Appointment/$find?start=2016-12-07&end=2016-12-07&duration=30").await;
    assert_eq!(starts(&found), ["14:00"]);
    let cs: Value = app.get("/metadata").await.json().await.unwrap();
    assert_eq!(cs["date"], "2016-12-07");
    app.database.finish().await;
}

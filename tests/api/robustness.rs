//! Requests that once crashed or stalled the server: each gets a clear 4xx OperationOutcome (or
//! its answer), and the server still answers afterwards.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// The server is still up and answering.
async fn still_answers(app: &TestApp) {
    assert_eq!(app.get("/metadata").await.status(), 200, "the server answers after it");
}

/// A search with thousands of repeated parameters, in the URL or a form body, is refused with a
/// 400 that names the bound: it overflowed the stack and aborted the whole process. (A URL of
/// 10,000 of them, over 100 KB, is refused by the HTTP layer before calsync reads it.)
#[tokio::test]
async fn thousands_of_repeated_search_parameters_are_refused_not_a_crash() {
    let app = spawn_app().await;
    for n in [101, 1_000, 5_000, 10_000] {
        let statuses = vec!["status=free"; n].join("&");
        if n <= 5_000 {
            let issue = outcome(app.get(&format!("/Slot?{statuses}")).await, StatusCode::BAD_REQUEST).await;
            assert!(issue["diagnostics"].as_str().unwrap().contains("at most 100"), "{issue}");
        }
        if n <= 1_000 {
            let nots: Vec<String> = (0..n).map(|i| format!("_id:not=x{i}")).collect();
            outcome(app.get(&format!("/Location?{}", nots.join("&"))).await, StatusCode::BAD_REQUEST).await;
        }
        let form = app
            .client
            .post(app.url("/Slot/_search"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(statuses.clone())
            .send()
            .await
            .unwrap();
        outcome(form, StatusCode::BAD_REQUEST).await;
    }
    // At the bound, a search runs.
    assert_eq!(app.get(&format!("/Slot?{}", vec!["status=free"; 100].join("&"))).await.status(), 200);
    let values: Vec<String> = (0..100).map(|i| format!("x{i}")).collect();
    assert_eq!(app.get(&format!("/Location?_id={}", values.join(","))).await.status(), 200);
    let too_many: Vec<String> = (0..101).map(|i| format!("x{i}")).collect();
    outcome(app.get(&format!("/Location?name={}", too_many.join(","))).await, StatusCode::BAD_REQUEST).await;
    still_answers(&app).await;
    app.database.finish().await;
}

/// A page of 500 Slots with the Appointments that name them answered 500 once it had 497 or
/// more matches.
#[tokio::test]
async fn a_full_page_with_its_revincludes_is_answered() {
    let app = spawn_app().await;
    let slots: Vec<Value> = (0..520)
        .map(|i| {
            let start = chrono::DateTime::parse_from_rfc3339("2027-01-04T00:00:00Z").unwrap().to_utc()
                + chrono::TimeDelta::minutes(30 * i);
            json!({"resourceType": "Slot", "id": format!("s{i}"), "schedule": {"reference": "Schedule/dr"},
                "status": "free", "start": start.to_rfc3339(), "end": (start + chrono::TimeDelta::minutes(30)).to_rfc3339()})
        })
        .collect();
    for s in &slots {
        let id = s["id"].as_str().unwrap();
        assert!(app.put(&format!("/Slot/{id}"), s, None).await.status().is_success());
    }
    let resp = app.get("/Slot?_count=500&_revinclude=Appointment:slot").await;
    assert_eq!(resp.status(), 200);
    let b: Value = resp.json().await.unwrap();
    assert_eq!(b["entry"].as_array().unwrap().len(), 500);
    still_answers(&app).await;
    app.database.finish().await;
}

/// Input that once panicked a handler (and dropped the connection): each is a 4xx now.
#[tokio::test]
async fn input_at_the_edges_is_a_clear_error_not_a_panic() {
    let app = spawn_app().await;
    for path in [
        "/Slot?_cursor=a%C3%A9a",
        "/Slot?_cursor=%C3%A9",
        "/Slot?start=%2B262143-12-31T23:59:59",
        "/Slot?start=-262143-01-01T00:00:00",
        "/Slot?_lastUpdated=ap%2B262143-12-31",
        "/Appointment/$find-mutual?start=%2B262143-12-20T00:00&end=%2B262143-12-21",
        "/Appointment/$find?start=2027-01-04&end=%2B262143-12-21",
    ] {
        let resp = app.get(path).await;
        assert!(resp.status().is_client_error(), "{path}: {}", resp.status());
        outcome(resp, StatusCode::BAD_REQUEST).await;
    }
    outcome(app.get("/$bulk-publish/slots-262144-W01.ndjson").await, StatusCode::NOT_FOUND).await;
    outcome(app.get("/$bulk-publish/slots-262143-W52.ndjson").await, StatusCode::NOT_FOUND).await;
    let task = json!({"resourceType": "Task", "status": "requested", "intent": "order",
        "authoredOn": "+262143-12-31T23:59:59Z"});
    let resp = app.post("/Task", &task).await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    still_answers(&app).await;
    app.database.finish().await;
}

/// `HEAD` on reads and searches answers as `GET` does, without a body (it answered 405).
#[tokio::test]
async fn head_answers_as_get_without_a_body() {
    let app = spawn_app().await;
    let created: Value = app.post("/Slot", &slot()).await.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    for path in
        [format!("/Slot/{id}"), format!("/Slot/{id}/_history/1"), "/Slot?status=free".into(), "/metadata".into()]
    {
        let resp = app.client.head(app.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/fhir+json"), "{path}");
        assert!(resp.bytes().await.unwrap().is_empty(), "{path}");
    }
    let missing = app.client.head(app.url("/Slot/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    app.database.finish().await;
}

/// Work a caller could multiply is bounded: a repeated `_include` or `_revinclude` is one,
/// `:contains` terms are counted, and a `_revinclude` past its bound says so in the Bundle.
#[tokio::test]
async fn work_a_caller_could_multiply_is_bounded_and_said() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    // 1,001 busy windows on Ana's Schedule, from one calendar upload.
    let mut ics = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n");
    let first = chrono::Utc::now().date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc() + chrono::TimeDelta::days(1);
    for k in 0..1_001 {
        let start = first + chrono::TimeDelta::hours(2 * k);
        let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        ics.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:{k}\r\nDTSTART:{}\r\nDTEND:{}\r\nEND:VEVENT\r\n",
            stamp(start),
            stamp(start + chrono::TimeDelta::hours(1))
        ));
    }
    ics.push_str("END:VCALENDAR\r\n");
    assert_eq!(import_ics(&app, "ana-busy", &ics).await.status(), 200);

    // Asked fifty times, the Slots are added once, and the Bundle says where it stopped.
    let repeated = vec!["_revinclude=Slot:schedule"; 50].join("&");
    let resp = app.get(&format!("/Schedule?_id=ana-busy&{repeated}")).await;
    assert_eq!(resp.status(), 200);
    let bundle: Value = resp.json().await.unwrap();
    let self_link = bundle["link"][0]["url"].as_str().unwrap();
    assert_eq!(self_link.matches("_revinclude").count(), 1, "{self_link}");
    let entries = bundle["entry"].as_array().unwrap();
    let mode = |m: &str| entries.iter().filter(|e| e["search"]["mode"] == m).count();
    assert_eq!((mode("match"), mode("include"), mode("outcome")), (1, 1_000, 1));
    let warning = &entries.last().unwrap()["resource"];
    assert_eq!(warning["resourceType"], "OperationOutcome");
    assert_eq!(warning["issue"][0]["severity"], "warning");
    let said = warning["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(said.contains("_revinclude=Slot:schedule stopped at 1000"), "{said}");

    let included =
        app.get(&format!("/Slot?schedule=ana-busy&_count=5&{}", vec!["_include=Slot:schedule"; 30].join("&"))).await;
    let bundle: Value = included.json().await.unwrap();
    assert_eq!(bundle["link"][0]["url"].as_str().unwrap().matches("_include").count(), 1);
    assert_eq!(bundle["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "include").count(), 1);

    // Ten :contains terms are a search; eleven are refused, saying the bound.
    let contains = |n: usize| (0..n).map(|k| format!("name:contains=r{k}")).collect::<Vec<_>>().join("&");
    assert_eq!(app.get(&format!("/Location?{}", contains(10))).await.status(), 200);
    let issue = outcome(app.get(&format!("/Location?{}", contains(11))).await, StatusCode::BAD_REQUEST).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("at most 10"), "{issue}");
    let issue = outcome(app.get("/Location?name:contains=a,b,c,d,e,f,g,h,i,j,k").await, StatusCode::BAD_REQUEST).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains(":contains"), "{issue}");
    still_answers(&app).await;
    app.database.finish().await;
}

/// Ids no resource can have are unknown ones, on every route: PostgreSQL refuses a NUL in any
/// text, and `/publishers/a%00b/$poll` was a 500 there (found by the random requests).
#[tokio::test]
async fn ids_no_resource_can_have_are_not_found_on_every_database() {
    let app = spawn_app_with(|s| s.secret_key = Some("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".into())).await;
    for path in ["/publishers/a%00b", "/connections/a%00b", "/Slot/a%00b", "/Appointment/a%00b/$ics"] {
        outcome(app.get(path).await, StatusCode::NOT_FOUND).await;
    }
    for path in ["/publishers/a%00b/$poll", "/connections/a%00b/$sync", "/Appointment/a%00b/$cancel"] {
        let resp = app.post(path, &json!({})).await;
        let status = resp.status();
        assert!(status == 404 || status == 400, "{path}: {status}");
        outcome(resp, status).await;
    }
    still_answers(&app).await;
    app.database.finish().await;
}

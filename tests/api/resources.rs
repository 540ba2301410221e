//! The REST interactions: the CapabilityStatement, create, read, vread, update with `If-Match`,
//! delete, and the statuses and OperationOutcomes of bad requests.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

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
    // XML is served (tests/api/xml.rs); a format that is neither is a 406.
    outcome(
        c.get(app.url("/metadata")).header("Accept", "text/html").send().await.unwrap(),
        StatusCode::NOT_ACCEPTABLE,
    )
    .await;
    outcome(app.get("/metadata?_format=html").await, StatusCode::NOT_ACCEPTABLE).await;
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

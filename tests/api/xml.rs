//! FHIR XML: asked for with `Accept` or `_format`, every FHIR answer (reads, searches,
//! operations, errors) comes as XML, and a write takes an XML body. What JSON says, XML says.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

const XML: &str = "application/fhir+xml";

/// The answer to `path` in XML: status, content type and text.
async fn get_xml(app: &TestApp, path: &str) -> (StatusCode, String, String) {
    let resp = app.client.get(app.url(path)).header("Accept", XML).send().await.unwrap();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (resp.status(), ct, resp.text().await.unwrap())
}

/// POSTs an XML `body` to `path`, asking for the answer as `accept`.
async fn post_xml(app: &TestApp, path: &str, body: String, accept: &str) -> reqwest::Response {
    let request = app.client.post(app.url(path)).header("Content-Type", XML).header("Accept", accept);
    request.body(body).send().await.unwrap()
}

/// The JSON of an XML answer, as the server's own reader makes it.
fn as_json(xml: &str) -> Value {
    serde_json::from_str(&calsync_fhir::xml::to_json(xml).unwrap_or_else(|e| panic!("{e}: {xml}"))).unwrap()
}

#[tokio::test]
async fn reads_searches_operations_and_errors_answer_in_xml() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let d = day().0;
    for path in [
        "/metadata".to_string(),
        "/Slot/s0".into(),
        "/Slot/s0/_history/1".into(),
        "/Slot?schedule=dr-okafor&_include=Slot:schedule&_count=2".into(),
        "/OperationDefinition/appointment-book".into(),
        format!("/Appointment/$find?start={d}&end={d}&practitioner=Practitioner/okafor"),
        find_path(),
    ] {
        let (status, ct, text) = get_xml(&app, &path).await;
        assert_eq!(status, 200, "{path}: {text}");
        assert!(ct.starts_with(XML), "{path}: {ct}");
        assert!(text.contains("xmlns=\"http://hl7.org/fhir\""), "{path}: {text}");
        // The same answer as JSON.
        let json: Value = app.get(&path).await.json().await.unwrap();
        let from_xml = as_json(&text);
        if path.starts_with("/Appointment/$find") {
            assert_eq!(from_xml["entry"].as_array().map(Vec::len), json["entry"].as_array().map(Vec::len), "{path}");
        } else {
            assert_eq!(from_xml, json, "{path}");
        }
    }
    // `_format=xml` as well as Accept; JSON stays the default.
    let resp = app.get("/Slot/s0?_format=xml").await;
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with(XML));
    let resp = app.get("/Slot/s0").await;
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("application/fhir+json"));
    // Errors are OperationOutcomes in XML.
    for (path, status) in [("/Slot/nope", 404), ("/Dinosaur/1", 404), ("/Slot?start=tomorrow", 400)] {
        let (got, ct, text) = get_xml(&app, path).await;
        assert_eq!(got, status, "{path}: {text}");
        assert!(ct.starts_with(XML), "{path}: {ct}");
        assert_eq!(as_json(&text)["resourceType"], "OperationOutcome", "{path}: {text}");
    }
    app.database.finish().await;
}

#[tokio::test]
async fn writes_take_xml_bodies() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let d = day().0;
    let slot = format!(
        r#"<Slot xmlns="http://hl7.org/fhir"><schedule><reference value="Schedule/dr-okafor"/></schedule><status value="free"/><start value="{d}T17:00:00Z"/><end value="{d}T17:30:00Z"/></Slot>"#
    );
    let created = post_xml(&app, "/Slot", slot, XML).await;
    assert_eq!(created.status(), 201);
    let location = created.headers()["location"].to_str().unwrap().to_string();
    let stored = as_json(&created.text().await.unwrap());
    assert_eq!(
        (stored["status"].as_str(), stored["start"].as_str()),
        (Some("free"), Some(format!("{d}T17:00:00Z").as_str()))
    );
    let id = stored["id"].as_str().unwrap();
    assert!(location.contains(id), "{location}");
    // The JSON read shows what the XML wrote.
    let read: Value = app.get(&format!("/Slot/{id}")).await.json().await.unwrap();
    assert_eq!(read["schedule"]["reference"], "Schedule/dr-okafor");
    // An operation's Parameters in XML: $find-mutual.
    let parameters = format!(
        r#"<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="start"/><valueDate value="{d}"/></parameter><parameter><name value="end"/><valueDate value="{d}"/></parameter><parameter><name value="participant"/><valueReference><reference value="Patient/maria"/></valueReference></parameter></Parameters>"#
    );
    let found = app
        .client
        .post(app.url("/Appointment/$find-mutual"))
        .header("Content-Type", XML)
        .body(parameters)
        .send()
        .await
        .unwrap();
    assert_eq!(found.status(), 200);
    let found: Value = found.json().await.unwrap();
    assert_eq!(found["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "match").count(), 5);
    // XML that is not FHIR is a 400 OperationOutcome, in the format asked for.
    for (body, accept) in
        [("<Slot><status", XML), ("<Dinosaur xmlns=\"http://hl7.org/fhir\"/>", "application/fhir+json")]
    {
        let resp = post_xml(&app, "/Slot", body.to_string(), accept).await;
        assert_eq!(resp.status(), 400, "{body}");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(accept), "{ct}");
        let text = resp.text().await.unwrap();
        let outcome = if accept == XML { as_json(&text) } else { serde_json::from_str(&text).unwrap() };
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{text}");
    }
    let huge =
        format!("<Patient xmlns=\"http://hl7.org/fhir\"><id value=\"{}\"/></Patient>", "x".repeat(2 * 1024 * 1024));
    let resp = app.client.post(app.url("/Patient")).header("Content-Type", XML).body(huge).send().await.unwrap();
    let issue = outcome(resp, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("1048576"), "{issue}");
    let _ = json!({});
    app.database.finish().await;
}

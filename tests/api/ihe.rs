//! IHE ITI Scheduling's names and answers: `$find` options taken back by reference by `$hold`
//! and `$book`, `appointment-resource`, `patient-resource` and `comment`, and the searchset
//! Bundles the IG answers with. calsync's own names keep their answers (the other modules).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// The IHE `$find` of the test day at Dr Okafor's, as a Parameters body.
fn find_parameters() -> Value {
    let d = day().0;
    json!({"resourceType": "Parameters", "parameter": [
        {"name": "start", "valueDate": d}, {"name": "end", "valueDate": d},
        {"name": "practitioner", "valueReference": {"reference": "Practitioner/okafor"}},
        {"name": "patient-reference", "valueReference": {"reference": "Patient/maria"}},
        {"name": "reason", "valueString": "http://snomed.info/sct|25064002"},
        {"name": "patient-resource", "resource": {"resourceType": "Patient", "name": [{"family": "Silva"}]}}]})
}

/// The Appointment of a one-entry IHE Bundle.
fn single(bundle: &Value) -> Value {
    assert_eq!(
        (bundle["resourceType"].as_str(), bundle["type"].as_str(), bundle["total"].as_u64()),
        (Some("Bundle"), Some("searchset"), Some(1)),
        "{bundle}"
    );
    bundle["entry"][0]["resource"].clone()
}

async fn call(app: &TestApp, operation: &str, parameters: Value) -> (StatusCode, Value) {
    let resp = post_parameters(
        app,
        &format!("/Appointment/{operation}"),
        json!({"resourceType": "Parameters", "parameter": parameters}),
        None,
    )
    .await;
    (resp.status(), resp.json().await.unwrap())
}

/// `operation` with `appointment-reference` alone.
async fn by_reference(app: &TestApp, operation: &str, reference: &str) -> (StatusCode, Value) {
    call(app, operation, json!([{"name": "appointment-reference", "valueReference": {"reference": reference}}])).await
}

#[tokio::test]
async fn find_hold_and_book_by_reference_as_the_ig_does() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let found: Value = post_parameters(&app, "/Appointment/$find", find_parameters(), None).await.json().await.unwrap();
    let options = matches(&found);
    assert_eq!(options.len(), 4, "{found}");
    let ids: Vec<&str> = options.iter().map(|o| o["id"].as_str().expect("each option has an id")).collect();
    // Every page of $find says how many options there are (the IG's Bundle has a total).
    let mut first_page = find_parameters();
    first_page["parameter"].as_array_mut().unwrap().push(json!({"name": "_count", "valueInteger": 2}));
    let page: Value = post_parameters(&app, "/Appointment/$find", first_page, None).await.json().await.unwrap();
    assert_eq!((matches(&page).len(), page["total"].as_u64()), (2, Some(4)), "{page}");
    assert!(page["link"].as_array().unwrap().iter().any(|l| l["relation"] == "next"), "{page}");
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 4);

    // $hold by reference: a Bundle of the pending Appointment, and the time leaves $find.
    let (status, held) = by_reference(&app, "$hold", &format!("Appointment/{}", ids[0])).await;
    assert_eq!(status, StatusCode::OK, "{held}");
    let held = single(&held);
    assert_eq!(held["status"], "pending");
    let again: Value = post_parameters(&app, "/Appointment/$find", find_parameters(), None).await.json().await.unwrap();
    assert_eq!(matches(&again).len(), 3);

    // $book the held one by reference, with a comment: a Bundle of the booked Appointment.
    let (status, booked) = call(&app, "$book", json!([
        {"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{}", held["id"].as_str().unwrap())}},
        {"name": "comment", "valueString": "wheelchair access, please"}])).await;
    assert_eq!(status, StatusCode::OK, "{booked}");
    let booked = single(&booked);
    assert_eq!((booked["status"].as_str(), booked["id"].as_str()), (Some("booked"), held["id"].as_str()));
    assert_eq!(booked["comment"], "wheelchair access, please");

    // An option booked by reference straight away, without a hold; the urn:uuid form too.
    let (status, direct) = by_reference(&app, "$book", &format!("urn:uuid:{}", ids[1])).await;
    assert_eq!(status, StatusCode::OK, "{direct}");
    assert_eq!(single(&direct)["status"], "booked");
    let stored: Value = app.get("/Appointment?status=booked").await.json().await.unwrap();
    assert_eq!(stored["total"], 2);

    // A held Appointment sent back whole (appointment-resource, status pending) is that hold booked.
    let (_, held) = by_reference(&app, "$hold", &format!("Appointment/{}", ids[2])).await;
    let held = single(&held);
    let (status, booked) = call(&app, "$book", json!([{"name": "appointment-resource", "resource": held}])).await;
    assert_eq!(status, StatusCode::OK, "{booked}");
    assert_eq!(
        (single(&booked)["status"].as_str(), single(&booked)["id"].as_str()),
        (Some("booked"), held["id"].as_str())
    );

    // An option already taken, or never offered: an OperationOutcome.
    let (status, _) = call(
        &app,
        "$hold",
        json!([{"name": "appointment-reference", "valueReference": {"reference": format!("Appointment/{}", ids[1])}}]),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let resp = post_parameters(&app, "/Appointment/$hold", json!({"resourceType": "Parameters", "parameter": [{"name": "appointment-reference", "valueReference": {"reference": "Appointment/nothing-like-it"}}]}), None).await;
    let issue = outcome(resp, StatusCode::NOT_FOUND).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("option $find offered"), "{issue}");
    app.database.finish().await;
}

#[tokio::test]
async fn book_takes_the_appointment_resource_and_cancels_with_it() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    let offer = proposals(&app, &find_path()).await[0].clone();
    // The IG's new booking: appointment-resource with status pending, and patient-resource.
    let mut pending = offer.clone();
    pending["status"] = json!("pending");
    let maria = json!({"resourceType": "Patient", "id": "maria", "name": [{"family": "Silva"}]});
    let (status, booked) = call(
        &app,
        "$book",
        json!([{"name": "appointment-resource", "resource": pending}, {"name": "patient-resource", "resource": maria}]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{booked}");
    let booked = single(&booked);
    assert_eq!(booked["status"], "booked");
    // A patient-resource that is not a Patient is refused, naming the element.
    let (status, refused) = call(&app, "$book", json!([{"name": "appointment-resource", "resource": offer}, {"name": "patient-resource", "resource": {"resourceType": "Patient", "name": []}}])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    // Moving a booking is refused with the way to do it; cancelling takes the resource.
    let mut moved = booked.clone();
    moved["start"] = json!("2031-01-01T09:00:00Z");
    let (status, refused) = call(&app, "$book", json!([{"name": "appointment-resource", "resource": moved}])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("cancel it"), "{refused}");
    let mut cancelled = booked.clone();
    cancelled["status"] = json!("cancelled");
    let (status, answer) = call(&app, "$book", json!([{"name": "appointment-resource", "resource": cancelled}])).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(single(&answer)["status"], "cancelled");
    let stored: Value =
        app.get(&format!("/Appointment/{}", booked["id"].as_str().unwrap())).await.json().await.unwrap();
    assert_eq!(stored["status"], "cancelled");
    // calsync's own names keep their answer: the Appointment itself.
    let (status, plain) = call(&app, "$book", json!([{"name": "appointment", "resource": offer}])).await;
    assert_eq!((status, plain["resourceType"].as_str()), (StatusCode::OK, Some("Appointment")), "{plain}");
    app.database.finish().await;
}

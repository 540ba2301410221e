//! Finding times: `$find` and `$find-mutual` over a clinic and its participants, why nothing
//! fits, alternatives, narrowing by organization and place, and the one clock.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

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
    // IHE's `practitioner` names a Practitioner: their roles' Schedules count too.
    let role = json!({"resourceType": "PractitionerRole", "id": "lee-at-hillside", "active": true,
        "practitioner": {"reference": "Practitioner/lee"}, "location": [{"reference": "Location/hillside"}]});
    assert!(app.put("/PractitionerRole/lee-at-hillside", &role, None).await.status().is_success());
    let by_role = json!({"resourceType": "Schedule", "id": "lee", "active": true,
        "actor": [{"reference": "PractitionerRole/lee-at-hillside"}]});
    assert!(app.put("/Schedule/lee", &by_role, None).await.status().is_success());
    let slot = json!({"resourceType": "Slot", "id": "l0", "schedule": {"reference": "Schedule/lee"}, "status": "free",
        "start": format!("{d}T17:00:00Z"), "end": format!("{d}T17:30:00Z")});
    assert!(app.put("/Slot/l0", &slot, None).await.status().is_success());
    assert_eq!(slots_of("practitioner=Practitioner/lee").await, vec!["Slot/l0"]);
    assert_eq!(slots_of("practitioner=PractitionerRole/lee-at-hillside").await, vec!["Slot/l0"]);
    assert_eq!(slots_of("practitioner=Practitioner/okafor").await.len(), 4, "named as a Practitioner directly");
    assert!(slots_of("practitioner=Practitioner/nobody").await.is_empty());
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

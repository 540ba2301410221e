//! SMART Scheduling Links: the published feed, ingesting another instance's feed, booking
//! through a publisher's portal, and the addresses given from outside.

use chrono::Datelike;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

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
    // B polls by hand three times within a second: at test speed, not the production minute.
    let b = spawn_app_with(|s| s.publishers.min_poll_seconds = 0).await;

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

#[tokio::test]
async fn a_publisher_is_polled_by_hand_at_most_once_a_minute() {
    let a = spawn_app().await;
    load_published_clinic(&a).await;
    let b = spawn_app().await;
    let created: Value =
        b.post("/publishers", &json!({"manifest": a.url("/$bulk-publish")})).await.json().await.unwrap();
    let poll = format!("/publishers/{}/$poll", created["id"].as_str().unwrap());
    let polled: Value = b.post(&poll, &json!({})).await.json().await.unwrap();
    assert_eq!((polled["state"].as_str(), polled["polls"].as_u64()), (Some("ok"), Some(1)), "{polled}");
    // Asked again at once, and ten times at the same moment: 429 with Retry-After, and the
    // publisher is not fetched again.
    let again = b.post(&poll, &json!({})).await;
    let wait: u64 = again.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let issue = outcome(again, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(issue["code"], "throttled");
    assert!(issue["diagnostics"].as_str().unwrap().contains("at most once every 60 s"), "{issue}");
    let burst: Vec<_> = (0..10)
        .map(|_| {
            tokio::spawn(b.client.post(b.url(&poll)).header("Content-Type", "application/fhir+json").body("{}").send())
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap().unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let status: Value = b.get(poll.trim_end_matches("/$poll")).await.json().await.unwrap();
    assert_eq!(status["polls"], 1, "{status}");
    a.database.finish().await;
    b.database.finish().await;
}

/// How many Slots an instance holds (its own and ingested), from a search.
async fn slot_total(app: &TestApp) -> u64 {
    let b: Value = app.get("/Slot?_summary=count").await.json().await.unwrap();
    b["total"].as_u64().unwrap()
}

/// Availability an instance already has never comes back as a second copy: its own feed
/// registered as a publisher is refused, and two instances ingesting each other each keep one
/// copy of the other's availability however often they poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_never_comes_back_as_a_second_copy() {
    let a = spawn_app_with(|s| s.publishers.min_poll_seconds = 0).await;
    load_published_clinic(&a).await;
    let own = slot_total(&a).await;
    // Its own feed: refused, nothing stored.
    let created: Value =
        a.post("/publishers", &json!({"manifest": a.url("/$bulk-publish")})).await.json().await.unwrap();
    let self_poll = format!("/publishers/{}/$poll", created["id"].as_str().unwrap());
    for _ in 0..3 {
        let polled: Value = a.post(&self_poll, &json!({})).await.json().await.unwrap();
        assert_eq!(polled["state"], "error", "{polled:#}");
        assert!(polled["reason"].as_str().unwrap().contains("this server's own feed"), "{polled:#}");
    }
    assert_eq!(slot_total(&a).await, own);
    // The manifest names the installation, the origin of what it holds first-hand.
    let origin_of = |manifest: Value| {
        manifest["extension"]["https://calsync.example.org/fhir/StructureDefinition/origin"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let a_instance = origin_of(a.get("/$bulk-publish").await.json().await.unwrap());
    assert!(a_instance.starts_with("urn:uuid:"), "{a_instance}");

    // B publishes a clinic of its own; A and B ingest each other, three rounds.
    let b = spawn_app_with(|s| s.publishers.min_poll_seconds = 0).await;
    load_published_clinic(&b).await;
    let a_reads: Value =
        a.post("/publishers", &json!({"manifest": b.url("/$bulk-publish")})).await.json().await.unwrap();
    let b_reads: Value =
        b.post("/publishers", &json!({"manifest": a.url("/$bulk-publish")})).await.json().await.unwrap();
    let (a_poll, b_poll) = (
        format!("/publishers/{}/$poll", a_reads["id"].as_str().unwrap()),
        format!("/publishers/{}/$poll", b_reads["id"].as_str().unwrap()),
    );
    let (mut totals, mut came_back) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        for (app, poll) in [(&a, &a_poll), (&b, &b_poll)] {
            let polled: Value = app.post(poll, &json!({})).await.json().await.unwrap();
            assert_eq!(polled["state"], "ok", "{polled:#}");
            came_back.push(polled["report"]["types"]["Slot"]["already"].as_u64().unwrap_or(0));
        }
        totals.push((slot_total(&a).await, slot_total(&b).await));
    }
    // Each holds its own Slots and one copy of the other's, from the first round on.
    assert_eq!(totals, vec![(2 * own, 2 * own); 3]);
    // What came back was counted, not stored: B found its own Slots in A's feed in the first
    // round, A its own in B's in the second; then nothing changed.
    assert_eq!(came_back, [0, own, own, 0, 0, 0]);
    // B publishes what it ingested from A naming A as its origin; its own Slots name none (its
    // manifest names B).
    let b_instance = origin_of(b.get("/$bulk-publish").await.json().await.unwrap());
    assert_ne!(a_instance, b_instance);
    let origin = |r: &Value| {
        r["meta"]["extension"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["url"] == "https://calsync.example.org/fhir/StructureDefinition/origin")
            .map(|e| e["valueUri"].as_str().unwrap().to_string())
    };
    for (t, resources) in [("Slot", published(&b, "Slot").await), ("Location", published(&b, "Location").await)] {
        for (id, r) in resources {
            let expected = id.contains('.').then(|| a_instance.clone());
            assert_eq!(origin(&r), expected, "{t}/{id}: {r}");
        }
    }
    for app in [a, b] {
        app.database.finish().await;
    }
}

/// A static SMART Scheduling Links publisher (not a calsync): the files of `tests/fixtures/ssl-v1`,
/// the manifest's URLs pointed at it. Its manifest's address.
fn serve_static_feed() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ssl-v1");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let served = base.clone();
    let server = actix_web::HttpServer::new(move || {
        let (dir, base) = (dir.clone(), served.clone());
        actix_web::App::new().default_service(actix_web::web::to(move |req: actix_web::HttpRequest| {
            let (dir, base) = (dir.clone(), base.clone());
            async move {
                let name = req.path().trim_start_matches('/').to_string();
                let Ok(mut body) = std::fs::read_to_string(dir.join(&name)) else {
                    return actix_web::HttpResponse::NotFound().finish();
                };
                if name == "$bulk-publish" {
                    let mut m: Value = serde_json::from_str(&body).unwrap();
                    for o in m["output"].as_array_mut().unwrap() {
                        let file = o["url"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
                        o["url"] = json!(format!("{base}/{file}"));
                    }
                    body = m.to_string();
                }
                actix_web::HttpResponse::Ok().content_type("application/fhir+ndjson").body(body)
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    format!("{base}/$bulk-publish")
}

/// Registers the publisher at `manifest` on `app`; its id.
async fn register_publisher(app: &TestApp, manifest: String) -> String {
    let created: Value = app.post("/publishers", &json!({"manifest": manifest})).await.json().await.unwrap();
    created["id"].as_str().unwrap().to_string()
}

/// Polls publisher `id` on `app` now; its status.
async fn poll_publisher(app: &TestApp, id: String) -> Value {
    app.post(&format!("/publishers/{id}/$poll"), &json!({})).await.json().await.unwrap()
}

/// The same availability reached two ways is stored once: A reads a publisher P directly and
/// reads B, which reads P too and publishes P's Slots again. Whether P is a calsync (its
/// installation names the origin) or a plain static feed (its manifest does), A keeps P's Slots
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_reached_two_ways_is_stored_once() {
    let calsync_p = spawn_app().await;
    load_published_clinic(&calsync_p).await;
    for p_manifest in [calsync_p.url("/$bulk-publish"), serve_static_feed()] {
        let a = spawn_app_with(|s| s.publishers.min_poll_seconds = 0).await;
        let b = spawn_app_with(|s| s.publishers.min_poll_seconds = 0).await;
        // B reads P; A reads P and B.
        let b_reads_p = register_publisher(&b, p_manifest.clone()).await;
        assert_eq!(poll_publisher(&b, b_reads_p).await["state"], "ok");
        let a_reads_p = register_publisher(&a, p_manifest.clone()).await;
        assert_eq!(poll_publisher(&a, a_reads_p).await["state"], "ok");
        let direct = slot_total(&a).await;
        assert!(direct > 0);
        let a_reads_b = register_publisher(&a, b.url("/$bulk-publish")).await;
        let polled = poll_publisher(&a, a_reads_b).await;
        assert_eq!(polled["state"], "ok", "{polled:#}");
        // Every line of B's feed is P's (B has nothing of its own): each counted, none stored.
        // (B publishes Slots from this week on: the static feed's, from 2021, are not among them.)
        let types = polled["report"]["types"].as_object().unwrap();
        assert!(types.contains_key("Location"), "{polled:#}");
        for (t, count) in types {
            assert_eq!(count["already"], count["lines"], "{p_manifest} {t}: {polled:#}");
            assert_eq!(count["created"], 0, "{p_manifest} {t}: {polled:#}");
        }
        assert_eq!(slot_total(&a).await, direct, "{p_manifest}: P's Slots once");
        for app in [a, b] {
            app.database.finish().await;
        }
    }
    calsync_p.database.finish().await;
}

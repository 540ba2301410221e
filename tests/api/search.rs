//! FHIR search: parameters, modifiers and prefixes, paging, `_include` and `_revinclude`,
//! `_elements`, `_summary`, conditional create, and what is refused.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

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

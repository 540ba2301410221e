//! The zone a client names sets the days of the window and the times shown, across DST changes
//! west and east of UTC and past the date line; a window that is over says so; options page.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::*;

/// A server whose clock reads 2026-12-01, with one hourly Slot on Schedule/dr for every hour
/// of the days around each date of `days` (from two days before to two days after).
async fn clinic_with_hourly_slots(days: &[&str]) -> TestApp {
    let start = chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z").unwrap().to_utc();
    let app = spawn_app_with(|s| s.clock_start = Some(start)).await;
    let schedule = json!({"resourceType": "Schedule", "id": "dr", "active": true,
        "actor": [{"reference": "Practitioner/okafor"}]});
    assert!(app.put("/Schedule/dr", &schedule, None).await.status().is_success());
    for day in days {
        let midnight =
            chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        for h in -48..72 {
            let from = midnight + chrono::TimeDelta::hours(h);
            let id = format!("h{}", from.timestamp() / 3600);
            let slot = json!({"resourceType": "Slot", "id": id, "schedule": {"reference": "Schedule/dr"}, "status": "free",
                "start": from.to_rfc3339(), "end": (from + chrono::TimeDelta::hours(1)).to_rfc3339()});
            assert!(app.put(&format!("/Slot/{id}"), &slot, None).await.status().is_success());
        }
    }
    app
}

/// The starts of the options of an answer, as the answer writes them.
async fn option_starts(app: &TestApp, path: &str) -> (Vec<String>, Value) {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    let b: Value = resp.json().await.unwrap();
    let starts = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["start"].as_str().unwrap().to_string())
        .collect();
    (starts, b)
}

/// A date is a day in the zone named: 23 hours on a spring-forward day, 25 on a fall-back one,
/// west and east of UTC, and a day that begins 14 hours ahead of UTC; every time is shown with
/// the zone's offset at that moment. Without a zone, days are UTC days, shown in UTC.
#[tokio::test]
async fn the_zone_named_sets_the_days_and_the_times_shown() {
    let app = clinic_with_hourly_slots(&["2027-03-14", "2027-11-07", "2027-03-28", "2027-10-31"]).await;
    let find = |day: &str, zone: Option<&str>| {
        let zone = zone.map(|z| format!("&timezone={z}")).unwrap_or_default();
        format!("/Appointment/$find?start={day}&end={day}&duration=60&schedule=dr&_count=100{zone}")
    };
    let cases = [
        ("2027-03-14", "America/New_York", 23, "2027-03-14T00:00:00-05:00", "2027-03-14T23:00:00-04:00"),
        ("2027-11-07", "America/New_York", 25, "2027-11-07T00:00:00-04:00", "2027-11-07T23:00:00-05:00"),
        ("2027-03-28", "Europe/Berlin", 23, "2027-03-28T00:00:00+01:00", "2027-03-28T23:00:00+02:00"),
        ("2027-10-31", "Europe/Berlin", 25, "2027-10-31T00:00:00+02:00", "2027-10-31T23:00:00+01:00"),
        ("2027-03-14", "Pacific/Kiritimati", 24, "2027-03-14T00:00:00+14:00", "2027-03-14T23:00:00+14:00"),
    ];
    for (day, zone, hours, first, last) in cases {
        let (starts, _) = option_starts(&app, &find(day, Some(zone))).await;
        assert_eq!(starts.len(), hours, "{day} in {zone}: {starts:?}");
        assert_eq!((starts[0].as_str(), starts[hours - 1].as_str()), (first, last), "{day} in {zone}");
    }
    let (utc, _) = option_starts(&app, &find("2027-03-14", None)).await;
    assert_eq!((utc.len(), utc[0].as_str(), utc[23].as_str()), (24, "2027-03-14T00:00:00Z", "2027-03-14T23:00:00Z"));
    // $find-mutual: the days of the first participant's zone, unless a zone is named.
    let patient = json!({"resourceType": "Patient", "id": "maria"});
    assert!(app.put("/Patient/maria", &patient, None).await.status().is_success());
    let derived = json!({"resourceType": "Schedule", "id": "maria-busy", "active": true,
        "actor": [{"reference": "Patient/maria"}],
        "extension": [{"url": "https://calsync.example.org/fhir/StructureDefinition/participant-availability",
            "extension": [{"url": "timezone", "valueCode": "America/Los_Angeles"}]}]});
    assert!(app.put("/Schedule/maria-busy", &derived, None).await.status().is_success());
    let mutual = "/Appointment/$find-mutual?start=2027-03-14&end=2027-03-14&duration=60&schedule=dr&_count=100&participant=Patient/maria";
    let (la, _) = option_starts(&app, mutual).await;
    assert_eq!((la.len(), la[0].as_str()), (23, "2027-03-14T08:00:00Z"), "the day in Los Angeles, shown in UTC");
    let (named, _) = option_starts(&app, &format!("{mutual}&timezone=Asia/Tokyo")).await;
    assert_eq!((named.len(), named[0].as_str()), (24, "2027-03-14T00:00:00+09:00"));
    app.database.finish().await;
}

/// A window that is over says so, and from when times can be offered.
#[tokio::test]
async fn a_window_in_the_past_says_it_is_over() {
    let app = clinic_with_hourly_slots(&["2026-11-20"]).await;
    let (starts, b) =
        option_starts(&app, "/Appointment/$find?start=2026-11-20&end=2026-11-21&duration=60&schedule=dr").await;
    assert!(starts.is_empty());
    let why = b["entry"].as_array().unwrap().iter().find(|e| e["search"]["mode"] == "outcome").unwrap();
    let text = why["resource"]["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(text.contains("the window is over: times can be offered from 2026-12-01T12:"), "{text}");
    app.database.finish().await;
}

/// Options come a page at a time: with `$find-mutual`, `total` only on the page that ends them
/// (`$find`, IHE's, counts them on every page: tests/api/ihe.rs), a `next` link on the others,
/// every option once and in order; and the bounds of a search are 400s.
#[tokio::test]
async fn options_page_with_next_links_and_a_total_at_the_end() {
    let app = clinic_with_hourly_slots(&["2027-03-14"]).await;
    let mut path =
        "/Appointment/$find-mutual?start=2027-03-14&end=2027-03-14&duration=60&schedule=dr&_count=10".to_string();
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        let (starts, b) = option_starts(&app, &path).await;
        pages += 1;
        all.extend(starts);
        let next = b["link"].as_array().unwrap().iter().find(|l| l["relation"] == "next");
        match next {
            Some(next) => {
                assert!(b.get("total").is_none(), "no total while there are more: {b}");
                path = next["url"].as_str().unwrap().strip_prefix(&app.base).unwrap().to_string();
            }
            None => {
                assert_eq!(b["total"], 24);
                break;
            }
        }
    }
    assert_eq!((pages, all.len()), (3, 24));
    let mut sorted = all.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, all, "each option once, in order");
    let people: Vec<String> = (0..21).map(|i| format!("participant=Patient/p{i}")).collect();
    let issue = outcome(
        app.get(&format!("/Appointment/$find-mutual?start=2027-03-14&end=2027-03-14&{}", people.join("&"))).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("at most 20 participants"), "{issue}");
    outcome(
        app.get("/Appointment/$find?start=2027-03-14&end=2027-03-14&_offset=495&_count=10").await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    app.database.finish().await;
}

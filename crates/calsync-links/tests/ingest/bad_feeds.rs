//! Feeds that are wrong: repaired where clear, every bad line reported, lines and manifests too
//! long to hold, and manifests that point where calsync must not go.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use calsync_connect::egress::Egress;
use calsync_links::{Options, Report, poll, register};
use calsync_store::testing::TestDatabase;
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn a_messy_feed_is_repaired_where_clear_and_every_bad_line_is_reported_with_file_and_line() {
    let (db, store) = fresh().await;
    let feed = serve(fixtures("ssl-messy")).await;
    let options = Options { zone: None, local_times: true };
    let p = register(&store, &format!("{}/$bulk-publish", feed.base), options, now()).await.unwrap();
    let (p, report) = poll_once(&store, &p.id, now()).await;
    assert_eq!(p.state, "partial", "{report:#?}");
    let bad: Vec<(String, u64)> = report
        .problems
        .iter()
        .filter(|x| x.kind == "bad")
        .map(|x| (x.file.rsplit('/').next().unwrap().to_string(), x.line))
        .collect();
    let want: Vec<(String, u64)> = [
        ("locations.ndjson", 3),
        ("schedules.ndjson", 3),
        ("slots.ndjson", 4),
        ("slots.ndjson", 5),
        ("slots.ndjson", 7),
        ("slots.ndjson", 9),
        ("slots.ndjson", 10),
    ]
    .iter()
    .map(|(f, l)| (f.to_string(), *l))
    .collect();
    assert_eq!(bad, want, "{report:#?}");
    assert_eq!(report.bad_lines, 7);
    let counts: Vec<(u64, u64, u64)> = ["Location", "Schedule", "Slot"]
        .iter()
        .map(|t| (report.types[*t].lines, report.types[*t].bad, report.types[*t].created))
        .collect();
    assert_eq!(counts, vec![(3, 1, 2), (3, 1, 2), (9, 5, 4)]);
    let manifest_problems: Vec<&str> =
        report.problems.iter().filter(|x| x.kind == "manifest").map(|x| x.message.as_str()).collect();
    assert_eq!(manifest_problems.len(), 2, "{manifest_problems:?}");
    assert!(manifest_problems.iter().any(|m| m.contains("state is a string")));
    assert_eq!(report.skipped_types.get("Organization"), Some(&1));
    assert!(p.reason.unwrap().contains("7 bad lines"));
    let scripted = report.problems.iter().find(|x| x.line == 10).unwrap();
    assert!(scripted.message.contains("not an http(s) URL"), "{scripted:?}");

    // Ids with `_` and spaces: valid ids, found again through meta.source.
    let slots = store.ingested_contents(&p.id, "Slot").await.unwrap();
    assert_eq!(slots.len(), 4);
    assert!(slots.iter().all(|(id, _)| calsync_store::is_valid_id(id)));
    let by_source = |theirs: &str| -> Value {
        let fragment = format!("#Slot/{}", theirs.replace(' ', "%20"));
        slots
            .iter()
            .find(|(_, s)| s["meta"]["source"].as_str().unwrap().ends_with(&fragment))
            .unwrap_or_else(|| panic!("{theirs}"))
            .1
            .clone()
    };
    // Five whole days at a Chicago store, capacity kept.
    let week = by_source("slot_0001_week");
    assert_eq!(
        (week["start"].as_str(), week["end"].as_str()),
        (Some("2026-12-07T06:00:00Z"), Some("2026-12-12T06:00:00Z"))
    );
    assert_eq!(week["extension"][0]["valueInteger"], 1);
    assert_eq!(week["status"], "free");
    // Local times marked Z at the Madison store (Central time).
    let local = by_source("slot 0002 a");
    assert_eq!(
        (local["start"].as_str(), local["end"].as_str()),
        (Some("2026-12-07T15:00:00Z"), Some("2026-12-07T23:00:00Z"))
    );
    // No places left: busy.
    assert_eq!(by_source("slot 0002 b")["status"], "busy");
    // A real offset stays as written; a number is an id too.
    let numbered = store.read("Slot", &format!("{}.42", p.id)).await.unwrap().content;
    assert_eq!(numbered["start"], "2026-12-10T08:00:00-06:00");
    assert_eq!(report.repairs.get("whole-day"), Some(&2));
    assert_eq!(report.repairs.get("local-time"), Some(&4));
    assert!(report.repairs.get("id").copied().unwrap_or(0) >= 2);
    // Free Slots only: nothing busy is invented.
    let busy = slots.iter().filter(|(_, s)| s["status"] == "busy").count();
    assert_eq!(busy, 1, "only the Slot with no places left");
    // The Slots reference their (repaired) Schedules, which reference their Locations.
    let schedule_ref = local["schedule"]["reference"].as_str().unwrap();
    let schedule = store.read("Schedule", schedule_ref.trim_start_matches("Schedule/")).await.unwrap().content;
    let location = store
        .read("Location", schedule["actor"][0]["reference"].as_str().unwrap().trim_start_matches("Location/"))
        .await
        .unwrap();
    assert_eq!(location.content["name"], "Pharmacy Madison");
    db.finish().await;
}

/// A line or a manifest too long to hold is refused without being read whole: the line is a bad
/// line (and the lines after it keep their numbers), the manifest fails the poll.
#[tokio::test]
async fn a_line_or_a_manifest_too_long_to_hold_is_refused_and_the_rest_is_read() {
    let db = TestDatabase::create().await;
    // Small batches: the long line arrives in many chunks while batches are written.
    let store = store(&db).await.with_ingest_batching(calsync_store::IngestBatching { rows: 7, concurrent: 2 });
    let (dir, mut lines) = example_copy("long-lines");
    // Line 3: a good Slot but for its size (3 MiB; lines may have 1); line 6: an unknown status.
    let long = lines[2].replacen('{', &format!(r#"{{"comment":"{}","#, "x".repeat(3 << 20)), 1);
    assert!(serde_json::from_str::<Value>(&long).is_ok());
    lines[2] = long;
    lines[5] = lines[5].replace(r#""status":"free""#, r#""status":"open""#);
    put_first_slot_file(&dir, &lines);

    let feed = serve(dir.clone()).await;
    let p = register(&store, &format!("{}/$bulk-publish", feed.base), Options::default(), now()).await.unwrap();
    let (p, report) = poll_once(&store, &p.id, now()).await;
    assert_eq!(p.state, "partial", "{report:#?}");
    let slots = &report.types["Slot"];
    assert_eq!((slots.lines, slots.bad, slots.created), (300, 2, 298), "{report:#?}");
    let bad: Vec<(u64, &str)> = report
        .problems
        .iter()
        .filter(|x| x.file.ends_with("slots-2021-W09.ndjson"))
        .map(|x| (x.line, x.message.as_str()))
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].0, 3);
    assert!(bad[0].1.contains("longer than"), "{bad:?}");
    assert_eq!(bad[1].0, 6, "the lines after the long one keep their numbers: {bad:?}");
    assert_eq!(store.ingested_contents(&p.id, "Slot").await.unwrap().len(), 298);

    // A manifest too long to hold (9 MiB; a manifest may have 8): the poll fails and nothing
    // stored is removed.
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("$bulk-publish")).unwrap()).unwrap();
    manifest["padding"] = Value::from("x".repeat(9 << 20));
    std::fs::write(dir.join("$bulk-publish"), manifest.to_string()).unwrap();
    let mut p = p;
    p.etag = None;
    store.save_publisher(&p).await.unwrap();
    let (p, report) = poll_once(&store, &p.id, now()).await;
    assert_eq!(p.state, "error", "{report:#?}");
    assert!(p.reason.as_deref().unwrap().contains("longer than"), "{:?}", p.reason);
    assert_eq!(store.ingested_contents(&p.id, "Slot").await.unwrap().len(), 298);
    finish(db, &dir).await;
}

/// A line just over the limit that arrives whole in one read (a feed on disk is read 256 KiB at a
/// time, so 1 MiB of it arrives before its end) is as bad as one cut off.
#[tokio::test]
async fn a_line_just_over_the_limit_is_bad_however_it_arrives() {
    let (db, store) = fresh().await;
    let (dir, mut lines) = example_copy("long-line-on-disk");
    lines[0] = lines[0].replacen('{', &format!(r#"{{"comment":"{}","#, "x".repeat((1 << 20) + 10_000)), 1);
    put_first_slot_file(&dir, &lines);
    let p = register(&store, dir.to_str().unwrap(), Options::default(), now()).await.unwrap();
    let (p, report) = poll_once(&store, &p.id, now()).await;
    assert_eq!(p.state, "partial", "{report:#?}");
    let slots = &report.types["Slot"];
    assert_eq!((slots.lines, slots.bad, slots.created), (300, 1, 299), "{report:#?}");
    let problem = &report.problems[0];
    assert!(problem.file.ends_with("slots-2021-W09.ndjson") && problem.line == 1, "{problem:?}");
    assert!(problem.message.contains("longer than"), "{problem:?}");
    finish(db, &dir).await;
}

/// A server on `address` that counts its requests and answers `/disk/$bulk-publish` and
/// `/net/$bulk-publish` with manifests listing a file on calsync's own disk and a Location file
/// on `files`; any other path is that Location file.
async fn manifest_server(address: &str, files: Option<String>) -> (String, Arc<Mutex<usize>>) {
    let hits = Arc::new(Mutex::new(0usize));
    let counted = hits.clone();
    let server = HttpServer::new(move || {
        let (counted, files) = (counted.clone(), files.clone());
        App::new().default_service(web::to(move |req: HttpRequest| {
            *counted.lock().unwrap() += 1;
            let files = files.clone().unwrap_or_default();
            async move {
                let listed = match req.path() {
                    "/disk/$bulk-publish" => "file:///etc/hostname".to_string(),
                    "/net/$bulk-publish" => format!("{files}/Location.ndjson"),
                    _ => {
                        let line = r#"{"resourceType":"Location","id":"inner","name":"Not for outsiders","telecom":[{"system":"phone","value":"555"}]}"#;
                        return HttpResponse::Ok().content_type("application/fhir+ndjson").body(format!("{line}\n"));
                    }
                };
                let manifest = serde_json::json!({"transactionTime": "2026-12-01T00:00:00Z", "request": "$bulk-publish",
                    "output": [{"type": "Location", "url": listed}], "error": []});
                HttpResponse::Ok().json(manifest)
            }
        }))
    })
    .workers(1)
    .bind(format!("{address}:0"))
    .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    (base, hits)
}

/// A publisher's manifest is fetched where the egress policy permits (here 127.0.0.1 only), but
/// it cannot send calsync to a file on its own disk or to an address the policy refuses: the
/// poll fails with the file and the reason on the publisher's status, that file is never read,
/// and nothing is stored. Unrestricted, the same publisher is read: the refusal was the policy's.
#[tokio::test]
async fn a_manifest_cannot_send_calsync_to_its_own_disk_or_to_a_refused_address() {
    let (db, store) = fresh().await;
    let (inner, inner_hits) = manifest_server("127.0.0.2", None).await;
    let (outer, _) = manifest_server("127.0.0.1", Some(inner.clone())).await;
    let only_outer = calsync_links::http_client(Egress::new(false, &["127.0.0.1/32".into()]).unwrap()).unwrap();

    let disk = register(&store, &format!("{outer}/disk/$bulk-publish"), Options::default(), now()).await.unwrap();
    let p = poll(&store, &only_outer, &disk.id, now(), &|_| {}).await.unwrap();
    let report: Report = serde_json::from_str(p.report.as_deref().unwrap()).unwrap();
    assert_eq!(p.state, "error");
    let problem = report.problems.iter().find(|q| q.file == "file:///etc/hostname").expect("the listed file is named");
    assert!(problem.message.contains("http(s) files only"), "{problem:?}");
    assert!(store.ingested_contents(&disk.id, "Location").await.unwrap().is_empty());

    let net = register(&store, &format!("{outer}/net/$bulk-publish"), Options::default(), now()).await.unwrap();
    let p = poll(&store, &only_outer, &net.id, now(), &|_| {}).await.unwrap();
    assert_eq!(p.state, "error");
    let reason = p.reason.clone().unwrap();
    assert!(reason.contains("127.0.0.2 is not a public address"), "{reason}");
    assert_eq!(*inner_hits.lock().unwrap(), 0, "the refused address was never contacted");
    assert!(store.ingested_contents(&net.id, "Location").await.unwrap().is_empty());

    let unrestricted = calsync_links::http_client(Egress::unrestricted()).unwrap();
    let p = poll(&store, &unrestricted, &net.id, now(), &|_| {}).await.unwrap();
    assert_eq!(p.state, "ok", "{:?}", p.report);
    assert_eq!(*inner_hits.lock().unwrap(), 1);
    assert_eq!(store.ingested_contents(&net.id, "Location").await.unwrap().len(), 1);
    db.finish().await;
}

/// A poll takes at most so many bytes and so much time, whatever the publisher sends: past
/// either it stops as a failed fetch does, naming the limit; what was read is kept and the next
/// poll, within the limits, reads everything.
#[tokio::test]
async fn a_poll_stops_at_its_limits_of_bytes_and_time() {
    let (db, store) = fresh().await;
    let feed = serve(fixtures("ssl-v1")).await;
    let http = calsync_links::http_client(Egress::unrestricted()).unwrap();
    let p = register(&store, &format!("{}/$bulk-publish", feed.base), Options::default(), now()).await.unwrap();

    let small = calsync_links::PollLimits { bytes: 50_000, ..Default::default() };
    let stopped = calsync_links::poll_within(&store, &http, &p.id, now(), &|_| {}, small).await.unwrap();
    assert_eq!(stopped.state, "error");
    let reason = stopped.reason.clone().unwrap();
    assert!(reason.contains("larger than 50000 bytes, the limit of one poll"), "{reason}");
    let report: Report = serde_json::from_str(stopped.report.as_deref().unwrap()).unwrap();
    assert!(report.bytes > 50_000 && report.bytes < 200_000, "{}", report.bytes);
    assert_eq!(stopped.since, None, "the next poll asks for everything again");

    let instant = calsync_links::PollLimits { time: std::time::Duration::ZERO, ..Default::default() };
    let later = now() + chrono::TimeDelta::minutes(10);
    let stopped = calsync_links::poll_within(&store, &http, &p.id, later, &|_| {}, instant).await.unwrap();
    assert_eq!(stopped.state, "error");
    assert!(stopped.reason.as_deref().unwrap().contains("longer than 0 s, the limit of one poll"), "{stopped:?}");

    let (done, report) = poll_once(&store, &p.id, later + chrono::TimeDelta::minutes(10)).await;
    assert_eq!(done.state, "ok", "{report:#?}");
    let total: u64 = std::fs::read_dir(fixtures("ssl-v1"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ndjson"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(report.bytes > total, "manifest and files: {} of {total}", report.bytes);
    db.finish().await;
}

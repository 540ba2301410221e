//! Ingest of SMART Scheduling Links feeds served over loopback HTTP into a fresh database
//! (SQLite, or PostgreSQL when CALSYNC_TEST_POSTGRES_URL is set).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use calsync_connect::egress::Egress;
use calsync_links::{Event, Options, Report, poll, register};
use calsync_store::testing::TestDatabase;
use calsync_store::{Publisher, Store};
use chrono::{DateTime, Utc};
use serde_json::Value;

fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

/// The `ssl-v1` example set copied into a fresh directory named after `tag`, and the lines of its
/// first Slot file (`slots-2021-W09.ndjson`), for a test to change and put back with
/// [`put_first_slot_file`].
fn example_copy(tag: &str) -> (PathBuf, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("calsync-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures("ssl-v1")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let lines = std::fs::read_to_string(dir.join("slots-2021-W09.ndjson")).unwrap().lines().map(String::from).collect();
    (dir, lines)
}

fn put_first_slot_file(dir: &Path, lines: &[String]) {
    std::fs::write(dir.join("slots-2021-W09.ndjson"), lines.join("\n") + "\n").unwrap();
}

/// A static publisher: the files of a directory, the manifest's URLs pointed at this server.
struct Publishing {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
    missing: Arc<Mutex<Option<String>>>,
    /// The `Cache-Control` of every answer (`max-age=120` to begin with).
    cache_control: Arc<Mutex<String>>,
}

async fn serve(dir: PathBuf) -> Publishing {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let missing: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let cache_control = Arc::new(Mutex::new("max-age=120".to_string()));
    let (log, gone, caching) = (requests.clone(), missing.clone(), cache_control.clone());
    let server = HttpServer::new(move || {
        let (dir, log, gone, caching) = (dir.clone(), log.clone(), gone.clone(), caching.clone());
        App::new().default_service(web::to(move |req: HttpRequest| {
            let (dir, log, gone, caching) = (dir.clone(), log.clone(), gone.clone(), caching.clone());
            async move {
                log.lock().unwrap().push(req.uri().to_string());
                let name = req.path().trim_start_matches('/').to_string();
                if gone.lock().unwrap().as_deref() == Some(name.as_str()) {
                    return HttpResponse::NotFound().finish();
                }
                let Ok(mut body) = std::fs::read_to_string(dir.join(&name)) else {
                    return HttpResponse::NotFound().finish();
                };
                let host = format!("http://{}", req.connection_info().host());
                if name == "$bulk-publish" {
                    let mut m: Value = serde_json::from_str(&body).unwrap();
                    for o in m["output"].as_array_mut().unwrap() {
                        if let Some(u) = o["url"].as_str() {
                            o["url"] = Value::from(format!("{host}/{}", u.rsplit('/').next().unwrap()));
                        }
                    }
                    m["request"] = Value::from(format!("{host}/$bulk-publish"));
                    body = m.to_string();
                }
                let tag =
                    format!("\"{:x}\"", body.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))));
                if req.headers().get("if-none-match").and_then(|v| v.to_str().ok()) == Some(tag.as_str()) {
                    // As RFC 9110 asks: the Cache-Control a 200 would have had.
                    return HttpResponse::NotModified()
                        .insert_header(("Cache-Control", caching.lock().unwrap().clone()))
                        .finish();
                }
                HttpResponse::Ok()
                    .insert_header(("ETag", tag))
                    .insert_header(("Cache-Control", caching.lock().unwrap().clone()))
                    .content_type("application/fhir+ndjson")
                    .body(body)
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let base = format!("http://{}", server.addrs()[0]);
    tokio::spawn(server.run());
    Publishing { base, requests, missing, cache_control }
}

async fn store(db: &TestDatabase) -> Store {
    Store::connect(&db.url).await.unwrap().with_indexer(calsync_system::INDEXER)
}

fn now() -> DateTime<Utc> {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

async fn poll_once(store: &Store, id: &str, at: DateTime<Utc>) -> (Publisher, Report) {
    let events = Mutex::new(Vec::new());
    let p = poll(store, &calsync_links::http_client(Egress::unrestricted()).unwrap(), id, at, &|e: Event| {
        events.lock().unwrap().push(e)
    })
    .await
    .unwrap();
    let report: Report = serde_json::from_str(p.report.as_deref().unwrap()).unwrap();
    let events = events.into_inner().unwrap();
    if !report.not_modified && p.state != "error" {
        assert!(matches!(events.first(), Some(Event::Manifest { .. })), "{events:?}");
        let read: u64 = events.iter().map(|e| if let Event::Read { lines, .. } = e { *lines } else { 0 }).sum();
        let lines: u64 = report.types.values().map(|c| c.lines).sum();
        assert!(read >= lines, "progress saw {read} lines of {lines}");
    }
    (p, report)
}

/// The lines of a fixture directory's files of one type.
fn lines_of(dir: &Path, prefix: &str) -> Vec<Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<Value>>()
        })
        .collect()
}

/// A publisher's resource as calsync must store it: references to ingested types in the
/// namespace, and nothing else changed but `id` and `meta`.
fn expected(ns: &str, mut v: Value) -> Value {
    fn walk(ns: &str, v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, c) in m.iter_mut() {
                    match (k.as_str(), c.as_str().and_then(|r| r.split_once('/'))) {
                        ("reference", Some((t, id)))
                            if ["Location", "Device", "HealthcareService", "PractitionerRole", "Schedule", "Slot"]
                                .contains(&t) =>
                        {
                            *c = Value::from(format!("{t}/{ns}.{id}"))
                        }
                        _ => walk(ns, c),
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| walk(ns, c)),
            _ => {}
        }
    }
    walk(ns, &mut v);
    let o = v.as_object_mut().unwrap();
    o.remove("id");
    o.remove("meta");
    v
}

fn without_id_and_meta(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    o.remove("id");
    o.remove("meta");
    v
}

/// Every resource of every file in `dir` is stored exactly, under the namespace, with its origin.
async fn assert_ingested_exactly(
    store: &Store,
    p: &Publisher,
    dir: &Path,
    report: &Report,
    types: &[(&str, &str, u64)],
) {
    for (t, prefix, count) in types {
        let lines = lines_of(dir, prefix);
        assert_eq!(lines.len() as u64, *count, "{t} lines in the fixture");
        let c = &report.types[*t];
        assert_eq!((c.lines, c.bad, c.created), (*count, 0, *count), "{t}: {c:?}");
        for line in lines {
            let theirs = line["id"].as_str().unwrap().to_string();
            let stored = store.read(t, &format!("{}.{theirs}", p.id)).await.unwrap();
            assert_eq!(without_id_and_meta(stored.content.clone()), expected(&p.id, line), "{t}/{theirs}");
            let meta = &stored.content["meta"];
            assert!(meta["source"].as_str().unwrap().ends_with(&format!("$bulk-publish#{t}/{theirs}")), "{meta}");
            assert_eq!(meta["extension"][0]["url"], calsync_links::LAST_SOURCE_SYNC);
            assert_eq!(meta["extension"][0]["valueDateTime"].as_str(), report.transaction_time.as_deref());
        }
    }
}

#[tokio::test]
async fn both_example_sets_ingest_exactly_from_a_publisher_on_loopback() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    let v1 = serve(fixtures("ssl-v1")).await;
    let draft = serve(fixtures("ssl-hl7-draft")).await;

    let p = register(&store, &format!("{}/$bulk-publish", v1.base), Options::default(), now()).await.unwrap();
    let (p, report) = poll_once(&store, &p.id, now()).await;
    assert_eq!(
        (p.state.as_str(), report.full, report.bad_lines, report.problem_count),
        ("ok", true, 0, 0),
        "{report:?}"
    );
    assert_eq!(report.transaction_time.as_deref(), Some("2021-04-22T14:28:21.582Z"));
    assert_ingested_exactly(
        &store,
        &p,
        &fixtures("ssl-v1"),
        &report,
        &[("Location", "locations", 10), ("Schedule", "schedules", 10), ("Slot", "slots-", 300)],
    )
    .await;
    // A spot check by hand: the first Slot, its Schedule, its booking extensions.
    let slot = store.read("Slot", &format!("{}.20", p.id)).await.unwrap().content;
    assert_eq!(slot["schedule"]["reference"], format!("Schedule/{}.10", p.id));
    assert_eq!(
        (slot["start"].as_str(), slot["end"].as_str()),
        (Some("2021-03-01T14:00:00.000Z"), Some("2021-03-01T23:00:00.000Z"))
    );
    assert_eq!(slot["extension"][0]["valueUrl"], "https://ehr-portal.example.org/bookings?slot=1000000");
    assert_eq!(slot["extension"][2]["valueInteger"], 100);

    let q = register(&store, &format!("{}/$bulk-publish", draft.base), Options::default(), now()).await.unwrap();
    assert_ne!(q.id, p.id);
    let (q, report) = poll_once(&store, &q.id, now()).await;
    assert_eq!((q.state.as_str(), report.bad_lines), ("ok", 0), "{report:?}");
    assert_ingested_exactly(
        &store,
        &q,
        &fixtures("ssl-hl7-draft"),
        &report,
        &[
            ("Location", "locations", 20),
            ("Device", "devices", 5),
            ("PractitionerRole", "practitionerroles", 10),
            ("Schedule", "schedules", 25),
            ("Slot", "slots-", 11563),
        ],
    )
    .await;
    let schedule = store.read("Schedule", &format!("{}.20", q.id)).await;
    assert!(schedule.is_ok() || store.read("Schedule", &format!("{}.10", q.id)).await.is_ok());
    // Two publishers' `Location/0` are two Locations.
    let (a, b) = (
        store.read("Location", &format!("{}.0", p.id)).await.unwrap(),
        store.read("Location", &format!("{}.0", q.id)).await.unwrap(),
    );
    assert_ne!(a.content["name"], b.content["name"]);
    db.finish().await;
}

/// Slot rows stored with their origin in the JSON, and without it (`synced_ms` set).
async fn slot_rows_by_origin(store: &Store) -> (i64, i64) {
    let count = |sql: &'static str| calsync_store::testing::number(store, sql);
    let with = count(
        "SELECT COUNT(*) FROM resource WHERE resource_type = 'Slot' AND synced_ms IS NULL \
         AND content LIKE '%\"source\":%' AND content LIKE '%lastSourceSync%'",
    )
    .await;
    let without = count(
        "SELECT COUNT(*) FROM resource WHERE resource_type = 'Slot' AND synced_ms IS NOT NULL \
         AND content NOT LIKE '%\"source\":%' AND content NOT LIKE '%lastSourceSync%'",
    )
    .await;
    (with, without)
}

/// The origin of an ingested resource as served: `meta.source` and the lastSourceSync instant.
fn origin_of(v: &Value) -> (String, String) {
    let meta = &v["meta"];
    let syncs: Vec<&Value> =
        meta["extension"].as_array().unwrap().iter().filter(|e| e["url"] == calsync_links::LAST_SOURCE_SYNC).collect();
    assert_eq!(syncs.len(), 1, "one lastSourceSync: {meta}");
    (meta["source"].as_str().unwrap().to_string(), syncs[0]["valueDateTime"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn a_slots_origin_is_stored_once_per_publisher_and_every_read_gives_it_back() {
    use calsync_store::search::{AnyOf, Direction, ResourceSearch, SlotSearch};
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    let (dir, lines) = example_copy("origin");
    let publishing = serve(dir.clone()).await;
    let manifest = format!("{}/$bulk-publish", publishing.base);
    let p = register(&store, &manifest, Options::default(), now()).await.unwrap();
    let (p, report) = poll_once(&store, &p.id, now()).await;
    assert_eq!((p.state.as_str(), report.types["Slot"].created), ("ok", 300), "{report:?}");
    // Every Slot's row is without its origin; Locations and Schedules keep theirs.
    assert_eq!(slot_rows_by_origin(&store).await, (0, 300));

    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    let theirs = first["id"].as_str().unwrap();
    let id = format!("{}.{theirs}", p.id);
    let want = (format!("{manifest}#Slot/{theirs}"), "2021-04-22T14:28:21.582Z".to_string());
    let read = store.read("Slot", &id).await.unwrap();
    assert_eq!(origin_of(&read.content), want);
    assert_eq!(origin_of(&store.vread("Slot", &id, 1).await.unwrap().content), want);
    assert_eq!(origin_of(&store.history("Slot", &id).await.unwrap()[0].content), want);
    let by_id = SlotSearch { ids: vec![AnyOf { values: vec![id.clone()], negate: false }], ..Default::default() };
    let page = store.search_slots(&by_id, Direction::Ascending, None, 10).await.unwrap();
    assert_eq!(origin_of(&page.resources[0].content), want);
    let by_id = ResourceSearch { ids: vec![AnyOf { values: vec![id.clone()], negate: false }], ..Default::default() };
    let page = store.search_resources("Slot", &by_id, Default::default(), None, 10).await;
    assert_eq!(origin_of(&page.unwrap().resources[0].content), want);
    let txn = store.begin(chrono::Utc::now()).await.unwrap();
    assert_eq!(origin_of(&txn.read("Slot", &id).await.unwrap().content), want, "as $book reads it");
    drop(txn);
    let ingested = store.ingested_contents(&p.id, "Slot").await.unwrap();
    assert!(ingested.iter().all(|(id, slot)| origin_of(slot).0.ends_with(&id[p.id.len() + 1..])));
    // The published feed: every line whole, the origin once.
    let start: DateTime<Utc> = read.content["start"].as_str().unwrap().parse().unwrap();
    let mut chunks = store.stream_slots_by_start(start, start + chrono::TimeDelta::seconds(1), None, |json, out| {
        out.extend_from_slice(json.as_bytes());
        out.push(b'\n');
    });
    let mut streamed = Vec::new();
    while let Some(chunk) = chunks.recv().await {
        for line in chunk.unwrap().split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            streamed.push(serde_json::from_slice::<Value>(line).unwrap());
        }
    }
    let mine = streamed.iter().find(|s| s["id"] == id.as_str()).unwrap();
    assert_eq!(origin_of(mine), want);

    // A write by calsync (a hold records itself on the Slot) stores the Slot whole: the origin is
    // not added twice.
    let mut held = read.content.clone();
    held["comment"] = Value::from("held");
    store.update("Slot", &id, held, None, chrono::Utc::now()).await.unwrap();
    assert_eq!(slot_rows_by_origin(&store).await, (1, 299));
    let read = store.read("Slot", &id).await.unwrap();
    assert_eq!((origin_of(&read.content), read.version_id), (want.clone(), 2));
    // The version it replaced, which the ingest wrote to `resource` alone, went to the history.
    let ingested = store.vread("Slot", &id, 1).await.unwrap().content;
    assert_eq!((ingested.get("comment"), origin_of(&ingested)), (None, want.clone()));
    assert_eq!(store.history("Slot", &id).await.unwrap().len(), 2);
    // A deletion keeps the version deleted with its origin, whole or kept apart.
    let other = format!("{}.{}", p.id, serde_json::from_str::<Value>(&lines[1]).unwrap()["id"].as_str().unwrap());
    store.delete("Slot", &other, chrono::Utc::now()).await.unwrap();
    let versions = store.history("Slot", &other).await.unwrap();
    assert!(versions[0].deleted);
    assert_eq!(versions.iter().map(|v| origin_of(&v.content).1).collect::<Vec<_>>(), [want.1.clone(), want.1.clone()]);

    // A changed line, in a feed of a later transaction time, is a new version without its
    // origin again; the version before keeps its own time, an unchanged Slot too.
    let mut changed = lines.clone();
    changed[2] = changed[2].replacen("\"free\"", "\"busy\"", 1);
    assert_ne!(changed[2], lines[2]);
    put_first_slot_file(&dir, &changed);
    let manifest_file = dir.join("$bulk-publish");
    let m = std::fs::read_to_string(&manifest_file).unwrap().replace(&want.1, "2021-04-23T09:00:00.000Z");
    std::fs::write(&manifest_file, m).unwrap();
    let (_, report) = poll_once(&store, &p.id, now() + chrono::TimeDelta::hours(1)).await;
    assert_eq!(report.types["Slot"].changed, 1, "{report:?}");
    let third: Value = serde_json::from_str(&changed[2]).unwrap();
    let third = format!("{}.{}", p.id, third["id"].as_str().unwrap());
    let now_busy = store.read("Slot", &third).await.unwrap();
    assert_eq!((now_busy.content["status"].as_str(), now_busy.version_id), (Some("busy"), 2));
    let source = format!("{manifest}#Slot/{}", &third[p.id.len() + 1..]);
    assert_eq!(origin_of(&now_busy.content), (source.clone(), "2021-04-23T09:00:00.000Z".to_string()));
    let before = store.vread("Slot", &third, 1).await.unwrap().content;
    assert_eq!((before["status"].as_str(), origin_of(&before)), (Some("free"), (source, want.1.clone())));
    let fourth = format!("{}.{}", p.id, serde_json::from_str::<Value>(&lines[3]).unwrap()["id"].as_str().unwrap());
    assert_eq!(origin_of(&store.read("Slot", &fourth).await.unwrap().content).1, want.1);
    // The held Slot's line was unchanged: its row stays whole. The deleted Slot's row (its line
    // unchanged too) is still the deleted version, its origin apart.
    assert_eq!(slot_rows_by_origin(&store).await, (1, 299));
    db.finish().await;
}

#[tokio::test]
async fn polls_are_conditional_and_a_full_set_removes_what_the_publisher_dropped() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    let dir = std::env::temp_dir().join(format!(
        "calsync-ssl-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(fixtures("ssl-v1")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    let feed = serve(dir.clone()).await;
    let p = register(&store, &format!("{}/$bulk-publish", feed.base), Options::default(), now()).await.unwrap();
    let (p, _) = poll_once(&store, &p.id, now()).await;
    // Cache-Control: max-age=120 sets the next poll.
    assert_eq!(p.next_run_ms, Some(now().timestamp_millis() + 120_000));
    let version = |id: &'static str| {
        let (store, ns) = (store.clone(), p.id.clone());
        async move { store.read("Slot", &format!("{ns}.{id}")).await.map(|r| r.version_id) }
    };

    // Unchanged manifest: 304, nothing read.
    let later = now() + chrono::TimeDelta::minutes(3);
    let (unchanged, report) = poll_once(&store, &p.id, later).await;
    assert!(report.not_modified, "{report:?}");
    // The 304's Cache-Control sets the next poll too.
    assert_eq!(unchanged.next_run_ms, Some(later.timestamp_millis() + 120_000));
    assert!(feed.requests.lock().unwrap().iter().filter(|r| r.contains("slots")).count() == 5);

    // The publisher drops Slot 20, changes Slot 21, breaks the line of Slot 23 (its end before
    // its start), and ignores `_since`: a full set again.
    let file = dir.join("slots-2021-W09.ndjson");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    assert!(lines[0].contains("\"id\":\"20\""));
    lines.remove(0);
    assert!(lines[0].contains("\"id\":\"21\""));
    lines[0] = lines[0].replace("\"status\":\"free\"", "\"status\":\"busy\"");
    assert!(lines[2].contains("\"id\":\"23\""));
    let slot_23: Value = serde_json::from_str(&lines[2]).unwrap();
    lines[2] = lines[2].replace(slot_23["end"].as_str().unwrap(), "2001-01-01T00:00:00Z");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let manifest = dir.join("$bulk-publish");
    let m = std::fs::read_to_string(&manifest).unwrap().replace("2021-04-22T14:28:21.582Z", "2021-04-23T09:00:00.000Z");
    std::fs::write(&manifest, m).unwrap();
    let (p, report) = poll_once(&store, &p.id, later + chrono::TimeDelta::minutes(3)).await;
    let asked = feed.requests.lock().unwrap().iter().rev().find(|r| r.contains("$bulk-publish")).cloned().unwrap();
    assert!(asked.contains("_since=2021-04-22T14"), "the last transaction time is sent as _since: {asked}");
    assert!(report.full, "the publisher ignored _since: its answer is the whole set");
    assert_eq!(report.removed, 1, "Slot 20 only: the bad line of Slot 23 keeps its last good version");
    assert_eq!(
        (report.types["Slot"].changed, report.types["Slot"].unchanged, report.types["Slot"].created),
        (1, 297, 0)
    );
    assert_eq!((report.types["Slot"].bad, report.types["Slot"].kept), (1, 1));
    assert_eq!(
        report.problems.iter().map(|x| (x.file.rsplit('/').next().unwrap(), x.line)).collect::<Vec<_>>(),
        vec![("slots-2021-W09.ndjson", 3)]
    );
    assert_eq!(version("23").await.unwrap(), 1);
    assert_eq!(store.read("Slot", &format!("{}.23", p.id)).await.unwrap().content["end"], slot_23["end"]);
    assert!(matches!(version("20").await, Err(calsync_store::StoreError::Gone(..))));
    assert_eq!(version("21").await.unwrap(), 2);
    // Both versions of the changed Slot are in its history, newest first.
    let history = store.history("Slot", &format!("{}.21", p.id)).await.unwrap();
    let statuses: Vec<(i64, &str)> =
        history.iter().map(|v| (v.version_id, v.content["status"].as_str().unwrap())).collect();
    assert_eq!(statuses, vec![(2, "busy"), (1, "free")]);
    assert_eq!(store.vread("Slot", &format!("{}.21", p.id), 1).await.unwrap().content["status"], "free");
    assert_eq!(store.vread("Slot", &format!("{}.22", p.id), 1).await.unwrap().version_id, 1);
    assert!(store.vread("Slot", &format!("{}.22", p.id), 2).await.is_err());
    assert_eq!(version("22").await.unwrap(), 1, "unchanged Slots keep their version and id");
    assert_eq!(p.state, "partial");

    // A file that fails mid-poll: what was stored stays, nothing is removed.
    *feed.missing.lock().unwrap() = Some("slots-2021-W11.ndjson".into());
    std::fs::write(&manifest, std::fs::read_to_string(&manifest).unwrap().replace("2021-04-23T09", "2021-04-24T09"))
        .unwrap();
    let (p, report) = poll_once(&store, &p.id, later + chrono::TimeDelta::minutes(6)).await;
    assert_eq!(p.state, "error");
    assert!(p.reason.as_deref().unwrap().contains("404"), "{:?}", p.reason);
    assert_eq!(report.removed, 0);
    assert_eq!(version("22").await.unwrap(), 1);
    assert_eq!(
        store.read("Slot", &format!("{}.200", p.id)).await.map(|r| r.version_id).ok(),
        Some(1),
        "a Slot of the missing week stays"
    );
    assert_eq!(p.since.as_deref(), Some("2021-04-23T09:00:00.000Z"), "an incomplete poll does not move _since");
    std::fs::remove_dir_all(&dir).ok();
    db.finish().await;
}

#[tokio::test]
async fn a_messy_feed_is_repaired_where_clear_and_every_bad_line_is_reported_with_file_and_line() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
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

#[tokio::test]
async fn a_directory_registers_as_a_file_manifest_and_a_bad_registration_is_refused() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    let p = register(&store, fixtures("ssl-v1").to_str().unwrap(), Options::default(), now()).await.unwrap();
    assert!(p.manifest_url.starts_with("file://") && p.manifest_url.ends_with("$bulk-publish"));
    let (p, report) = poll_once(&store, &p.id, now()).await;
    assert_eq!((p.state.as_str(), report.types["Slot"].created), ("ok", 300), "{report:?}");
    // Registering it again is the same publisher.
    let again = register(&store, fixtures("ssl-v1").to_str().unwrap(), Options::default(), now()).await.unwrap();
    assert_eq!(again.id, p.id);
    for bad in ["http://example.org/feed.json", "/no/such/dir", "https://feed:s3cret@example.org/$bulk-publish"] {
        let refused = register(&store, bad, Options::default(), now()).await;
        assert!(refused.is_err(), "{bad}");
        assert!(!format!("{refused:?}").contains("s3cret"), "{refused:?}");
    }
    let bad_zone = Options { zone: Some("Mars/Olympus".into()), local_times: false };
    assert!(register(&store, fixtures("ssl-v1").to_str().unwrap(), bad_zone, now()).await.is_err());
    db.finish().await;
}

/// Batches are written several at once where the store allows (PostgreSQL), or with the
/// batching set here on either database: small batches, two at once. A Slot listed twice, in two
/// batches written at the same time, is stored as its later line says (the later batch waits for
/// the earlier), and the whole example set still ingests exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_written_at_once_keep_the_later_line_of_a_repeated_id() {
    let db = TestDatabase::create().await;
    let store = store(&db).await.with_ingest_batching(calsync_store::IngestBatching { rows: 5, concurrent: 2 });
    let (dir, mut lines) = example_copy("repeated");
    // Slot 20 is the first line of the first Slot file; again, busy, as its seventh.
    assert!(lines[0].contains(r#""id":"20""#) && lines.len() > 10);
    lines.insert(6, lines[0].replace(r#""status":"free""#, r#""status":"busy""#));
    put_first_slot_file(&dir, &lines);

    let feed = serve(dir.clone()).await;
    let p = register(&store, &format!("{}/$bulk-publish", feed.base), Options::default(), now()).await.unwrap();
    let (p, report) = poll_once(&store, &p.id, now()).await;
    assert_eq!(p.state, "ok", "{report:#?}");
    let slots = &report.types["Slot"];
    assert_eq!((slots.lines, slots.created, slots.changed, slots.bad), (301, 300, 1, 0), "{report:#?}");
    let stored = store.read("Slot", &format!("{}.20", p.id)).await.unwrap();
    assert_eq!((stored.content["status"].as_str(), stored.version_id), (Some("busy"), 2));
    assert_eq!(store.ingested_contents(&p.id, "Slot").await.unwrap().len(), 300);
    std::fs::remove_dir_all(&dir).ok();
    db.finish().await;
}

/// The next poll follows `Cache-Control: max-age`, at least a minute and at most a year later,
/// however large or malformed the number.
#[tokio::test]
async fn the_next_poll_is_within_a_minute_and_a_year_whatever_max_age_says() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    let (dir, _) = example_copy("max-age");
    let feed = serve(dir.clone()).await;
    let p = register(&store, &format!("{}/$bulk-publish", feed.base), Options::default(), now()).await.unwrap();
    let (minute, year, default) = (60_000, 365 * 86_400_000, 300_000);
    for (cache_control, after) in [
        ("max-age=9223372036854775807", year),
        ("public, max-age=99999999999999999999999", year),
        ("max-age=31536001", year),
        ("max-age=604800", 604_800_000),
        ("max-age=3600", 3_600_000),
        ("max-age=0", minute),
        ("max-age=-5", default),
        ("no-cache", default),
    ] {
        *feed.cache_control.lock().unwrap() = cache_control.to_string();
        let mut p = store.publisher(&p.id).await.unwrap();
        // A full poll each time: the manifest is read, not answered 304.
        p.etag = None;
        p.since = None;
        store.save_publisher(&p).await.unwrap();
        let (p, report) = poll_once(&store, &p.id, now()).await;
        assert_eq!(p.state, "ok", "{cache_control}: {report:#?}");
        assert_eq!(p.next_run_ms, Some(now().timestamp_millis() + after), "{cache_control}");
    }
    std::fs::remove_dir_all(&dir).ok();
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
    std::fs::remove_dir_all(&dir).ok();
    db.finish().await;
}

/// A line just over the limit that arrives whole in one read (a feed on disk is read 256 KiB at a
/// time, so 1 MiB of it arrives before its end) is as bad as one cut off.
#[tokio::test]
async fn a_line_just_over_the_limit_is_bad_however_it_arrives() {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
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
    std::fs::remove_dir_all(&dir).ok();
    db.finish().await;
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
    let db = TestDatabase::create().await;
    let store = store(&db).await;
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

//! What every ingest test shares: the example sets, a publisher serving a directory on
//! loopback, a fresh indexed store, and what an exact ingest looks like.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use calsync_connect::egress::Egress;
use calsync_links::{Event, Report, poll};
use calsync_store::testing::TestDatabase;
use calsync_store::{Publisher, Store};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub(crate) fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

/// The `ssl-v1` example set copied into a fresh directory named after `tag`, and the lines of its
/// first Slot file (`slots-2021-W09.ndjson`), for a test to change and put back with
/// [`put_first_slot_file`].
pub(crate) fn example_copy(tag: &str) -> (PathBuf, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("calsync-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures("ssl-v1")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let lines = std::fs::read_to_string(dir.join("slots-2021-W09.ndjson")).unwrap().lines().map(String::from).collect();
    (dir, lines)
}

pub(crate) fn put_first_slot_file(dir: &Path, lines: &[String]) {
    std::fs::write(dir.join("slots-2021-W09.ndjson"), lines.join("\n") + "\n").unwrap();
}

/// A static publisher: the files of a directory, the manifest's URLs pointed at this server.
pub(crate) struct Publishing {
    pub(crate) base: String,
    pub(crate) requests: Arc<Mutex<Vec<String>>>,
    pub(crate) missing: Arc<Mutex<Option<String>>>,
    /// The `Cache-Control` of every answer (`max-age=120` to begin with).
    pub(crate) cache_control: Arc<Mutex<String>>,
}

pub(crate) async fn serve(dir: PathBuf) -> Publishing {
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

/// A fresh database and its store, indexed as calsync's.
pub(crate) async fn fresh() -> (TestDatabase, Store) {
    let db = TestDatabase::create().await;
    let store = store(&db).await;
    (db, store)
}

/// Removes a test's copy of an example set, and its database.
pub(crate) async fn finish(db: TestDatabase, dir: &Path) {
    std::fs::remove_dir_all(dir).ok();
    db.finish().await;
}

/// A store on `db`, indexed as calsync's.
pub(crate) async fn store(db: &TestDatabase) -> Store {
    Store::connect(&db.url).await.unwrap().with_indexer(calsync_system::INDEXER)
}

pub(crate) fn now() -> DateTime<Utc> {
    "2026-12-01T12:00:00Z".parse().unwrap()
}

pub(crate) async fn poll_once(store: &Store, id: &str, at: DateTime<Utc>) -> (Publisher, Report) {
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
pub(crate) fn lines_of(dir: &Path, prefix: &str) -> Vec<Value> {
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
pub(crate) fn expected(ns: &str, mut v: Value) -> Value {
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

pub(crate) fn without_id_and_meta(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    o.remove("id");
    o.remove("meta");
    v
}

/// Every resource of every file in `dir` is stored exactly, under the namespace, with its origin.
pub(crate) async fn assert_ingested_exactly(
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

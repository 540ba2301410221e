//! The SMART Scheduling Links example sets, ingested exactly, and each Slot's origin kept once
//! per publisher and given back by every read.

use calsync_links::{Options, register};
use calsync_store::Store;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn both_example_sets_ingest_exactly_from_a_publisher_on_loopback() {
    let (db, store) = fresh().await;
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
    let (db, store) = fresh().await;
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

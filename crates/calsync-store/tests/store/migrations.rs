//! Opening a database: the migrations (also over data an older calsync wrote, and by processes
//! starting together), and how a new SQLite file is made.

use calsync_store::testing::TestDatabase;
use calsync_store::{Store, StoreError};
use chrono::{TimeZone, Utc};
use serde_json::json;

use crate::harness::*;

/// A database written before migration 000012 (Slots' ranges in `slot`, origins in
/// `ingested`) reads the same after it: every live Slot found by range and schedule, a deleted
/// Slot in no range, an ingested resource still its publisher's, unchanged on the next poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_the_earlier_schema_keeps_its_slots_and_origins() {
    let database = TestDatabase::create().await;
    let slot_json = |id: &str, start: &str, end: &str, status: &str| {
        json!({"resourceType": "Slot", "id": id, "meta": {"versionId": "1", "lastUpdated": "2026-11-24T10:00:00.000Z"},
            "schedule": {"reference": "Schedule/s1"}, "status": status, "start": start, "end": end})
        .to_string()
    };
    let statements = [
        format!(
            "INSERT INTO resource (resource_type, id, version_id, last_updated, deleted, content) VALUES \
             ('Slot', 'a', 1, 1, false, '{}'), ('Slot', 'b', 2, 2, true, '{}'), ('Slot', 'p1.c', 1, 3, false, '{}'), \
             ('Location', 'p1.l', 1, 3, false, '{{\"resourceType\":\"Location\",\"id\":\"p1.l\"}}'), \
             ('Slot', 'w', 1, 1, false, '{}')",
            slot_json("a", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", "free"),
            slot_json("b", "2026-12-07T10:00:00Z", "2026-12-07T10:30:00Z", "free"),
            slot_json("p1.c", "2026-12-07T11:00:00Z", "2026-12-07T11:30:00Z", "busy"),
            slot_json("w", "2026-12-01T00:00:00Z", "2026-12-08T00:00:00Z", "free"),
        ),
        "INSERT INTO slot (id, schedule, start_ms, end_ms, status) VALUES \
         ('a', 'Schedule/s1', 1796634000000, 1796635800000, 'free'), \
         ('p1.c', 'Schedule/s1', 1796641200000, 1796643000000, 'busy'), \
         ('w', 'Schedule/s2', 1796083200000, 1796688000000, 'free')"
            .to_string(),
        "INSERT INTO ingested (resource_type, id, publisher, digest, poll) VALUES \
         ('Slot', 'p1.c', 'p1', 77, 4), ('Location', 'p1.l', 'p1', 78, 4)"
            .to_string(),
    ];
    calsync_store::testing::earlier_schema(&database.url, 11, &statements).await;

    let store = Store::connect(&database.url).await.unwrap();
    let day =
        (Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(2026, 12, 8, 0, 0, 0).unwrap());
    let all = store.slots_overlapping(None, day.0, day.1).await.unwrap();
    assert_eq!(
        all.iter().map(|s| (s.id.as_str(), s.status.as_str())).collect::<Vec<_>>(),
        [("w", "free"), ("a", "free"), ("p1.c", "busy")]
    );
    assert_eq!(all[1].start, Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap());
    let free = store.free_slots(Some(&["Schedule/s1".to_string()]), day.0, day.1).await.unwrap();
    assert_eq!(free.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["a"]);
    // The week-long free Slot, from six days before: its Schedule's longest was measured.
    let free = store.free_slots(None, day.0, day.1).await.unwrap();
    assert_eq!(free.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["w", "a"]);
    assert!(matches!(store.read("Slot", "b").await, Err(StoreError::Gone(..))));
    // Slots written before there were Slot generations have one now.
    let days = store
        .schedules_by_period(day.0 - chrono::TimeDelta::days(1), chrono::TimeDelta::days(1), 3, &Default::default())
        .await;
    assert_eq!(days.unwrap(), [(1, "Schedule/s1".to_string())]);
    let ingested = store.ingested_contents("p1", "Slot").await.unwrap();
    assert_eq!(ingested.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["p1.c"]);
    // The next poll lists both with the digests they had: unchanged, nothing written.
    let mut items = Vec::new();
    for (t, id, digest, content) in [
        (
            "Slot",
            "p1.c",
            77,
            serde_json::from_str(&slot_json("p1.c", "2026-12-07T11:00:00Z", "2026-12-07T11:30:00Z", "free")).unwrap(),
        ),
        ("Location", "p1.l", 78, json!({"resourceType": "Location"})),
    ] {
        let item = calsync_store::Ingest { resource_type: t.into(), id: id.into(), digest, content };
        items.push(store.prepare_ingest(item, Utc::now()).unwrap());
    }
    let tally = store.ingest("p1", 5, items, |_, _| {}, now()).await.unwrap();
    assert_eq!((tally.created, tally.changed, tally.unchanged), (0, 0, 2));
    // A full data set of poll 5 keeps both; one of poll 6 that listed neither removes both.
    assert_eq!(store.ingest_sweep("p1", &["Slot", "Location"], 5, now()).await.unwrap(), 0);
    assert_eq!(store.ingest_sweep("p1", &["Slot", "Location"], 6, now()).await.unwrap(), 2);
    let left = store.slots_overlapping(None, day.0, day.1).await.unwrap();
    assert_eq!(left.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), ["w", "a"]);
    store.clone().close().await;
    database.finish().await;
}

/// A SQLite file calsync creates has 8 KB pages (docs/benchmarks-log.md, "SQLite pages of 8 KB").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sqlite_file_has_pages_of_8_kb() {
    let db = fresh().await;
    if db.store.backend() == calsync_store::Backend::Sqlite {
        assert_eq!(calsync_store::testing::number(&db.store, "PRAGMA page_size").await, 8192);
    }
    db.finish().await;
}

/// API replicas and workers starting at the same moment on a fresh database all come up: the
/// migrations run once, under a lock (PostgreSQL's advisory lock, SQLite's write lock), and each
/// process after the first finds nothing left to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_starting_together_on_a_fresh_database_all_come_up() {
    let database = TestDatabase::create().await;
    let url = database.url.as_str();
    let opened = tokio::join!(Store::connect(url), Store::connect(url), Store::connect(url), Store::connect(url));
    let stores: Vec<Store> =
        [opened.0, opened.1, opened.2, opened.3].into_iter().map(|s| s.expect("every process comes up")).collect();
    let created = stores[0].create("Patient", json!({"resourceType": "Patient"}), now()).await.unwrap();
    for store in &stores {
        assert_eq!(store.read("Patient", &created.id).await.unwrap().version_id, 1);
    }
    for store in stores {
        store.clone().close().await;
    }
    database.finish().await;
}

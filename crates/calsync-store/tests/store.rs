//! Store behaviour, on SQLite (always) and on PostgreSQL when CALSYNC_TEST_POSTGRES_URL is set
//! (e.g. postgres://root@127.0.0.1:5432/test). Every test gets its own fresh database.

use calsync_store::testing::TestDatabase;
use calsync_store::{Store, StoreError};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

/// A fresh store on its own database, removed by `finish`.
struct TestDb {
    store: Store,
    database: TestDatabase,
}

async fn fresh() -> TestDb {
    let database = TestDatabase::create().await;
    TestDb { store: Store::connect(&database.url).await.unwrap(), database }
}

impl TestDb {
    async fn finish(self) {
        self.store.connection().clone().close().await.ok();
        self.database.finish().await;
    }
}

fn slot(schedule: &str, start: &str, end: &str, status: &str) -> Value {
    json!({"resourceType": "Slot", "schedule": {"reference": schedule}, "status": status, "start": start, "end": end})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_and_meta() {
    let db = fresh().await;
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Silva"}]});
    let created = db.store.create("Patient", patient).await.unwrap();
    assert_eq!(created.version_id, 1);
    assert_eq!(created.content["id"], created.id);
    assert_eq!(created.content["meta"]["versionId"], "1");
    assert!(created.content["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));
    let read = db.store.read("Patient", &created.id).await.unwrap();
    assert_eq!(read, created);
    assert_eq!(read.content["name"][0]["family"], "Silva");
    assert!(matches!(db.store.read("Patient", "nope").await, Err(StoreError::NotFound(..))));
    assert!(matches!(db.store.read("Practitioner", &created.id).await, Err(StoreError::NotFound(..))));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_if_match_and_update_as_create() {
    let db = fresh().await;
    let (v1, created) =
        db.store.update("Location", "clinic-1", json!({"resourceType": "Location", "name": "A"}), None).await.unwrap();
    assert!(created);
    assert_eq!(v1.version_id, 1);
    let (v2, created) = db
        .store
        .update("Location", "clinic-1", json!({"resourceType": "Location", "name": "B"}), Some(1))
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(v2.version_id, 2);
    let stale =
        db.store.update("Location", "clinic-1", json!({"resourceType": "Location", "name": "C"}), Some(1)).await;
    assert!(matches!(stale, Err(StoreError::VersionConflict { expected: 1, current: 2 })), "{stale:?}");
    assert_eq!(db.store.read("Location", "clinic-1").await.unwrap().content["name"], "B");
    assert_eq!(db.store.vread("Location", "clinic-1", 1).await.unwrap().content["name"], "A");
    assert!(matches!(db.store.vread("Location", "clinic-1", 9).await, Err(StoreError::NotFound(..))));
    assert!(matches!(
        db.store.update("Location", "bad id!", json!({"resourceType": "Location"}), None).await,
        Err(StoreError::Invalid(_))
    ));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_then_gone_history_and_recreate() {
    let db = fresh().await;
    let p = db.store.create("Patient", json!({"resourceType": "Patient"})).await.unwrap();
    db.store.delete("Patient", &p.id).await.unwrap();
    db.store.delete("Patient", &p.id).await.unwrap(); // idempotent
    assert!(matches!(db.store.read("Patient", &p.id).await, Err(StoreError::Gone(..))));
    let history = db.store.history("Patient", &p.id).await.unwrap();
    assert_eq!(history.iter().map(|h| (h.version_id, h.deleted)).collect::<Vec<_>>(), vec![(2, true), (1, false)]);
    let (again, created) = db.store.update("Patient", &p.id, json!({"resourceType": "Patient"}), None).await.unwrap();
    assert!(created);
    assert_eq!(again.version_id, 3);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_range_table_follows_every_write() {
    let db = fresh().await;
    let a = db
        .store
        .create("Slot", slot("Schedule/1", "2026-12-01T09:00:00Z", "2026-12-01T09:30:00Z", "free"))
        .await
        .unwrap();
    let b = db
        .store
        .create("Slot", slot("Schedule/1", "2026-12-01T10:00:00+01:00", "2026-12-01T10:30:00+01:00", "free"))
        .await
        .unwrap();
    let c = db
        .store
        .create("Slot", slot("Schedule/2", "2026-12-01T09:15:00Z", "2026-12-01T17:00:00Z", "busy"))
        .await
        .unwrap();
    let at = |h, m| Utc.with_ymd_and_hms(2026, 12, 1, h, m, 0).unwrap();
    let ids = |rows: Vec<calsync_store::SlotRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    // b starts 09:00Z too (10:00+01:00): ordered by start, then id.
    let mut first_two = vec![a.id.clone(), b.id.clone()];
    first_two.sort();
    assert_eq!(ids(db.store.slots_overlapping(Some("Schedule/1"), at(8, 0), at(12, 0)).await.unwrap()), first_two);
    // Overlap, not containment: c runs all day.
    assert_eq!(
        ids(db.store.slots_overlapping(Some("Schedule/2"), at(16, 59), at(18, 0)).await.unwrap()),
        vec![c.id.clone()]
    );
    assert!(db.store.slots_overlapping(None, at(9, 30), at(9, 45)).await.unwrap().iter().all(|r| r.id == c.id));
    // An update moves the row; a delete removes it.
    db.store
        .update("Slot", &a.id, slot("Schedule/1", "2026-12-02T09:00:00Z", "2026-12-02T09:30:00Z", "busy"), Some(1))
        .await
        .unwrap();
    db.store.delete("Slot", &b.id).await.unwrap();
    assert!(db.store.slots_overlapping(Some("Schedule/1"), at(8, 0), at(12, 0)).await.unwrap().is_empty());
    let moved = db
        .store
        .slots_overlapping(
            Some("Schedule/1"),
            at(8, 0) + chrono::TimeDelta::days(1),
            at(12, 0) + chrono::TimeDelta::days(1),
        )
        .await
        .unwrap();
    assert_eq!(moved[0].status, "busy");
    // A Slot without a usable start is refused and nothing is written.
    let bad = db.store.create("Slot", slot("Schedule/1", "tomorrow", "2026-12-01T09:30:00Z", "free")).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    assert_eq!(db.store.slots_overlapping(None, at(0, 0), at(23, 0)).await.unwrap().len(), 1);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_version_have_one_winner() {
    let db = fresh().await;
    db.store.update("Schedule", "s1", json!({"resourceType": "Schedule", "active": true}), None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store.update("Schedule", "s1", json!({"resourceType": "Schedule", "comment": i.to_string()}), Some(1)).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::VersionConflict { .. }) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(db.store.read("Schedule", "s1").await.unwrap().version_id, 2);
    assert_eq!(db.store.history("Schedule", "s1").await.unwrap().len(), 2);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_without_if_match_all_land_as_versions_or_conflicts() {
    let db = fresh().await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store.update("Task", "t1", json!({"resourceType": "Task", "description": i.to_string()}), None).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            // A writer that lost a race is told so (409 at the API), never with an If-Match it did not send.
            Err(StoreError::Concurrent(..)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let current = db.store.read("Task", "t1").await.unwrap();
    assert_eq!(current.version_id, ok, "every successful write is one version");
    assert_eq!(db.store.history("Task", "t1").await.unwrap().len() as i64, ok);
    db.finish().await;
}

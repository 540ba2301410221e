//! Resources and their versions: create, read, update with `If-Match`, delete, bulk writes, and
//! writers racing.

use calsync_store::testing::TestDatabase;
use calsync_store::{Store, StoreError};
use chrono::{TimeZone, Utc};
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_and_meta() {
    let db = fresh().await;
    let patient = json!({"resourceType": "Patient", "name": [{"family": "Silva"}]});
    let created = db.store.create("Patient", patient, now()).await.unwrap();
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
    let (v1, created) = db
        .store
        .update("Location", "clinic-1", json!({"resourceType": "Location", "name": "A"}), None, now())
        .await
        .unwrap();
    assert!(created);
    assert_eq!(v1.version_id, 1);
    let (v2, created) = db
        .store
        .update("Location", "clinic-1", json!({"resourceType": "Location", "name": "B"}), Some(1), now())
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(v2.version_id, 2);
    let stale =
        db.store.update("Location", "clinic-1", json!({"resourceType": "Location", "name": "C"}), Some(1), now()).await;
    assert!(matches!(stale, Err(StoreError::VersionConflict { expected: 1, current: 2 })), "{stale:?}");
    assert_eq!(db.store.read("Location", "clinic-1").await.unwrap().content["name"], "B");
    assert_eq!(db.store.vread("Location", "clinic-1", 1).await.unwrap().content["name"], "A");
    assert!(matches!(db.store.vread("Location", "clinic-1", 9).await, Err(StoreError::NotFound(..))));
    assert!(matches!(
        db.store.update("Location", "bad id!", json!({"resourceType": "Location"}), None, now()).await,
        Err(StoreError::Invalid(_))
    ));
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_then_gone_history_and_recreate() {
    let db = fresh().await;
    let p = db.store.create("Patient", json!({"resourceType": "Patient"}), now()).await.unwrap();
    db.store.delete("Patient", &p.id, now()).await.unwrap();
    db.store.delete("Patient", &p.id, now()).await.unwrap(); // idempotent
    assert!(matches!(db.store.read("Patient", &p.id).await, Err(StoreError::Gone(..))));
    let history = db.store.history("Patient", &p.id).await.unwrap();
    assert_eq!(history.iter().map(|h| (h.version_id, h.deleted)).collect::<Vec<_>>(), vec![(2, true), (1, false)]);
    let (again, created) =
        db.store.update("Patient", &p.id, json!({"resourceType": "Patient"}), None, now()).await.unwrap();
    assert!(created);
    assert_eq!(again.version_id, 3);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_many_deletes_as_delete_does_in_one_transaction() {
    let db = fresh().await;
    let t = |h: u32| format!("2026-12-07T{h:02}:00:00Z");
    let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    for (n, id) in ids.iter().enumerate() {
        let h = 9 + n as u32;
        db.store.update("Slot", id, slot("Schedule/s", &t(h), &t(h + 1), "busy"), None, now()).await.unwrap();
    }
    db.store.update("Slot", "b", slot("Schedule/s", &t(10), &t(11), "busy-tentative"), None, now()).await.unwrap();
    let from = chrono::DateTime::parse_from_rfc3339(&t(0)).unwrap().to_utc();
    let to = from + chrono::TimeDelta::days(1);
    assert_eq!(db.store.slot_windows(&["Schedule/s".to_string()], from, to).await.unwrap().len(), 3);
    let txn = db.store.begin(now()).await.unwrap();
    // "a" and "b" go; "zz" never existed; "a" twice counts once.
    let asked = vec!["a".to_string(), "b".to_string(), "zz".to_string(), "a".to_string()];
    assert_eq!(txn.delete_many("Slot", &asked).await.unwrap(), 2);
    txn.commit().await.unwrap();
    for id in ["a", "b"] {
        assert!(matches!(db.store.read("Slot", id).await, Err(StoreError::Gone(..))), "{id}");
    }
    let history = db.store.history("Slot", "b").await.unwrap();
    assert_eq!(
        history.iter().map(|h| (h.version_id, h.deleted)).collect::<Vec<_>>(),
        [(3, true), (2, false), (1, false)]
    );
    assert_eq!(history[0].content["meta"]["versionId"], "3");
    // The Slot table and the remembered windows follow (the Schedule's generation moved).
    let left = db.store.slot_windows(&["Schedule/s".to_string()], from, to).await.unwrap();
    assert_eq!(left.len(), 1);
    let rows = db.store.slots_overlapping(Some("Schedule/s"), from, to).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["c"]);
    // Deleting again changes nothing; a recreated one continues the versions.
    let txn = db.store.begin(now()).await.unwrap();
    assert_eq!(txn.delete_many("Slot", &asked).await.unwrap(), 0);
    txn.commit().await.unwrap();
    let (again, created) =
        db.store.update("Slot", "a", slot("Schedule/s", &t(9), &t(10), "busy"), None, now()).await.unwrap();
    assert!(created);
    assert_eq!(again.version_id, 3);
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_of_one_version_have_one_winner() {
    let db = fresh().await;
    db.store.update("Schedule", "s1", json!({"resourceType": "Schedule", "active": true}), None, now()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .update("Schedule", "s1", json!({"resourceType": "Schedule", "comment": i.to_string()}), Some(1), now())
                .await
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
            store.update("Task", "t1", json!({"resourceType": "Task", "description": i.to_string()}), None, now()).await
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_many_writes_new_changes_changed_and_keeps_unchanged() {
    use calsync_store::search::{Direction, SortBy};
    let db = fresh().await;
    let indexer = family_indexer_v1();
    let store = db.store.clone().with_indexer(indexer);
    let batch = |start_of_b: &str| {
        let mut items: Vec<calsync_store::Put> = (0..2500)
            .map(|i| {
                let start = format!("2026-12-07T{:02}:{:02}:00Z", 8 + i / 600, (i / 10) % 60);
                ("Slot".into(), format!("s{i}"), slot("Schedule/a", &start, &start, "free"))
            })
            .collect();
        items.push(("Slot".into(), "b".into(), slot("Schedule/b", start_of_b, "2026-12-08T09:30:00Z", "free")));
        items.push((
            "Patient".into(),
            "silva".into(),
            json!({"resourceType": "Patient", "name": [{"family": "Silva"}]}),
        ));
        items
    };
    assert_eq!(store.put_many(batch("2026-12-08T09:00:00Z"), now()).await.unwrap(), 2502);
    let from = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
    let to = Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap();
    assert_eq!(store.slots_overlapping(Some("Schedule/a"), from, to).await.unwrap().len(), 2500);
    assert_eq!(store.read("Slot", "s2499").await.unwrap().version_id, 1);
    let order = (SortBy::Id, Direction::Ascending);
    assert_eq!(store.search_resources("Patient", &by_family("silva"), order, None, 10).await.unwrap().total, 1);
    // Again with one Slot moved: only that one gets a new version.
    assert_eq!(store.put_many(batch("2026-12-08T09:15:00Z"), now()).await.unwrap(), 1);
    assert_eq!(store.read("Slot", "s7").await.unwrap().version_id, 1);
    assert_eq!(store.read("Slot", "b").await.unwrap().version_id, 2);
    let b = store.slots_overlapping(Some("Schedule/b"), from, to).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].start, Utc.with_ymd_and_hms(2026, 12, 8, 9, 15, 0).unwrap());
    assert_eq!(store.search_resources("Patient", &by_family("silva"), order, None, 10).await.unwrap().total, 1);
    // One id twice, or a bad id: nothing is written.
    let twice = vec![
        ("Patient".to_string(), "x".to_string(), json!({"resourceType": "Patient"})),
        ("Patient".to_string(), "x".to_string(), json!({"resourceType": "Patient"})),
    ];
    assert!(matches!(store.put_many(twice, now()).await, Err(StoreError::Invalid(_))));
    assert!(matches!(store.read("Patient", "x").await, Err(StoreError::NotFound(..))));
    let bad = vec![("Patient".to_string(), "no spaces".to_string(), json!({"resourceType": "Patient"}))];
    assert!(matches!(store.put_many(bad, now()).await, Err(StoreError::Invalid(_))));
    let bad_slot = vec![("Slot".to_string(), "bad".to_string(), json!({"resourceType": "Slot", "status": "free"}))];
    assert!(matches!(store.put_many(bad_slot, now()).await, Err(StoreError::Invalid(_))));
    db.finish().await;
}

/// Ids sort by their bytes on both databases, whatever the database's own collation (migration
/// 000013 on PostgreSQL; docs/benchmarks-log.md, "Keys in byte order"): pages of a search by id come
/// in the same order on SQLite and PostgreSQL, and their cursors neither skip nor repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_sort_by_their_bytes_whatever_the_database_collation() {
    use calsync_store::search::{Cursor, Direction, ResourceSearch, SortBy};
    let database = TestDatabase::create_linguistic().await;
    let store = Store::connect(&database.url).await.unwrap();
    // A linguistic order would put "Ab" among the "a"s and "a-b" after "a0"... not first.
    for id in ["ab", "b", "a0", "Ab", "a.b", "aB", "a-b"] {
        store.update("Location", id, json!({"resourceType": "Location", "name": id}), None, now()).await.unwrap();
    }
    let mut ids = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = store
            .search_resources(
                "Location",
                &ResourceSearch::default(),
                (SortBy::Id, Direction::Ascending),
                after.as_ref(),
                3,
            )
            .await
            .unwrap();
        ids.extend(page.resources.iter().map(|r| r.id.clone()));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(ids, ["Ab", "a-b", "a.b", "a0", "aB", "ab", "b"]);
    store.clone().close().await;
    database.finish().await;
}

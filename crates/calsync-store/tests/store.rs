//! Store behaviour, on SQLite (always) and on PostgreSQL when CALSYNC_TEST_POSTGRES_URL is set
//! (e.g. postgres://root@127.0.0.1:5432/test). Every test gets its own fresh database.

use calsync_store::testing::TestDatabase;
use calsync_store::{Store, StoreError};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

/// The instant these tests write at: the store takes its writers' clock.
fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}

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
        self.store.clone().close().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_range_table_follows_every_write() {
    let db = fresh().await;
    let a = db
        .store
        .create("Slot", slot("Schedule/1", "2026-12-01T09:00:00Z", "2026-12-01T09:30:00Z", "free"), now())
        .await
        .unwrap();
    let b = db
        .store
        .create("Slot", slot("Schedule/1", "2026-12-01T10:00:00+01:00", "2026-12-01T10:30:00+01:00", "free"), now())
        .await
        .unwrap();
    let c = db
        .store
        .create("Slot", slot("Schedule/2", "2026-12-01T09:15:00Z", "2026-12-01T17:00:00Z", "busy"), now())
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
        .update(
            "Slot",
            &a.id,
            slot("Schedule/1", "2026-12-02T09:00:00Z", "2026-12-02T09:30:00Z", "busy"),
            Some(1),
            now(),
        )
        .await
        .unwrap();
    db.store.delete("Slot", &b.id, now()).await.unwrap();
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
    let bad = db.store.create("Slot", slot("Schedule/1", "tomorrow", "2026-12-01T09:30:00Z", "free"), now()).await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))));
    assert_eq!(db.store.slots_overlapping(None, at(0, 0), at(23, 0)).await.unwrap().len(), 1);
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

fn family_index(resource_type: &str, content: &Value) -> calsync_store::Indexed {
    let mut indexed = calsync_store::Indexed::default();
    if resource_type == "Patient"
        && let Some(family) = content["name"][0]["family"].as_str()
    {
        indexed.terms.push(calsync_store::IndexRow {
            param: "family".into(),
            system: String::new(),
            value: family.to_lowercase(),
            raw: family.into(),
        });
    }
    if let Some(day) = content["birthDate"].as_str() {
        let start = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap().and_time(Default::default()).and_utc();
        let low = start.timestamp_millis();
        indexed.dates.push(calsync_store::DateRow { param: "birthdate".into(), low, high: low + 86_400_000 });
    }
    indexed
}

/// [`family_index`] under its first definitions ("v1").
fn family_indexer_v1() -> calsync_store::Indexer {
    calsync_store::Indexer { extract: family_index, fingerprint: || "v1".into(), reads: |_| &["name", "birthDate"] }
}

/// Patients `p0000`… with families `F0`…, as many as asked.
fn patients(n: usize) -> Vec<calsync_store::Put> {
    let patient = |i: usize| json!({"resourceType": "Patient", "name": [{"family": format!("F{i}")}]});
    (0..n).map(|i| ("Patient".to_string(), format!("p{i:04}"), patient(i))).collect()
}

/// How many rows `table` has.
async fn rows_in(store: &Store, table: &str) -> i64 {
    calsync_store::testing::number(store, &format!("SELECT COUNT(*) FROM {table}")).await
}

fn by_family(family: &str) -> calsync_store::search::ResourceSearch {
    use calsync_store::search::{IndexFilter, IndexTerm, Match};
    let term = IndexTerm { system: None, value: Some(family.into()), how: Match::Exact };
    calsync_store::search::ResourceSearch {
        index: vec![IndexFilter::Matches { param: "family".into(), terms: vec![term], negate: false }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_rebuilt_when_its_definitions_change() {
    use calsync_store::search::{DateFilter, DatePrefix, Direction, ResourceSearch, SortBy};
    let db = fresh().await;
    // Written before any index existed.
    let silva = json!({"resourceType": "Patient", "name": [{"family": "Silva"}], "birthDate": "1950-03-02"});
    db.store.update("Patient", "silva", silva, None, now()).await.unwrap();
    let order = (SortBy::Id, Direction::Ascending);
    let v1 = family_indexer_v1();
    let store = Store::connect(&db.database.url).await.unwrap().with_indexer(v1);
    assert_eq!(store.search_resources("Patient", &by_family("silva"), order, None, 10).await.unwrap().total, 0);
    assert_eq!(store.reindex_if_stale().await.unwrap(), Some(1));
    assert_eq!(store.reindex_if_stale().await.unwrap(), None, "built with v1 already");
    assert_eq!(store.search_resources("Patient", &by_family("silva"), order, None, 10).await.unwrap().total, 1);
    let born = |prefix, day: &str| {
        let lo = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap().and_time(Default::default()).and_utc();
        let lo = lo.timestamp_millis();
        ResourceSearch {
            dates: vec![DateFilter { param: "birthdate".into(), any: vec![(prefix, lo, lo + 86_400_000)] }],
            ..Default::default()
        }
    };
    let count = |s: ResourceSearch| {
        let store = store.clone();
        async move { store.search_resources("Patient", &s, order, None, 10).await.unwrap().total }
    };
    assert_eq!(count(born(DatePrefix::Eq, "1950-03-02")).await, 1);
    assert_eq!(count(born(DatePrefix::Gt, "1950-03-02")).await, 0);
    assert_eq!(count(born(DatePrefix::Sa, "1950-03-01")).await, 1);
    assert_eq!(count(born(DatePrefix::Eb, "1950-03-01")).await, 0);
    // Deleted resources leave the index; a new definition rebuilds it.
    store.delete("Patient", "silva", now()).await.unwrap();
    assert_eq!(store.search_resources("Patient", &by_family("silva"), order, None, 10).await.unwrap().total, 0);
    let v2 = calsync_store::Indexer {
        extract: family_index,
        fingerprint: || "v2".into(),
        reads: |_| &["name", "birthDate"],
    };
    let store = Store::connect(&db.database.url).await.unwrap().with_indexer(v2);
    assert_eq!(store.reindex_if_stale().await.unwrap(), Some(0));
    store.clone().close().await;
    db.finish().await;
}

/// Which Schedules have Slots in which week: the boundaries of each week, live Slots only, and
/// every write followed, also another process's (each Schedule's periods are remembered by its
/// Slot generation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_by_period_follow_every_slot_write() {
    let db = fresh().await;
    let week = chrono::TimeDelta::weeks(1);
    let monday = Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap();
    let at = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let put = |id: &'static str, schedule: &'static str, start: chrono::DateTime<Utc>| {
        let store = db.store.clone();
        let body = slot(schedule, &at(start), &at(start + chrono::TimeDelta::minutes(30)), "free");
        async move { store.update("Slot", id, body, None, now()).await.unwrap() }
    };
    put("a1", "Schedule/a", monday + chrono::TimeDelta::hours(9)).await;
    put("a2", "Schedule/a", monday + chrono::TimeDelta::days(4)).await;
    put("a3", "Schedule/a", monday + week * 2 + chrono::TimeDelta::hours(9)).await;
    put("b1", "Schedule/b", monday + week).await;
    put("b0", "Schedule/b", monday - chrono::TimeDelta::minutes(30)).await;
    put("c1", "Schedule/c", monday + week * 3 - chrono::TimeDelta::minutes(1)).await;
    put("c2", "Schedule/c", monday + week * 3).await;
    let named = |pairs: &[(i64, &str)]| pairs.iter().map(|(n, s)| (*n, format!("Schedule/{s}"))).collect::<Vec<_>>();
    let weeks = |store: Store, from: chrono::DateTime<Utc>| async move {
        store.schedules_by_period(from, week, 3, &Default::default()).await.unwrap()
    };
    assert_eq!(weeks(db.store.clone(), monday).await, named(&[(0, "a"), (1, "b"), (2, "a"), (2, "c")]));
    assert_eq!(weeks(db.store.clone(), monday).await, named(&[(0, "a"), (1, "b"), (2, "a"), (2, "c")]), "again");

    // Another process moves a3 to week 1 and deletes b1: both seen at once.
    let other = Store::connect(&db.database.url).await.unwrap();
    let moved = slot("Schedule/a", &at(monday + week + chrono::TimeDelta::hours(1)), &at(monday + week * 2), "busy");
    other.update("Slot", "a3", moved, None, now()).await.unwrap();
    other.delete("Slot", "b1", now()).await.unwrap();
    assert_eq!(weeks(db.store.clone(), monday).await, named(&[(0, "a"), (1, "a"), (2, "c")]));
    // Other weeks asked: counted from their own start.
    assert_eq!(weeks(db.store.clone(), monday - week).await, named(&[(0, "b"), (1, "a"), (2, "a")]));
    // Schedules left out are left out.
    let except = ["Schedule/a".to_string()].into();
    let without_a = db.store.schedules_by_period(monday - week, week, 3, &except).await.unwrap();
    assert_eq!(without_a, named(&[(0, "b")]));
    other.clone().close().await;
    db.finish().await;
}

/// Two processes that start together on a stale index (API replicas, a worker): one rebuilds
/// it, the other then finds it current; every value is indexed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_starting_together_rebuild_the_index_once() {
    use calsync_store::search::{Direction, SortBy};
    let db = fresh().await;
    db.store.put_many(patients(1_500), now()).await.unwrap();
    let indexer = family_indexer_v1();
    let one = Store::connect(&db.database.url).await.unwrap().with_indexer(indexer);
    let other = Store::connect(&db.database.url).await.unwrap().with_indexer(indexer);
    let (a, b) = tokio::join!(one.reindex_if_stale(), other.reindex_if_stale());
    let mut rebuilt = [a.unwrap(), b.unwrap()];
    rebuilt.sort();
    assert_eq!(rebuilt, [None, Some(1_500)]);
    let order = (SortBy::Id, Direction::Ascending);
    let found = one.search_resources("Patient", &by_family("f7"), order, None, 10).await.unwrap();
    assert_eq!((found.total, found.resources.len()), (1, 1));
    assert_eq!(rows_in(&one, "search_index").await, 1_500, "each value indexed once");
    for store in [one, other] {
        store.clone().close().await;
    }
    db.finish().await;
}

/// The rebuild reads the resources a page at a time by `(type, id)`: every resource of every
/// type is indexed once, across pages and from one type to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_rebuilt_page_by_page_across_types() {
    use calsync_store::search::{Direction, SortBy};
    let db = fresh().await;
    let mut items = patients(2_500);
    items
        .extend((0..3).map(|i| ("Organization".to_string(), format!("o{i}"), json!({"resourceType": "Organization"}))));
    items.push((
        "RelatedPerson".into(),
        "r0".into(),
        json!({"resourceType": "RelatedPerson", "birthDate": "1990-01-02"}),
    ));
    assert_eq!(db.store.put_many(items, now()).await.unwrap(), 2_504);
    let indexer = family_indexer_v1();
    let store = Store::connect(&db.database.url).await.unwrap().with_indexer(indexer);
    assert_eq!(store.reindex_if_stale().await.unwrap(), Some(2_504));
    let order = (SortBy::Id, Direction::Ascending);
    for i in [0, 999, 1_000, 1_999, 2_000, 2_499] {
        let found = store.search_resources("Patient", &by_family(&format!("f{i}")), order, None, 10).await.unwrap();
        assert_eq!(found.resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [format!("p{i:04}")]);
    }
    let born = calsync_store::search::ResourceSearch {
        dates: vec![calsync_store::search::DateFilter {
            param: "birthdate".into(),
            any: vec![(calsync_store::search::DatePrefix::Eq, 631_238_400_000, 631_324_800_000)],
        }],
        ..Default::default()
    };
    assert_eq!(store.search_resources("RelatedPerson", &born, order, None, 10).await.unwrap().total, 1);
    store.clone().close().await;
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

/// Two stores on one database stand for the API and a worker in separate processes: windows
/// one remembers are never stale after the other writes, creates, moves or deletes Slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remembered_slot_windows_follow_writes_from_another_process() {
    let db = fresh().await;
    let worker = Store::connect(&db.database.url).await.unwrap();
    let (from, to) =
        (Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap());
    let schedules = vec!["Schedule/ana".to_string(), "Schedule/ben".to_string()];
    let windows = |store: &Store| {
        let (store, schedules) = (store.clone(), schedules.clone());
        async move {
            let mut w: Vec<(usize, String, &str)> = store
                .slot_windows(&schedules, from, to)
                .await
                .unwrap()
                .into_iter()
                .map(|w| (w.schedule, w.start.to_rfc3339(), w.status.map_or("unknown", calsync_core::SlotStatus::code)))
                .collect();
            w.sort();
            w
        }
    };
    assert!(windows(&db.store).await.is_empty());
    let a = worker
        .create("Slot", slot("Schedule/ana", "2026-12-07T14:00:00Z", "2026-12-07T15:00:00Z", "busy"), now())
        .await
        .unwrap();
    assert_eq!(windows(&db.store).await, vec![(0, "2026-12-07T14:00:00+00:00".into(), "busy")]);
    // Unchanged: the same answer (from memory).
    assert_eq!(windows(&db.store).await, vec![(0, "2026-12-07T14:00:00+00:00".into(), "busy")]);
    // A change of status, then a move to the other Schedule, then a deletion, each by the worker.
    let mut tentative = a.content.clone();
    tentative["status"] = json!("busy-tentative");
    worker.update("Slot", &a.id, tentative.clone(), None, now()).await.unwrap();
    assert_eq!(windows(&db.store).await, vec![(0, "2026-12-07T14:00:00+00:00".into(), "busy-tentative")]);
    tentative["schedule"] = json!({"reference": "Schedule/ben"});
    worker.update("Slot", &a.id, tentative, None, now()).await.unwrap();
    assert_eq!(windows(&db.store).await, vec![(1, "2026-12-07T14:00:00+00:00".into(), "busy-tentative")]);
    // Bulk writes count too.
    let bulk: Vec<calsync_store::Put> = (1..=3)
        .map(|d| {
            let (start, end) = (format!("2026-12-0{d}T09:00:00Z"), format!("2026-12-0{d}T10:00:00Z"));
            ("Slot".to_string(), format!("bulk-{d}"), slot("Schedule/ana", &start, &end, "busy"))
        })
        .collect();
    worker.put_many(bulk, now()).await.unwrap();
    assert_eq!(windows(&db.store).await.len(), 4);
    worker.delete("Slot", &a.id, now()).await.unwrap();
    assert_eq!(windows(&db.store).await.iter().filter(|w| w.0 == 1).count(), 0);
    // Only windows overlapping the range come back.
    let early =
        db.store.slot_windows(&schedules, from, Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap()).await.unwrap();
    assert_eq!(early.len(), 1);
    worker.clone().close().await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_connections_are_saved_read_and_updated() {
    let db = fresh().await;
    let mut c = calsync_store::CalendarConnection {
        id: "c1".into(),
        participant: "Patient/maria".into(),
        schedule: "maria-calendar".into(),
        kind: "ics".into(),
        host: "calendar.example.org".into(),
        secret: Some("v1:sealed".into()),
        validator: None,
        state: "new".into(),
        reason: None,
        last_success_ms: None,
        next_run_ms: Some(1),
        attempts: 0,
    };
    db.store.save_calendar_connection(&c).await.unwrap();
    assert_eq!(db.store.calendar_connection("c1").await.unwrap(), c);
    c.state = "needs-reconnect".into();
    c.secret = None;
    c.reason = Some("the grant was revoked".into());
    c.attempts = 3;
    db.store.save_calendar_connection(&c).await.unwrap();
    assert_eq!(db.store.calendar_connections_of("Patient/maria").await.unwrap(), vec![c]);
    assert!(db.store.calendar_connections_of("Patient/other").await.unwrap().is_empty());
    assert!(matches!(db.store.calendar_connection("nope").await, Err(StoreError::NotFound(..))));
    db.finish().await;
}

/// A week of Slots streamed for a published file: every live Slot starting in the range once,
/// whole lines in chunks (more than one here), what the line writer leaves out left out, only
/// what changed since `since` when asked, a deleted Slot never.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_stream_by_start_in_whole_chunks_each_once() {
    use std::collections::HashSet;
    let db = fresh().await;
    let store = &db.store;
    // 4,000 Slots over two Schedules in one week (each line about 250 bytes: 1 MB, four
    // chunks), one the week after and one the week before.
    let mut items: Vec<calsync_store::Put> = (0..4000)
        .map(|i| {
            let start = format!("2026-12-{:02}T{:02}:{:02}:00Z", 7 + i % 7, 8 + (i / 7) % 10, (i / 70) % 60);
            let schedule = if i % 2 == 0 { "Schedule/a" } else { "Schedule/b" };
            ("Slot".into(), format!("s{i}"), slot(schedule, &start, &start.replace(":00Z", ":30Z"), "free"))
        })
        .collect();
    items.push((
        "Slot".into(),
        "next".into(),
        slot("Schedule/a", "2026-12-14T08:00:00Z", "2026-12-14T09:00:00Z", "free"),
    ));
    items.push((
        "Slot".into(),
        "before".into(),
        slot("Schedule/a", "2026-12-06T23:00:00Z", "2026-12-07T01:00:00Z", "free"),
    ));
    store.put_many(items, now()).await.unwrap();
    store.delete("Slot", "s2", now()).await.unwrap();
    let week =
        (Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(2026, 12, 14, 0, 0, 0).unwrap());

    let read = |since| {
        let mut chunks = store.stream_slots_by_start(week.0, week.1, since, |json, out| {
            if !json.contains("Schedule/b") {
                out.extend_from_slice(json.as_bytes());
                out.push(b'\n');
            }
        });
        async move {
            let (mut ids, mut count) = (Vec::new(), 0);
            while let Some(chunk) = chunks.recv().await {
                let chunk = chunk.unwrap();
                assert_eq!(chunk.last(), Some(&b'\n'), "a chunk ends with a whole line");
                count += 1;
                for line in chunk.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let slot: Value = serde_json::from_slice(line).unwrap();
                    ids.push(slot["id"].as_str().unwrap().to_string());
                }
            }
            (ids, count)
        }
    };
    let (ids, chunks) = read(None).await;
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "each Slot once");
    let expected: HashSet<String> = (0..4000).filter(|i| i % 2 == 0 && *i != 2).map(|i| format!("s{i}")).collect();
    assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), expected);
    assert!(chunks > 1, "{chunks} chunks");

    // Changed since a moment: only the Slot written after it.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let since = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let moved = slot("Schedule/a", "2026-12-09T12:00:00Z", "2026-12-09T12:30:00Z", "busy");
    store.update("Slot", "s4", moved, None, now()).await.unwrap();
    assert_eq!(read(Some(since)).await.0, vec!["s4".to_string()]);
    db.finish().await;
}

/// Free Slots overlapping a window include those that began long before it, however they were
/// written: created, changed from busy, or ingested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_slots_in_a_window_include_long_ones_that_began_before_it() {
    let db = fresh().await;
    let at = |d, h| Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap();
    let window = (at(10, 9), at(10, 10));
    for d in [9, 10] {
        let short =
            slot("Schedule/1", &format!("2026-12-{d:02}T09:00:00Z"), &format!("2026-12-{d:02}T09:30:00Z"), "free");
        db.store.update("Slot", &format!("short-{d}"), short, None, now()).await.unwrap();
    }
    // Five days, created.
    let created = slot("Schedule/2", "2026-12-06T00:00:00Z", "2026-12-11T00:00:00Z", "free");
    db.store.update("Slot", "created", created, None, now()).await.unwrap();
    // Ten days, busy, then free.
    let freed = |status| slot("Schedule/3", "2026-12-01T00:00:00Z", "2026-12-11T00:00:00Z", status);
    db.store.update("Slot", "freed", freed("busy"), None, now()).await.unwrap();
    // Three days, ingested.
    let item = calsync_store::Ingest {
        resource_type: "Slot".into(),
        id: "p1.ingested".into(),
        digest: 1,
        content: slot("Schedule/4", "2026-12-08T00:00:00Z", "2026-12-11T00:00:00Z", "free"),
    };
    let items = vec![db.store.prepare_ingest(item, Utc::now()).unwrap()];
    db.store.ingest("p1", 1, items, |_, _| {}, now()).await.unwrap();
    let free = |schedules: &'static [&'static str]| {
        let store = &db.store;
        async move {
            let named: Vec<String> = schedules.iter().map(|s| s.to_string()).collect();
            let named = (!schedules.is_empty()).then_some(named.as_slice());
            store.free_slots(named, window.0, window.1).await.unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(free(&[]).await, ["created", "p1.ingested", "short-10"]);
    db.store.update("Slot", "freed", freed("free"), Some(1), now()).await.unwrap();
    assert_eq!(free(&[]).await, ["freed", "created", "p1.ingested", "short-10"]);
    assert_eq!(free(&["Schedule/1", "Schedule/3"]).await, ["freed", "short-10"]);
    assert_eq!(free(&["Schedule/1"]).await, ["short-10"]);
    db.finish().await;
}

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

/// A resource the store cannot take is refused when its row is made, before any batch: a Slot
/// without a start is a clear error, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingested_slot_without_its_times_is_refused_when_prepared() {
    let db = fresh().await;
    let mut no_start = slot("Schedule/s1", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", "free");
    no_start.as_object_mut().unwrap().remove("start");
    let item = calsync_store::Ingest { resource_type: "Slot".into(), id: "p1.x".into(), digest: 1, content: no_start };
    match db.store.prepare_ingest(item, Utc::now()) {
        Err(StoreError::Invalid(why)) => assert_eq!(why, "Slot.start is required"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let good = slot("Schedule/s1", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", "free");
    let item = calsync_store::Ingest { resource_type: "Slot".into(), id: "p1.y".into(), digest: 2, content: good };
    let row = db.store.prepare_ingest(item, Utc::now()).unwrap();
    let tally = db.store.ingest("p1", 1, vec![row], |_, _| {}, now()).await.unwrap();
    assert_eq!((tally.created, tally.changed, tally.unchanged), (1, 0, 0));
    assert!(matches!(db.store.read("Slot", "p1.x").await, Err(StoreError::NotFound(..))));
    let stored = db.store.read("Slot", "p1.y").await.unwrap();
    assert_eq!((stored.version_id, stored.content["meta"]["versionId"].as_str()), (1, Some("1")));
    db.finish().await;
}

/// A batch whose first and last resources are new is written at once (PostgreSQL: one insert,
/// nothing looked up); one stored id among them sends the batch the way of a poll of what is
/// stored, and every resource still ends up as it should: new ones created, a changed one
/// written as its next version, an unchanged one left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_new_resources_with_stored_ones_among_them_is_stored_whole() {
    let db = fresh().await;
    let row = |id: &str, digest: i64, status: &str| {
        let content = slot("Schedule/s1", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", status);
        let item = calsync_store::Ingest { resource_type: "Slot".into(), id: id.into(), digest, content };
        db.store.prepare_ingest(item, Utc::now()).unwrap()
    };
    let first = db.store.ingest("p1", 1, vec![row("p1.b", 1, "free"), row("p1.d", 4, "free")], |_, _| {}, now()).await;
    assert_eq!(first.unwrap().created, 2);
    let batch = vec![
        row("p1.a", 10, "free"),
        row("p1.b", 2, "busy"),
        row("p1.c", 3, "free"),
        row("p1.d", 4, "free"),
        row("p1.e", 5, "free"),
    ];
    let tally = db.store.ingest("p1", 2, batch, |_, _| {}, now()).await.unwrap();
    assert_eq!((tally.created, tally.changed, tally.unchanged), (3, 1, 1));
    for (id, version, status) in
        [("p1.a", 1, "free"), ("p1.b", 2, "busy"), ("p1.c", 1, "free"), ("p1.d", 1, "free"), ("p1.e", 1, "free")]
    {
        let stored = db.store.read("Slot", id).await.unwrap();
        assert_eq!((stored.version_id, stored.content["status"].as_str()), (version, Some(status)), "{id}");
    }
    // PostgreSQL notes the unchanged one as seen rather than writing its row again.
    let postgres = db.store.backend() == calsync_store::Backend::Postgres;
    assert_eq!(rows_in(&db.store, "ingest_seen").await, i64::from(postgres));
    // All five were seen by poll 2: a full data set of poll 2 removes none of them, and what was
    // noted as seen is forgotten.
    assert_eq!(db.store.ingest_sweep("p1", &["Slot"], 2, now()).await.unwrap(), 0);
    assert_eq!(rows_in(&db.store, "ingest_seen").await, 0);
    // The next full data set lists only a, c and e: b and d go.
    let next = vec![row("p1.a", 10, "free"), row("p1.c", 3, "free"), row("p1.e", 5, "free")];
    let tally = db.store.ingest("p1", 3, next, |_, _| {}, now()).await.unwrap();
    assert_eq!((tally.created, tally.changed, tally.unchanged), (0, 0, 3));
    assert_eq!(db.store.ingest_sweep("p1", &["Slot"], 3, now()).await.unwrap(), 2);
    for (id, live) in [("p1.a", true), ("p1.b", false), ("p1.c", true), ("p1.d", false), ("p1.e", true)] {
        assert_eq!(db.store.read("Slot", id).await.is_ok(), live, "{id}");
    }
    db.finish().await;
}

/// A full data set that lists every other one of 2,500 stored Slots, unchanged: the sweep walks
/// the publisher's ids page by page and removes exactly the ones not listed, across pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_removes_exactly_what_a_full_data_set_did_not_list_across_pages() {
    let db = fresh().await;
    let row = |i: usize| {
        let content = slot("Schedule/s1", "2026-12-07T09:00:00Z", "2026-12-07T09:30:00Z", "free");
        let item =
            calsync_store::Ingest { resource_type: "Slot".into(), id: format!("p1.s{i:04}"), digest: 7, content };
        db.store.prepare_ingest(item, Utc::now()).unwrap()
    };
    let first = db.store.ingest("p1", 1, (0..2_500).map(row).collect(), |_, _| {}, now()).await.unwrap();
    assert_eq!(first.created, 2_500);
    let listed: Vec<usize> = (0..2_500).filter(|i| i % 2 == 0).collect();
    let again = db.store.ingest("p1", 2, listed.iter().map(|i| row(*i)).collect(), |_, _| {}, now()).await.unwrap();
    assert_eq!((again.created, again.changed, again.unchanged), (0, 0, 1_250));
    assert_eq!(db.store.ingest_sweep("p1", &["Slot"], 2, now()).await.unwrap(), 1_250);
    for i in [0, 1, 998, 999, 1_000, 1_001, 1_998, 1_999, 2_000, 2_498, 2_499] {
        assert_eq!(db.store.read("Slot", &format!("p1.s{i:04}")).await.is_ok(), i % 2 == 0, "s{i}");
    }
    // The next full data set lists the same: all unchanged, nothing removed.
    let third = db.store.ingest("p1", 3, listed.iter().map(|i| row(*i)).collect(), |_, _| {}, now()).await.unwrap();
    assert_eq!(third.unchanged, 1_250);
    assert_eq!(db.store.ingest_sweep("p1", &["Slot"], 3, now()).await.unwrap(), 0);
    db.finish().await;
}

/// A SQLite file calsync creates has 8 KB pages (docs/benchmarks.md, "SQLite pages of 8 KB").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_sqlite_file_has_pages_of_8_kb() {
    let db = fresh().await;
    if db.store.backend() == calsync_store::Backend::Sqlite {
        assert_eq!(calsync_store::testing::number(&db.store, "PRAGMA page_size").await, 8192);
    }
    db.finish().await;
}

/// Ids sort by their bytes on both databases, whatever the database's own collation (migration
/// 000013 on PostgreSQL; docs/benchmarks.md, "Keys in byte order"): pages of a search by id come
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

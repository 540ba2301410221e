//! Ingesting a publisher's feed: rows prepared, batches written, sweeps.

use calsync_store::StoreError;
use chrono::Utc;

use crate::harness::*;

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

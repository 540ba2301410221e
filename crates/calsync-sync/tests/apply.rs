//! Applying busy windows on SQLite, and on PostgreSQL when CALSYNC_TEST_POSTGRES_URL is set.

use calsync_core::{BusyInterval, BusyStatus, Interval};
use calsync_store::Store;
use calsync_store::testing::TestDatabase;
use calsync_sync::{Applied, SyncError, apply, slot_prefix};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, d, h, 0, 0).unwrap()
}

fn busy(d: u32, h: u32, status: BusyStatus) -> BusyInterval {
    BusyInterval { interval: Interval::new(at(d, h), at(d, h + 1)), status }
}

fn march() -> Interval {
    Interval::new(at(1, 0), at(31, 0))
}

async fn store_with_maria() -> (Store, TestDatabase) {
    let database = TestDatabase::create().await;
    let store = Store::connect(&database.url).await.unwrap();
    let schedule = json!({"resourceType": "Schedule", "active": true, "actor": [{"reference": "Patient/maria"}]});
    store.update("Schedule", "maria-calendar", schedule, None, chrono::Utc::now()).await.unwrap();
    let clinic = json!({"resourceType": "Schedule", "active": true, "actor": [{"reference": "Location/clinic"}]});
    store.update("Schedule", "clinic", clinic, None, chrono::Utc::now()).await.unwrap();
    (store, database)
}

/// (id, version, status) of every Slot of the Schedule, by id.
async fn slots(store: &Store) -> Vec<(String, i64, String)> {
    let rows = store
        .slots_overlapping(Some("Schedule/maria-calendar"), at(1, 0) - chrono::TimeDelta::days(400), at(31, 0))
        .await
        .unwrap();
    let mut out = Vec::new();
    for r in rows {
        let s = store.read("Slot", &r.id).await.unwrap();
        out.push((r.id, s.version_id, r.status));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_source_replaces_only_its_own_slots_and_unchanged_ones_keep_their_versions() {
    let (store, database) = store_with_maria().await;
    let google = [busy(1, 9, BusyStatus::Busy), busy(2, 9, BusyStatus::Busy)];
    let ics = [busy(3, 14, BusyStatus::BusyTentative)];
    assert_eq!(
        apply(&store, "maria-calendar", "google", &google, march(), chrono::Utc::now()).await.unwrap(),
        Applied { busy: 2, added: 2, removed: 0 }
    );
    assert_eq!(
        apply(&store, "maria-calendar", "ics", &ics, march(), chrono::Utc::now()).await.unwrap(),
        Applied { busy: 1, added: 1, removed: 0 }
    );
    let before = slots(&store).await;
    assert_eq!(before.len(), 3);
    // The same report again changes nothing: same ids, same versions.
    assert_eq!(
        apply(&store, "maria-calendar", "google", &google, march(), chrono::Utc::now()).await.unwrap(),
        Applied { busy: 2, added: 0, removed: 0 }
    );
    assert_eq!(slots(&store).await, before);
    // Google now: the 1st became tentative, the 2nd is gone, the 4th is new; the ICS Slot stays.
    let changed = [busy(1, 9, BusyStatus::BusyTentative), busy(4, 9, BusyStatus::Busy)];
    assert_eq!(
        apply(&store, "maria-calendar", "google", &changed, march(), chrono::Utc::now()).await.unwrap(),
        Applied { busy: 2, added: 2, removed: 1 }
    );
    let after = slots(&store).await;
    let prefix = slot_prefix("google", "Schedule/maria-calendar");
    let google_now: Vec<&(String, i64, String)> = after.iter().filter(|(id, ..)| id.starts_with(&prefix)).collect();
    assert_eq!(google_now.len(), 2);
    assert!(
        google_now.iter().any(|(_, v, s)| *v == 2 && s == "busy-tentative"),
        "the changed one is a new version: {after:?}"
    );
    assert!(after.iter().any(|(id, v, s)| id.starts_with(&slot_prefix("ics", "Schedule/maria-calendar"))
        && *v == 1
        && s == "busy-tentative"));
    // An empty report removes that source's Slots only; a duplicated window is one Slot.
    assert_eq!(apply(&store, "maria-calendar", "google", &[], march(), chrono::Utc::now()).await.unwrap().removed, 2);
    let twice = [busy(5, 9, BusyStatus::Busy), busy(5, 9, BusyStatus::Busy)];
    assert_eq!(
        apply(&store, "maria-calendar", "ics", &twice, march(), chrono::Utc::now()).await.unwrap(),
        Applied { busy: 1, added: 1, removed: 1 }
    );
    assert_eq!(slots(&store).await.len(), 1);
    store.clone().close().await;
    database.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_participants_schedules_take_busy_windows_from_sources_with_plain_names() {
    let (store, database) = store_with_maria().await;
    let one = [busy(1, 9, BusyStatus::Busy)];
    assert!(matches!(
        apply(&store, "clinic", "google", &one, march(), chrono::Utc::now()).await,
        Err(SyncError::NotParticipant(_))
    ));
    for bad in ["", "Google", "a-b", "x".repeat(21).as_str()] {
        assert!(
            matches!(
                apply(&store, "maria-calendar", bad, &one, march(), chrono::Utc::now()).await,
                Err(SyncError::BadSource(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        apply(&store, "nobody", "google", &one, march(), chrono::Utc::now()).await,
        Err(SyncError::Store(_))
    ));
    assert!(slots(&store).await.is_empty(), "nothing was written");
    store.clone().close().await;
    database.finish().await;
}

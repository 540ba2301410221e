//! Slots as the matching core reads them: the range columns, free Slots of a window, busy
//! windows remembered across processes, periods, and the published stream.

use calsync_store::{Store, StoreError};
use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use crate::harness::*;

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

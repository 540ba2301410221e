//! Polls: conditional requests, full data sets, registration, batches, and when the next poll is.

use calsync_links::{Options, register};
use calsync_store::testing::TestDatabase;
use chrono::Utc;
use serde_json::Value;

use crate::harness::*;

#[tokio::test]
async fn polls_are_conditional_and_a_full_set_removes_what_the_publisher_dropped() {
    let (db, store) = fresh().await;
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
    finish(db, &dir).await;
}

#[tokio::test]
async fn a_directory_registers_as_a_file_manifest_and_a_bad_registration_is_refused() {
    let (db, store) = fresh().await;
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
    finish(db, &dir).await;
}

/// The next poll follows `Cache-Control: max-age`, at least a minute and at most a year later,
/// however large or malformed the number.
#[tokio::test]
async fn the_next_poll_is_within_a_minute_and_a_year_whatever_max_age_says() {
    let (db, store) = fresh().await;
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
    finish(db, &dir).await;
}

//! Kill the worker process (SIGKILL) again and again while it syncs a large calendar: the
//! participant's derived Schedule always holds the old set or the new set of busy windows,
//! never a mix, and the job completes when a worker runs on.
//!
//! Real processes (`calsync sync --all`, `calsync worker`), a SQLite file, and an ICS feed
//! over HTTP on loopback.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use calsync_connect::secret::SecretKey;
use calsync_store::Store;
use calsync_sync::connection::{new_connection, source_of};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";
/// Events in the calendar: one every 6 minutes from tomorrow, three weeks of them (a sync that
/// replaces 5,000 busy Slots with 5,000 others: seconds of work in a debug build).
const EVENTS: i64 = 5_000;

fn first_event() -> DateTime<Utc> {
    (Utc::now() + TimeDelta::days(1)).date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc()
}

/// The busy windows (UTC ms) of the calendar whose events start `offset` minutes into each
/// 6-minute block and last `length` minutes.
fn windows(offset: i64, length: i64) -> BTreeSet<(i64, i64)> {
    let first = first_event();
    (0..EVENTS)
        .map(|n| {
            let start = first + TimeDelta::minutes(6 * n + offset);
            (start.timestamp_millis(), (start + TimeDelta::minutes(length)).timestamp_millis())
        })
        .collect()
}

fn calendar(offset: i64, length: i64) -> String {
    let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n");
    let first = first_event();
    let at = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    for n in 0..EVENTS {
        let start = first + TimeDelta::minutes(6 * n + offset);
        s += &format!(
            "BEGIN:VEVENT\r\nUID:{n}-{offset}@test\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Private {n}\r\n\
             DTSTART:{}\r\nDTEND:{}\r\nEND:VEVENT\r\n",
            at(start),
            at(start + TimeDelta::minutes(length))
        );
    }
    s + "END:VCALENDAR\r\n"
}

/// The command, its log appended to `log` (kept for a failing run's record).
fn calsync(args: &[&str], log: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_calsync"));
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
    c.args(args).env("CALSYNC_LOG", "info").stdout(Stdio::null()).stderr(file);
    c
}

/// The busy windows the connection put on the Schedule.
async fn busy(store: &Store) -> BTreeSet<(i64, i64)> {
    let prefix = calsync_sync::slot_prefix(&source_of("big"), "Schedule/big-calendar");
    let rows = store
        .slots_overlapping(
            Some("Schedule/big-calendar"),
            Utc::now() - TimeDelta::days(2),
            Utc::now() + TimeDelta::days(120),
        )
        .await
        .unwrap();
    rows.iter()
        .filter(|r| r.id.starts_with(&prefix))
        .map(|r| (r.start.timestamp_millis(), r.end.timestamp_millis()))
        .collect()
}

/// How many syncs the workers have started, from their log.
fn syncs_started(log: &std::path::Path) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().matches("sync started").count()
}

/// A number in [0, 1) that differs between runs (the kill moments), printed for the record.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_it_syncs_leaves_the_old_or_the_new_set_and_the_job_completes() {
    let dir = std::env::temp_dir().join(format!("calsync-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("calsync.db").display());
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("base.toml"),
        format!(
            "secret_key = \"{KEY}\"\n\n[sync]\nsweep_seconds = 1\nheartbeat_seconds = 1\nconcurrency = 2\n\n\
             [egress]\nprivate_networks = true\n"
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let log = dir.join("calsync.log");

    // The participant, the consent, and a connection to a feed of 20,000 events.
    let store = Store::connect(&url).await.unwrap().with_indexer(calsync_system::INDEXER);
    let schedule = json!({"resourceType": "Schedule", "active": true, "actor": [{"reference": "Patient/big"}]});
    store.update("Schedule", "big-calendar", schedule, None, chrono::Utc::now()).await.unwrap();
    let consent = calsync_fhir::consent::permit("Patient/big", "Patient/big");
    store.update("Consent", "big-sync", consent, None, chrono::Utc::now()).await.unwrap();
    let body = Arc::new(Mutex::new(calendar(0, 3)));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let feed_url = format!("http://127.0.0.1:{}/feed.ics", listener.local_addr().unwrap().port());
    let served = body.clone();
    let server = HttpServer::new(move || {
        let served = served.clone();
        App::new().default_service(web::to(move || {
            let text = served.lock().unwrap().clone();
            async move { HttpResponse::Ok().content_type("text/calendar").body(text) }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    let key = SecretKey::from_base64(KEY).unwrap();
    let connection = new_connection(
        &key,
        "big",
        "Patient/big",
        "big-calendar",
        "ics",
        "127.0.0.1",
        &json!({"url": feed_url}),
        Utc::now(),
    );
    store.save_calendar_connection(&connection).await.unwrap();

    // The old set, by a complete run; how long it took sets when the kills land.
    let started = std::time::Instant::now();
    let status = calsync(&["sync", "--all", "--config", &config, "--database", &url], &log).status().unwrap();
    assert!(status.success());
    let sync_ms = started.elapsed().as_millis() as f64;
    let old = windows(0, 3);
    assert!(busy(&store).await == old, "the first run stored the calendar");

    // The calendar changes completely, again and again: each round a worker is killed at a
    // random moment of the sync (the fetch, the parse, the apply, or after the commit).
    let sets = [old, windows(3, 2)];
    let bodies = [calendar(0, 3), calendar(3, 2)];
    let (mut current, mut rounds) = (0usize, Vec::new());
    for round in 0..8 {
        let target = 1 - current;
        *body.lock().unwrap() = bodies[target].clone();
        store.make_connections_due(Utc::now()).await.unwrap();
        // The worker picks the job up at once, or once apalis has handed a dead worker's job on
        // (three missed heartbeats).
        let before = syncs_started(&log);
        let worker = Killed(calsync(&["worker", "--config", &config, "--database", &url], &log).spawn().unwrap());
        for _ in 0..300 {
            if syncs_started(&log) > before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(syncs_started(&log) > before, "the worker did not start the sync within 15 s");
        // The kills spread over one and a half syncs, one at random in each eighth of that: the
        // early ones land before the commit however fast this machine syncs.
        let wait = Duration::from_millis(((round as f64 + random_unit()) / 8.0 * sync_ms * 1.5) as u64);
        tokio::time::sleep(wait).await;
        drop(worker);
        let now = busy(&store).await;
        let found = sets.iter().position(|set| *set == now);
        assert!(
            found.is_some(),
            "after a kill {wait:?} into the sync: {} windows, {} of the old set, {} of the new",
            now.len(),
            now.intersection(&sets[current]).count(),
            now.intersection(&sets[target]).count()
        );
        let found = found.unwrap();
        // The connection says what happened: still syncing (and due), or synced (a kill between
        // the commit and the status leaves it syncing and due: the next run changes nothing).
        let state = store.calendar_connection("big").await.unwrap().state;
        let expected: &[&str] = if found == current { &["syncing"] } else { &["ok", "syncing"] };
        assert!(expected.contains(&state.as_str()), "after a kill {wait:?} into the sync: {state}");
        rounds.push((wait.as_millis(), if found == current { "interrupted" } else { "completed" }));
        current = found;
    }
    println!("kills (ms into the sync, outcome): {rounds:?}");
    assert!(rounds.iter().any(|r| r.1 == "interrupted"), "no kill landed before a commit: {rounds:?}");

    // A worker that is left running finishes the job.
    let target = 1 - current;
    *body.lock().unwrap() = bodies[target].clone();
    store.make_connections_due(Utc::now()).await.unwrap();
    let started = Utc::now();
    let _worker = Killed(calsync(&["worker", "--config", &config, "--database", &url], &log).spawn().unwrap());
    for _ in 0..1200 {
        let c = store.calendar_connection("big").await.unwrap();
        if c.last_success_ms > Some(started.timestamp_millis()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = store.calendar_connection("big").await.unwrap();
    assert_eq!(c.state, "ok", "{:?}", c.reason);
    assert!(c.last_success_ms > Some(started.timestamp_millis()), "the job did not complete within 2 minutes");
    let now = busy(&store).await;
    assert!(now == sets[target], "{} windows, {} of the new set", now.len(), now.intersection(&sets[target]).count());
    assert!(c.next_run_ms.unwrap() > started.timestamp_millis(), "the connection is not due any more");
    drop(_worker);
    store.clone().close().await;
    if std::env::var_os("CALSYNC_KEEP_TEST_FILES").is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
}

//! The worker end to end: the apalis queue in a fresh database (SQLite; PostgreSQL when
//! CALSYNC_TEST_POSTGRES_URL is set), ICS feeds over real HTTP on loopback.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use calsync_connect::caldav::CalDav;
use calsync_connect::egress::Egress;
use calsync_connect::ics::IcsFeed;
use calsync_connect::retry::Backoff;
use calsync_connect::secret::SecretKey;
use calsync_store::testing::TestDatabase;
use calsync_store::{CalendarConnection, Store};
use calsync_sync::connection::{Connectors, ProviderLimits, SyncSettings, new_connection};
use calsync_worker::{Queue, WorkerSettings};
use chrono::{TimeDelta, Utc};
use serde_json::json;

const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";

/// Feeds at `/{n}`: each answers after a pause, counting how many requests are in flight at
/// once; `/flaky` fails with 503 (Retry-After: 1) until it has been asked `failures` times.
#[derive(Default)]
struct Feeds {
    in_flight: AtomicUsize,
    most_at_once: AtomicUsize,
    requests: AtomicUsize,
    flaky_failures_left: Mutex<u32>,
}

fn calendar(hour: u32) -> String {
    let day = (Utc::now() + TimeDelta::days(2)).date_naive().and_hms_opt(hour, 0, 0).unwrap().and_utc();
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:{hour}@test\r\nDTSTAMP:20260101T000000Z\r\n\
         DTSTART:{}\r\nDTEND:{}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        day.format("%Y%m%dT%H%M%SZ"),
        (day + TimeDelta::minutes(30)).format("%Y%m%dT%H%M%SZ")
    )
}

async fn feed(req: HttpRequest, feeds: web::Data<Feeds>) -> HttpResponse {
    feeds.requests.fetch_add(1, Ordering::SeqCst);
    if req.path() == "/flaky" {
        let mut left = feeds.flaky_failures_left.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return HttpResponse::ServiceUnavailable().insert_header(("Retry-After", "1")).finish();
        }
    }
    let now = feeds.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    feeds.most_at_once.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    feeds.in_flight.fetch_sub(1, Ordering::SeqCst);
    HttpResponse::Ok().content_type("text/calendar").body(calendar(9))
}

fn serve(feeds: web::Data<Feeds>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || App::new().app_data(feeds.clone()).default_service(web::to(feed)))
        .workers(2)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    base
}

async fn participant(store: &Store) {
    let schedule = json!({"resourceType": "Schedule", "active": true, "actor": [{"reference": "Patient/maria"}]});
    store.update("Schedule", "maria-calendar", schedule, None, chrono::Utc::now()).await.unwrap();
    let consent = calsync_fhir::consent::permit("Patient/maria", "Patient/maria");
    store.update("Consent", "maria-sync", consent, None, chrono::Utc::now()).await.unwrap();
}

async fn connect(store: &Store, key: &SecretKey, id: &str, url: &str) {
    let c = new_connection(
        key,
        id,
        "Patient/maria",
        "maria-calendar",
        "ics",
        "127.0.0.1",
        &json!({"url": url}),
        Utc::now(),
    );
    store.save_calendar_connection(&c).await.unwrap();
}

/// Sync settings for ICS feeds on loopback: at most two feeds at once (although a worker may run
/// more syncs), quick retries.
fn sync_settings(key: SecretKey) -> SyncSettings {
    let timeout = Duration::from_secs(5);
    SyncSettings {
        key,
        connectors: Connectors {
            ics: IcsFeed::new(timeout, Egress::unrestricted()).unwrap(),
            caldav: CalDav::new(timeout, Egress::unrestricted()).unwrap(),
            google: None,
            microsoft: None,
        },
        horizon: TimeDelta::days(30),
        interval: TimeDelta::hours(24),
        backoff: Backoff { base: Duration::from_millis(200), max: Duration::from_secs(2) },
        limits: ProviderLimits::each(2, 1, 1, 1),
    }
}

/// A worker running on `store` until the returned sender is used (then await the handle).
fn start_worker(
    store: &Store,
    sync: Option<SyncSettings>,
    settings: WorkerSettings,
) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<Result<(), calsync_worker::WorkerError>>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let clock: calsync_worker::Clock = Arc::new(Utc::now);
    let worker = tokio::spawn(calsync_worker::run(store.clone(), sync, settings, clock, async move {
        let _ = stopped.await;
    }));
    (stop, worker)
}

/// Waits until a worker polled publisher `id` (the example feed of `tests/fixtures/ssl-v1`), or
/// fails after 20 s; then checks that poll: ok, its 300 Slots ingested, not due for minutes.
async fn until_polled(store: &Store, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let polled = loop {
        let p = store.publisher(id).await.unwrap();
        if p.state != "new" {
            break p;
        }
        assert!(std::time::Instant::now() < deadline, "the publisher was never polled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!((polled.state.as_str(), polled.polls), ("ok", 1));
    assert_eq!(store.ingested_contents(id, "Slot").await.unwrap().len(), 300);
    assert!(polled.next_run_ms.unwrap() > Utc::now().timestamp_millis() + 4 * 60_000, "not again for minutes");
}

/// Waits until `done` holds for every connection in `ids`, or fails after 30 s.
async fn until(store: &Store, ids: &[String], what: &str, done: impl Fn(&CalendarConnection) -> bool) {
    for _ in 0..300 {
        let mut all = true;
        for id in ids {
            all &= done(&store.calendar_connection(id).await.unwrap());
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let states: Vec<_> = {
        let mut v = Vec::new();
        for id in ids {
            let c = store.calendar_connection(id).await.unwrap();
            v.push((c.id, c.state, c.reason, c.next_run_ms));
        }
        v
    };
    panic!("not {what} within 30 s: {states:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_syncs_what_is_due_within_provider_limits_retries_and_syncs_all_on_demand() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CALSYNC_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let database = TestDatabase::create().await;
    let store = Store::connect(&database.url).await.unwrap().with_indexer(calsync_system::INDEXER);
    participant(&store).await;
    let feeds = web::Data::new(Feeds { flaky_failures_left: Mutex::new(2), ..Default::default() });
    let base = serve(feeds.clone());
    let key = SecretKey::from_base64(KEY).unwrap();
    let mut ids: Vec<String> = (0..6).map(|n| format!("feed-{n}")).collect();
    for (n, id) in ids.iter().enumerate() {
        connect(&store, &key, id, &format!("{base}{n}")).await;
    }
    connect(&store, &key, "flaky", &format!("{base}flaky")).await;
    let sync = sync_settings(key);
    let settings = WorkerSettings {
        concurrency: 8,
        sweep: Duration::from_millis(300),
        heartbeat: Duration::from_secs(1),
        nightly: None,
        name: calsync_worker::worker_name(),
        egress: Egress::public(),
    };
    let (stop, worker) = start_worker(&store, Some(sync), settings);

    // Due at creation: the sweep queues them, the worker syncs them.
    until(&store, &ids, "synced", |c| c.state == "ok").await;
    assert_eq!(feeds.most_at_once.load(Ordering::SeqCst), 2, "the ICS limit is 2 at once");
    // The flaky feed failed twice (503 with Retry-After: 1) and was retried by the sweep.
    ids.push("flaky".into());
    until(&store, &ids, "synced after retries", |c| c.state == "ok").await;
    assert_eq!(feeds.requests.load(Ordering::SeqCst), 6 + 3, "each feed once, the flaky one three times");
    let first: Vec<i64> = {
        let mut v = Vec::new();
        for id in &ids {
            let c = store.calendar_connection(id).await.unwrap();
            assert!(c.next_run_ms.unwrap() > Utc::now().timestamp_millis() + 23 * 3_600_000, "next run in a day");
            v.push(c.last_success_ms.unwrap());
        }
        v
    };
    let busy = store
        .slots_overlapping(Some("Schedule/maria-calendar"), Utc::now(), Utc::now() + TimeDelta::days(30))
        .await
        .unwrap();
    assert_eq!(busy.len(), 7, "the same event from seven connections: one busy Slot from each");

    // Nothing is due: sweeps queue nothing more.
    let asked = feeds.requests.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(feeds.requests.load(Ordering::SeqCst), asked);

    // Sync all on demand (what the nightly run does): each connection once more.
    let mut queue = Queue::open(&store, Duration::from_secs(1)).await.unwrap();
    assert_eq!(queue.sync_all(&store, Utc::now()).await.unwrap(), 7);
    let last = first.clone();
    let ids_and_last: Vec<(String, i64)> = ids.iter().cloned().zip(last).collect();
    for (id, before) in &ids_and_last {
        until(&store, std::slice::from_ref(id), "synced again", |c| c.last_success_ms > Some(*before)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(feeds.requests.load(Ordering::SeqCst), asked + 7, "queued once each, however many sweeps ran");

    // A SMART Scheduling Links publisher registered now is polled by the same worker.
    let registered = register_example_feed(&store).await;
    until_polled(&store, &registered.id).await;

    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    store.clone().close().await;
    database.finish().await;
}

/// Registers the SMART Scheduling Links v1 example set (tests/fixtures/ssl-v1) as a publisher.
async fn register_example_feed(store: &Store) -> calsync_store::Publisher {
    let feed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/ssl-v1");
    calsync_links::register(store, feed.to_str().unwrap(), Default::default(), Utc::now()).await.unwrap()
}

/// A worker without a `secret_key` (a deployment that only ingests providers' feeds) polls
/// publishers, and leaves calendar connections alone: it cannot open their credentials, so its
/// sweep queues none of them, and it has no nightly run to make them due. A worker with the key
/// then syncs them at once (had the first queued and failed a job, its key would block the
/// second's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_without_a_secret_key_polls_publishers_only() {
    let database = TestDatabase::create().await;
    let store = Store::connect(&database.url).await.unwrap().with_indexer(calsync_system::INDEXER);
    participant(&store).await;
    let feeds = web::Data::new(Feeds::default());
    let base = serve(feeds.clone());
    // Saved by a process that has the key; due at once.
    connect(&store, &SecretKey::from_base64(KEY).unwrap(), "feed-0", &format!("{base}0")).await;
    let before = store.calendar_connection("feed-0").await.unwrap();
    let registered = register_example_feed(&store).await;
    let settings = WorkerSettings {
        concurrency: 4,
        sweep: Duration::from_millis(200),
        heartbeat: Duration::from_secs(1),
        // Every second: a nightly run here would make the connection due and queue it.
        nightly: Some(calsync_worker::Nightly::parse("* * * * * *", "UTC").unwrap()),
        name: calsync_worker::worker_name(),
        egress: Egress::public(),
    };
    let (stop, worker) = start_worker(&store, None, settings.clone());

    until_polled(&store, &registered.id).await;
    // Sweeps and nightly ticks go by: the connection is neither synced nor tried.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = store.calendar_connection("feed-0").await.unwrap();
    assert_eq!(feeds.requests.load(Ordering::SeqCst), 0, "its calendar was never fetched");
    assert_eq!((after.state, after.next_run_ms, after.last_success_ms), (before.state, before.next_run_ms, None));
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();

    let settings = WorkerSettings { nightly: None, name: calsync_worker::worker_name(), ..settings };
    let (stop, worker) = start_worker(&store, Some(sync_settings(SecretKey::from_base64(KEY).unwrap())), settings);
    until(&store, &["feed-0".to_string()], "synced by the worker with the key", |c| c.state == "ok").await;
    assert_eq!(feeds.requests.load(Ordering::SeqCst), 1);
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    store.clone().close().await;
    database.finish().await;
}

/// A sweep queues a newly due connection beside one queued already and not yet run (on
/// PostgreSQL apalis inserts a batch without skipping taken keys: the queued one is left out
/// first, or the whole batch would fail), and queues nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_queues_what_is_new_beside_what_is_queued_already() {
    let database = TestDatabase::create().await;
    let store = Store::connect(&database.url).await.unwrap().with_indexer(calsync_system::INDEXER);
    participant(&store).await;
    let key = SecretKey::from_base64(KEY).unwrap();
    let mut queue = Queue::open(&store, Duration::from_secs(1)).await.unwrap();
    connect(&store, &key, "first", "http://127.0.0.1:9/first").await;
    let now = Utc::now() + TimeDelta::seconds(1);
    assert_eq!(queue.sweep(&store, now).await.unwrap(), 1);
    // No worker runs: "first" stays queued, and due. A second connection falls due beside it.
    connect(&store, &key, "second", "http://127.0.0.1:9/second").await;
    assert_eq!(queue.sweep(&store, now).await.unwrap(), 2, "both due; the sweep does not fail on the queued one");
    assert_eq!(queue.sweep(&store, now).await.unwrap(), 2, "and again");
    if store.backend() == calsync_store::Backend::Postgres {
        let keys: Vec<String> =
            store.connections_due(now, 10).await.unwrap().into_iter().map(|(id, due)| format!("{id}@{due}")).collect();
        let queued = store.queued_job_keys("calsync-sync", &keys).await.unwrap();
        assert_eq!(queued.len(), 2, "both queued: {queued:?}");
    }
    store.clone().close().await;
    database.finish().await;
}

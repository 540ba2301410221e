//! Syncing calendar connections end to end: real HTTP on loopback (an ICS feed server and the
//! Google and Microsoft emulators), a fresh database (SQLite; PostgreSQL when
//! CALSYNC_TEST_POSTGRES_URL is set), consent, failures, and what ends up on disk.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use calsync_connect::caldav::CalDav;
use calsync_connect::egress::Egress;
use calsync_connect::google::{GoogleCalendar, GoogleEndpoints, OAuthClient};
use calsync_connect::ics::IcsFeed;
use calsync_connect::microsoft::{MicrosoftCalendar, MicrosoftEndpoints};
use calsync_connect::retry::Backoff;
use calsync_connect::secret::SecretKey;
use calsync_store::testing::TestDatabase;
use calsync_store::{CalendarConnection, Store};
use calsync_sync::connection::{Connectors, ProviderLimits, SyncSettings, source_of, sync_connection};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn day(n: i64, hour: u32) -> String {
    let d = (now() + TimeDelta::days(n)).date_naive().and_hms_opt(hour, 0, 0).unwrap().and_utc();
    d.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A feed whose events carry everything calsync must never keep.
fn private_calendar() -> String {
    let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n");
    for (n, d) in [3, 4].iter().enumerate() {
        s += &format!(
            "BEGIN:VEVENT\r\nUID:{n}@test\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Oncology with Dr House\r\nDESCRIPTION:bring scans\r\nLOCATION:Ward 7 Princeton\r\nATTENDEE;CN=Greg House:mailto:house@example.org\r\nDTSTART:{}\r\nDTEND:{}\r\nEND:VEVENT\r\n",
            day(*d, 14),
            day(*d, 15)
        );
    }
    s + "END:VCALENDAR\r\n"
}

#[derive(Clone)]
struct Feed {
    body: Arc<Mutex<String>>,
    /// When set, the feed answers this status (with `Retry-After: 60` on 503) instead.
    failing: Arc<Mutex<Option<u16>>>,
}

async fn feed(req: HttpRequest, feed: web::Data<Feed>) -> HttpResponse {
    if let Some(code) = *feed.failing.lock().unwrap() {
        let mut r = HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap());
        if code == 503 {
            r.insert_header(("Retry-After", "60"));
        }
        return r.finish();
    }
    let body = feed.body.lock().unwrap().clone();
    let etag = format!("\"{}\"", body.len());
    if req.headers().get("If-None-Match").and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return HttpResponse::NotModified().finish();
    }
    HttpResponse::Ok().content_type("text/calendar").insert_header(("ETag", etag)).body(body)
}

fn serve(configure: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
    let server =
        HttpServer::new(move || App::new().configure(configure.clone())).workers(1).listen(listener).unwrap().run();
    tokio::spawn(server);
    base
}

struct World {
    store: Store,
    database: TestDatabase,
    settings: SyncSettings,
    google: calsync_emulators::google::Shared,
    microsoft: calsync_emulators::microsoft::Shared,
}

async fn world() -> World {
    let database = TestDatabase::create().await;
    let store = Store::connect(&database.url).await.unwrap().with_indexer(calsync_system::INDEXER);
    let schedule = json!({"resourceType": "Schedule", "active": true, "actor": [{"reference": "Patient/maria"}]});
    store.update("Schedule", "maria-calendar", schedule, None, chrono::Utc::now()).await.unwrap();
    let consent = calsync_fhir::consent::permit("Patient/maria", "Patient/maria");
    store.update("Consent", "maria-sync", consent, None, chrono::Utc::now()).await.unwrap();
    let google = calsync_emulators::google::State::new("calsync", "secret");
    let microsoft = calsync_emulators::microsoft::State::new("calsync", "secret");
    let (g, m) = (google.clone(), microsoft.clone());
    let google_base = serve(move |cfg| calsync_emulators::google::routes(g.clone())(cfg));
    let graph_base = serve(move |cfg| calsync_emulators::microsoft::routes(m.clone())(cfg));
    let oauth = OAuthClient { id: "calsync".into(), secret: "secret".into() };
    let timeout = Duration::from_secs(3);
    let connectors = Connectors {
        ics: IcsFeed::new(timeout, Egress::unrestricted()).unwrap(),
        caldav: CalDav::new(timeout, Egress::unrestricted()).unwrap(),
        google: Some(
            GoogleCalendar::new(
                GoogleEndpoints {
                    api: google_base.parse().unwrap(),
                    token: format!("{google_base}token").parse().unwrap(),
                },
                oauth.clone(),
                timeout,
            )
            .unwrap(),
        ),
        microsoft: Some(
            MicrosoftCalendar::new(
                MicrosoftEndpoints {
                    graph: graph_base.parse().unwrap(),
                    token: format!("{graph_base}common/oauth2/v2.0/token").parse().unwrap(),
                },
                oauth,
                timeout,
            )
            .unwrap(),
        ),
    };
    let settings = SyncSettings {
        key: SecretKey::from_base64(KEY).unwrap(),
        connectors,
        horizon: TimeDelta::days(90),
        interval: TimeDelta::hours(24),
        backoff: Backoff { base: Duration::from_secs(30), max: Duration::from_secs(3600) },
        limits: ProviderLimits::default(),
    };
    World { store, database, settings, google, microsoft }
}

impl World {
    async fn connect(&self, id: &str, kind: &str, secret: serde_json::Value) {
        let c = CalendarConnection {
            id: id.into(),
            participant: "Patient/maria".into(),
            schedule: "maria-calendar".into(),
            kind: kind.into(),
            host: "127.0.0.1".into(),
            secret: Some(self.settings.key.seal(&secret.to_string(), id)),
            validator: None,
            state: "new".into(),
            reason: None,
            last_success_ms: None,
            next_run_ms: None,
            attempts: 0,
        };
        self.store.save_calendar_connection(&c).await.unwrap();
    }

    async fn sync(&self, id: &str) -> CalendarConnection {
        sync_connection(&self.store, &self.settings, id, now()).await.unwrap()
    }

    /// Busy Slots the connection put on the derived Schedule.
    async fn busy(&self, id: &str) -> usize {
        let prefix = calsync_sync::slot_prefix(&source_of(id), "Schedule/maria-calendar");
        let rows = self
            .store
            .slots_overlapping(
                Some("Schedule/maria-calendar"),
                now() - TimeDelta::days(5),
                now() + TimeDelta::days(400),
            )
            .await
            .unwrap();
        rows.iter().filter(|r| r.id.starts_with(&prefix)).count()
    }

    /// On SQLite, the database files (main and write-ahead log) contain none of `secrets`.
    fn assert_database_lacks(&self, secrets: &[&str]) {
        let Some(path) = self.database.url.strip_prefix("sqlite://").map(|p| p.split('?').next().unwrap().to_string())
        else {
            return;
        };
        let mut bytes = Vec::new();
        for file in [path.clone(), format!("{path}-wal")] {
            bytes.extend(std::fs::read(&file).unwrap_or_default());
        }
        assert!(!bytes.is_empty());
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} is in the database");
        }
    }

    async fn finish(self) {
        self.store.clone().close().await;
        self.database.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ics_connection_syncs_keeps_nothing_private_survives_a_bad_feed_and_is_purged_without_consent() {
    let w = world().await;
    let body = Arc::new(Mutex::new(private_calendar()));
    let failing = Arc::new(Mutex::new(None));
    let state = Feed { body: body.clone(), failing: failing.clone() };
    let base = serve(move |cfg| {
        cfg.app_data(web::Data::new(state.clone())).default_service(web::to(feed));
    });
    w.connect("c1", "ics", json!({"url": format!("{base}private/TOKEN-5f3a9/maria.ics")})).await;
    let c = w.sync("c1").await;
    assert_eq!((c.state.as_str(), c.reason.as_deref()), ("ok", None));
    assert!(c.last_success_ms.is_some() && c.next_run_ms.is_some() && c.validator.is_some());
    assert_eq!(w.busy("c1").await, 2);
    // Unchanged: a conditional request, nothing rewritten.
    assert_eq!(w.sync("c1").await.state, "ok");
    assert_eq!(w.busy("c1").await, 2);
    // The fault matrix: each failure sets the state, and the previous busy data stays.
    for (code, state, retry_at_least) in [
        (503, "error", Some(60)),
        (500, "error", Some(0)),
        (410, "error", Some(0)),
        (404, "error", Some(0)),
        (401, "needs-reconnect", None),
    ] {
        *failing.lock().unwrap() = Some(code);
        let c = w.sync("c1").await;
        assert_eq!(c.state, state, "{code}: {:?}", c.reason);
        match retry_at_least {
            Some(s) => {
                assert!(c.next_run_ms.unwrap() >= (now() + TimeDelta::seconds(s - 1)).timestamp_millis(), "{code}")
            }
            None => assert_eq!(c.next_run_ms, None, "{code}: no retry until the participant reconnects"),
        }
        assert_eq!(w.busy("c1").await, 2, "{code}: the busy data is intact");
    }
    *failing.lock().unwrap() = None;
    assert_eq!(w.sync("c1").await.state, "ok", "and it recovers");
    // A broken feed is reported on the connection and the previous busy data stays.
    *body.lock().unwrap() = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n".into();
    let c = w.sync("c1").await;
    assert_eq!(c.state, "error");
    assert!(c.reason.as_deref().unwrap().contains("cannot be read"), "{:?}", c.reason);
    assert!(!c.reason.as_deref().unwrap().contains("TOKEN-5f3a9"), "no token in the reason");
    assert_eq!(w.busy("c1").await, 2);
    // Privacy: nothing of the events and no token is anywhere in the database files.
    w.assert_database_lacks(&["Oncology", "House", "scans", "Ward 7", "house@example.org", "TOKEN-5f3a9", "maria.ics"]);
    // Consent withdrawn: the next sync deletes the busy Slots and the credentials.
    let mut consent = w.store.read("Consent", "maria-sync").await.unwrap().content;
    consent["status"] = json!("inactive");
    w.store.update("Consent", "maria-sync", consent, None, chrono::Utc::now()).await.unwrap();
    let c = w.sync("c1").await;
    assert_eq!(c.state, "consent-withdrawn");
    assert!(c.secret.is_none() && c.reason.as_deref().unwrap().contains("2 busy windows"), "{:?}", c.reason);
    assert_eq!(w.busy("c1").await, 0);
    assert_eq!(w.store.calendar_connection("c1").await.unwrap().secret, None);
    w.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_connections_sync_rotate_their_tokens_and_wait_for_a_reconnect_when_revoked() {
    let w = world().await;
    let soon = |d: i64| now() + TimeDelta::days(d);
    w.google.lock().unwrap().add_account(
        "maria@example.com",
        "google-refresh",
        calsync_emulators::google::Account { busy: vec![(soon(2), soon(2) + TimeDelta::hours(1))] },
    );
    {
        let mut m = w.microsoft.lock().unwrap();
        m.refresh_tokens.insert("graph-refresh".into(), "maria".into());
        let event = |d: i64| calsync_emulators::microsoft::Event {
            start: soon(d),
            end: soon(d) + TimeDelta::hours(1),
            show_as: "busy".into(),
            all_day: false,
            cancelled: false,
            subject: "Chemo".into(),
        };
        m.mailboxes.insert("maria".into(), vec![event(5), event(6)]);
    }
    w.connect("g1", "google", json!({"refresh_token": "google-refresh"})).await;
    w.connect("m1", "microsoft", json!({"refresh_token": "graph-refresh"})).await;
    assert_eq!(w.sync("g1").await.state, "ok");
    assert_eq!(w.busy("g1").await, 1);
    let m = w.sync("m1").await;
    assert_eq!(m.state, "ok");
    assert_eq!(w.busy("m1").await, 2);
    // Microsoft rotated the refresh token: the stored one is the new one (the old one is dead),
    // so the next sync signs in again.
    let stored: serde_json::Value =
        serde_json::from_str(&w.settings.key.open(m.secret.as_deref().unwrap(), "m1").unwrap()).unwrap();
    assert_ne!(stored["refresh_token"], "graph-refresh");
    assert_eq!(w.sync("m1").await.state, "ok");
    // Neither refresh token, old or rotated, nor an event subject is in the database in clear.
    let current: serde_json::Value = serde_json::from_str(
        &w.settings
            .key
            .open(w.store.calendar_connection("m1").await.unwrap().secret.as_deref().unwrap(), "m1")
            .unwrap(),
    )
    .unwrap();
    w.assert_database_lacks(&["google-refresh", "graph-refresh", current["refresh_token"].as_str().unwrap(), "Chemo"]);
    // Google revokes the grant: needs-reconnect, no retry scheduled, busy data kept.
    w.google.lock().unwrap().refresh_tokens.clear();
    let g = w.sync("g1").await;
    assert_eq!((g.state.as_str(), g.next_run_ms), ("needs-reconnect", None));
    assert_eq!(w.busy("g1").await, 1);
    // A rate limit: an error with a retry no sooner than the server asked.
    w.microsoft
        .lock()
        .unwrap()
        .faults
        .push_back(Some(calsync_emulators::microsoft::Fault::Throttled { retry_after: 120 }));
    let m = w.sync("m1").await;
    assert_eq!(m.state, "error");
    assert!(m.next_run_ms.unwrap() >= (now() + TimeDelta::seconds(119)).timestamp_millis());
    assert_eq!(w.busy("m1").await, 2);
    // A server asking for more time than a date can hold: a week, and no panic.
    w.microsoft
        .lock()
        .unwrap()
        .faults
        .push_back(Some(calsync_emulators::microsoft::Fault::Throttled { retry_after: 9_000_000_000_000 }));
    let m = w.sync("m1").await;
    assert_eq!(m.state, "error");
    let week = (now() + TimeDelta::days(7)).timestamp_millis();
    assert!((week - 60_000..=week + 60_000).contains(&m.next_run_ms.unwrap()), "{:?}", m.next_run_ms);
    assert_eq!(w.busy("m1").await, 2);
    w.finish().await;
}

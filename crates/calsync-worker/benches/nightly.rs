//! The nightly run for 10,000 participants (`make bench-nightly`): a third each on emulated
//! Google, emulated Microsoft Graph and ICS feeds, all served on loopback in this process, into
//! a fresh SQLite file, through the real queue and worker (the same code as `calsync worker`).
//! Prints the wall time, syncs per second and the peak memory of the process.
//!
//! CALSYNC_BENCH_PARTICIPANTS changes the count; CALSYNC_BENCH_DATABASE a PostgreSQL URL runs it
//! there instead.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use calsync_connect::caldav::CalDav;
use calsync_connect::egress::Egress;
use calsync_connect::google::{GoogleCalendar, GoogleEndpoints};
use calsync_connect::ics::IcsFeed;
use calsync_connect::microsoft::{MicrosoftCalendar, MicrosoftEndpoints};
use calsync_connect::oauth::OAuthClient;
use calsync_connect::retry::Backoff;
use calsync_connect::secret::SecretKey;
use calsync_emulators::{google, microsoft};
use calsync_store::Store;
use calsync_sync::connection::{Connectors, ProviderLimits, SyncSettings, new_connection};
use calsync_worker::{Queue, WorkerSettings};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

const KEY: &str = "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=";
/// Busy events per participant over the 90-day horizon.
const EVENTS: i64 = 20;

fn serve(configure: impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server =
        HttpServer::new(move || App::new().configure(configure.clone())).workers(2).listen(listener).unwrap().run();
    tokio::spawn(server);
    base
}

/// Participant `n`'s busy windows: `EVENTS` hours spread over the next 90 days.
fn busy_of(n: i64, from: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    (0..EVENTS)
        .map(|k| {
            let start = from + TimeDelta::hours(24 * (k * 4 + n % 4) + 8 + (n + k) % 9);
            (start, start + TimeDelta::minutes(30 + 30 * ((n + k) % 3)))
        })
        .collect()
}

async fn feed(req: HttpRequest) -> HttpResponse {
    let n: i64 = req.match_info().get("n").and_then(|n| n.parse().ok()).unwrap_or(0);
    let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let at = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:bench\r\n");
    for (k, (start, end)) in busy_of(n, today).into_iter().enumerate() {
        s += &format!(
            "BEGIN:VEVENT\r\nUID:{n}-{k}@bench\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Appointment {k}\r\nDTSTART:{}\r\nDTEND:{}\r\nEND:VEVENT\r\n",
            at(start),
            at(end)
        );
    }
    HttpResponse::Ok().content_type("text/calendar").body(s + "END:VCALENDAR\r\n")
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(run());
}

async fn run() {
    let participants: i64 =
        std::env::var("CALSYNC_BENCH_PARTICIPANTS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("calsync-nightly-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = std::env::var("CALSYNC_BENCH_DATABASE")
        .unwrap_or_else(|_| format!("sqlite://{}?mode=rwc", dir.join("nightly.db").display()));
    let store = Store::connect(&url).await.unwrap().with_indexer(calsync_system::INDEXER);

    let (g, m) = (google::State::new("calsync", "secret"), microsoft::State::new("calsync", "secret"));
    let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    let key = SecretKey::from_base64(KEY).unwrap();
    let ics_base = serve(|cfg| {
        cfg.route("/feeds/{n}.ics", web::get().to(feed));
    });
    let (gs, ms) = (g.clone(), m.clone());
    let google_base = serve(move |cfg| google::routes(gs.clone())(cfg));
    let graph_base = serve(move |cfg| microsoft::routes(ms.clone())(cfg));

    // Participants, their derived Schedules and consents; a connection each.
    let set_up = Instant::now();
    let mut batch = Vec::new();
    let mut connections = Vec::new();
    for n in 0..participants {
        let patient = format!("p{n}");
        batch.push(("Patient".to_string(), patient.clone(), json!({"resourceType": "Patient", "id": patient})));
        batch.push((
            "Schedule".to_string(),
            format!("{patient}-calendar"),
            json!({"resourceType": "Schedule", "id": format!("{patient}-calendar"), "active": true,
                "actor": [{"reference": format!("Patient/{patient}")}]}),
        ));
        let mut consent = calsync_fhir::consent::permit(&format!("Patient/{patient}"), &format!("Patient/{patient}"));
        consent["id"] = json!(format!("{patient}-sync"));
        batch.push(("Consent".to_string(), format!("{patient}-sync"), consent));
        let (kind, secret) = match n % 3 {
            0 => {
                let token = format!("1//bench-{n}");
                let busy = busy_of(n, today);
                g.lock().unwrap().add_account(&patient, &token, google::Account { busy });
                ("google", json!({"refresh_token": token}))
            }
            1 => {
                let token = format!("M.R3_bench-{n}");
                let events = busy_of(n, today)
                    .into_iter()
                    .map(|(start, end)| microsoft::Event {
                        start,
                        end,
                        show_as: "busy".into(),
                        all_day: false,
                        cancelled: false,
                        subject: format!("Appointment {n}"),
                    })
                    .collect();
                let mut state = m.lock().unwrap();
                state.mailboxes.insert(patient.clone(), events);
                state.refresh_tokens.insert(token.clone(), patient.clone());
                ("microsoft", json!({"refresh_token": token}))
            }
            _ => ("ics", json!({"url": format!("{ics_base}/feeds/{n}.ics")})),
        };
        let (id, participant, schedule) =
            (format!("c{n}"), format!("Patient/{patient}"), format!("{patient}-calendar"));
        connections.push(new_connection(&key, &id, &participant, &schedule, kind, "127.0.0.1", &secret, today));
        if batch.len() >= 3_000 {
            store.put_many(std::mem::take(&mut batch), chrono::Utc::now()).await.unwrap();
        }
    }
    store.put_many(batch, chrono::Utc::now()).await.unwrap();
    for c in &connections {
        store.save_calendar_connection(c).await.unwrap();
    }
    println!("set-up: {participants} participants and connections in {:.1} s", set_up.elapsed().as_secs_f64());

    let oauth = OAuthClient { id: "calsync".into(), secret: "secret".into() };
    let timeout = Duration::from_secs(30);
    let sync = SyncSettings {
        key,
        connectors: Connectors {
            ics: IcsFeed::new(timeout, Egress::unrestricted()).unwrap(),
            caldav: CalDav::new(timeout, Egress::unrestricted()).unwrap(),
            google: Some(
                GoogleCalendar::new(
                    GoogleEndpoints {
                        api: format!("{google_base}/").parse().unwrap(),
                        token: format!("{google_base}/token").parse().unwrap(),
                    },
                    oauth.clone(),
                    timeout,
                )
                .unwrap(),
            ),
            microsoft: Some(
                MicrosoftCalendar::new(
                    MicrosoftEndpoints {
                        graph: format!("{graph_base}/").parse().unwrap(),
                        token: format!("{graph_base}/common/oauth2/v2.0/token").parse().unwrap(),
                    },
                    oauth,
                    timeout,
                )
                .unwrap(),
            ),
        },
        horizon: TimeDelta::days(90),
        interval: TimeDelta::hours(24),
        backoff: Backoff::default(),
        // The shipped defaults (config/base.toml [sync]).
        limits: ProviderLimits::each(8, 4, 8, 4),
    };
    let settings = WorkerSettings { nightly: None, sweep: Duration::from_secs(5), ..WorkerSettings::default() };

    // The nightly run: everything due, queued, synced.
    let started = Utc::now();
    let clock = Instant::now();
    let mut queue = Queue::open(&store, settings.heartbeat).await.unwrap();
    let queued = queue.sync_all(&store, started).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let now: calsync_worker::Clock = Arc::new(Utc::now);
    let worker = tokio::spawn(calsync_worker::run(store.clone(), Some(sync), settings, now, async move {
        let _ = stopped.await;
    }));
    let tally = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let tally = store.connection_tally(started).await.unwrap();
        if tally.due == 0 {
            break tally;
        }
    };
    let secs = clock.elapsed().as_secs_f64();
    stop.send(()).unwrap();
    worker.await.unwrap().unwrap();
    let busy =
        store.slots_overlapping(None, today - TimeDelta::days(1), today + TimeDelta::days(100)).await.unwrap().len();
    println!(
        "nightly run: {queued} connections in {secs:.1} s ({:.0} syncs/s); {} ok; {busy} busy Slots; states {:?}; peak memory {:.0} MB",
        queued as f64 / secs,
        tally.synced_since,
        tally.states,
        peak_rss_mb()
    );
    assert_eq!(tally.synced_since as usize, queued, "every connection synced");
    assert_eq!(busy as i64, participants * EVENTS, "every busy window stored");
    store.clone().close().await;
    std::fs::remove_dir_all(&dir).ok();
}

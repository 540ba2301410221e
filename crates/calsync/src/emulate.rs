//! `calsync serve --emulate-calendar PROVIDER:PARTICIPANT=FILE`: the demo's participants on
//! emulated Google and Microsoft calendars. Each emulator runs in this process on a loopback
//! port, holds the busy time of an iCalendar file, and is configured as that provider (its
//! OAuth client and endpoints), so the connectors, the worker and the sync run exactly as they
//! do against the real services. The connections are created as the OAuth callback creates
//! them, with a refresh token the emulator issued.

use std::net::TcpListener;

use calsync_core::{BusyStatus, Interval};
use calsync_emulators::{google, microsoft};
use calsync_system::{OAuthProvider, Settings};
use chrono::{DateTime, TimeDelta, Utc};

/// One `PROVIDER:PARTICIPANT=FILE`.
struct EmulatedCalendar {
    provider: String,
    participant: String,
    refresh_token: String,
}

/// The running emulators and the connections to make once the server is built.
pub struct Emulated {
    calendars: Vec<EmulatedCalendar>,
}

const CLIENT: (&str, &str) = ("calsync-demo", "demo-client-secret");

fn serve(configure: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static) -> Result<String, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{}", listener.local_addr().map_err(|e| e.to_string())?.port());
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
        .workers(1)
        .listen(listener)
        .map_err(|e| e.to_string())?
        .run();
    tokio::spawn(server);
    Ok(base)
}

/// Starts the emulators the specs name, loads each file's busy time (a year from `now`), and
/// points `settings` at them.
pub fn start(specs: &[String], settings: &mut Settings, now: DateTime<Utc>) -> Result<Emulated, String> {
    let (g, m) = (google::State::new(CLIENT.0, CLIENT.1), microsoft::State::new(CLIENT.0, CLIENT.1));
    let mut calendars = Vec::new();
    for (n, spec) in specs.iter().enumerate() {
        let bad = || format!("--emulate-calendar {spec:?}: expected PROVIDER:PARTICIPANT=FILE (google or microsoft)");
        let (provider, rest) = spec.split_once(':').ok_or_else(bad)?;
        let (participant, file) = rest.split_once('=').ok_or_else(bad)?;
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
        let horizon = Interval::new(now - TimeDelta::days(7), now + TimeDelta::days(365));
        let busy = calsync_ical::Calendar::parse(&text)
            .and_then(|c| c.expand(horizon, chrono_tz::UTC))
            .map_err(|e| format!("{file}: {e}"))?
            .busy();
        let account = format!("demo-{n}");
        let refresh_token = match provider {
            "google" => {
                let token = format!("1//demo-refresh-{n}");
                let ranges = busy.iter().map(|b| (b.interval.start, b.interval.end)).collect();
                g.lock().map_err(|e| e.to_string())?.add_account(&account, &token, google::Account { busy: ranges });
                token
            }
            "microsoft" => {
                let token = format!("M.R3_demo-refresh-{n}");
                let events = busy
                    .iter()
                    .map(|b| microsoft::Event {
                        start: b.interval.start,
                        end: b.interval.end,
                        show_as: if b.status == BusyStatus::BusyTentative { "tentative" } else { "busy" }.into(),
                        all_day: false,
                        cancelled: false,
                        subject: String::new(),
                    })
                    .collect();
                let mut state = m.lock().map_err(|e| e.to_string())?;
                state.mailboxes.insert(account.clone(), events);
                state.refresh_tokens.insert(token.clone(), account);
                token
            }
            _ => return Err(bad()),
        };
        calendars.push(EmulatedCalendar { provider: provider.into(), participant: participant.into(), refresh_token });
    }
    let provider = |base: &str, authorize: &str, token: &str| OAuthProvider {
        client_id: CLIENT.0.into(),
        client_secret: CLIENT.1.into(),
        authorize_url: format!("{base}{authorize}"),
        token_url: format!("{base}{token}"),
        api_url: format!("{base}/"),
    };
    if calendars.iter().any(|c| c.provider == "google") {
        let base = serve(move |cfg| google::routes(g.clone())(cfg))?;
        println!("emulated Google Calendar on {base}");
        settings.google = Some(provider(&base, "/o/oauth2/v2/auth", "/token"));
    }
    if calendars.iter().any(|c| c.provider == "microsoft") {
        let base = serve(move |cfg| microsoft::routes(m.clone())(cfg))?;
        println!("emulated Microsoft Graph on {base}");
        settings.microsoft = Some(provider(&base, "/common/oauth2/v2.0/authorize", "/common/oauth2/v2.0/token"));
    }
    Ok(Emulated { calendars })
}

impl Emulated {
    /// Connects each participant to its emulated calendar (due at once: the worker syncs it),
    /// in place of the emulated calendar of that provider an earlier start connected (whose
    /// emulator is gone with that process).
    pub async fn connect(&self, system: &calsync_system::System) -> Result<(), String> {
        let (cases, cx) = (system.use_cases(), system.operator());
        for c in &self.calendars {
            for earlier in cases.connections_of(&cx, &c.participant).await.map_err(|e| e.to_string())? {
                if earlier.kind == c.provider {
                    cases.disconnect_calendar(&cx, &earlier.id).await.map_err(|e| e.to_string())?;
                }
            }
            let secret = serde_json::json!({"refresh_token": c.refresh_token});
            let id = cases
                .connect_calendar_with(&cx, &c.participant, &c.provider, &secret)
                .await
                .map_err(|e| e.to_string())?
                .id;
            println!("connected {} to an emulated {} calendar (connection {id})", c.participant, c.provider);
        }
        Ok(())
    }
}

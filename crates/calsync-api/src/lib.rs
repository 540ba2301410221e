//! The FHIR R4 facade of calsync.
//!
//! An actix-web server over the store: `GET /metadata`, and read, vread, create,
//! update (with `If-Match`) and delete on the resources in [`registry`]. Every
//! error is an OperationOutcome with a precise 4xx status (5xx only for our own
//! faults, without internals). Handlers receive a [`context::RequestContext`]
//! naming the caller, so the security policy can be added in one place.
//!
//! Start it with [`Application::build`] (used by `calsync serve` and by the
//! black-box tests, which bind port 0 and a fresh database).

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::middleware::ErrorHandlers;
use actix_web::{App, HttpServer, web};
use calsync_store::Store;

pub mod connect;
pub mod connections;
pub mod context;
pub mod interaction;
pub mod media;
pub mod operation;
pub mod outcome;
pub mod publishers;
pub mod registry;
pub mod settings;

/// The FHIR search index definitions, for the store (kept in calsync-sync, which every
/// process that writes resources shares).
pub use calsync_sync::INDEXER;

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to bind, e.g. `127.0.0.1:8080` (`127.0.0.1:0` for any free port).
    pub bind: String,
    /// Database URL: `sqlite://calsync.db?mode=rwc` or `postgres://...`.
    pub database_url: String,
    /// How long `$hold` keeps a Slot, in seconds (default 600).
    pub hold_seconds: u32,
    /// Start the server's clock at this instant instead of now (the demo's fixed week).
    pub clock_start: Option<chrono::DateTime<chrono::Utc>>,
    /// The key that seals calendar connections' credentials (32 bytes, base64); without it the
    /// connections API answers 503.
    pub secret_key: Option<String>,
    /// The server's address as browsers reach it (`https://calsync.example.org`), for OAuth
    /// redirect URIs; the request's own address when unset.
    pub public_url: Option<String>,
    /// Calendar syncs and the worker.
    pub sync: SyncConfig,
    /// Google Calendar's OAuth client and endpoints (none: Google is not offered).
    pub google: Option<OAuthProvider>,
    /// Microsoft Graph's OAuth client and endpoints (none: Outlook is not offered).
    pub microsoft: Option<OAuthProvider>,
    /// What addresses given from outside (calendars, publishers) may reach.
    pub egress: EgressConfig,
}

/// What addresses given from outside may reach (`[egress]` in the configuration): patients' ICS
/// and CalDAV calendars, publishers' manifests and files. Public addresses only unless set
/// otherwise; see [`calsync_connect::egress`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct EgressConfig {
    /// Every address, loopback and private networks included (a developer's machine).
    pub private_networks: bool,
    /// Networks (`10.20.0.0/16`) or addresses (`192.168.1.7`) reached although not public: a
    /// hospital's own CalDAV server or publisher.
    pub allow: Vec<String>,
}

impl EgressConfig {
    /// The policy these settings describe.
    pub fn policy(&self) -> Result<calsync_connect::egress::Egress, String> {
        calsync_connect::egress::Egress::new(self.private_networks, &self.allow)
    }
}

/// Calendar syncs and the worker (`[sync]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
pub struct SyncConfig {
    /// `calsync serve` runs the worker in its own process (the embedded default); production
    /// runs `calsync worker` in its own container and sets this to false.
    pub worker: bool,
    /// Syncs at once per worker process.
    pub concurrency: usize,
    /// Syncs at once per provider and process.
    pub limit_ics: usize,
    /// CalDAV servers are often small ones.
    pub limit_caldav: usize,
    /// Google allows about 600 requests a minute per user.
    pub limit_google: usize,
    /// Graph throttles at 4 concurrent requests per mailbox.
    pub limit_microsoft: usize,
    /// How often due connections are queued, in seconds.
    pub sweep_seconds: u64,
    /// How often a worker reports it is alive, in seconds (three missed: its jobs move on).
    pub heartbeat_seconds: u64,
    /// When every connection syncs: cron `sec min hour day-of-month month day-of-week`.
    pub nightly: String,
    /// The IANA zone the nightly schedule is read in.
    pub nightly_zone: String,
    /// How far ahead busy time is read, in days.
    pub horizon_days: i64,
    /// The next regular sync after a good one, in hours.
    pub interval_hours: i64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            worker: true,
            concurrency: 16,
            limit_ics: 8,
            limit_caldav: 4,
            limit_google: 8,
            limit_microsoft: 4,
            sweep_seconds: 60,
            heartbeat_seconds: 30,
            nightly: "0 0 2 * * *".into(),
            nightly_zone: "UTC".into(),
            horizon_days: 90,
            interval_hours: 24,
        }
    }
}

/// An OAuth provider's client registration and endpoints (`[google]`, `[microsoft]`).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
pub struct OAuthProvider {
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret (from the environment: `CALSYNC_GOOGLE__CLIENT_SECRET`).
    pub client_secret: String,
    /// Where the participant's browser is sent to consent.
    pub authorize_url: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_url: String,
    /// The calendar API's base (`https://www.googleapis.com/`, `https://graph.microsoft.com/`).
    pub api_url: String,
}

impl std::fmt::Debug for OAuthProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProvider")
            .field("client_id", &self.client_id)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl Settings {
    /// Settings for `bind` and `database_url`, defaults otherwise.
    pub fn new(bind: impl Into<String>, database_url: impl Into<String>) -> Self {
        Settings {
            bind: bind.into(),
            database_url: database_url.into(),
            hold_seconds: 600,
            clock_start: None,
            secret_key: None,
            public_url: None,
            sync: SyncConfig::default(),
            google: None,
            microsoft: None,
            egress: EgressConfig::default(),
        }
    }
}

/// How often expired holds are released.
const HOLD_SWEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The store at `database_url` (migrated), indexed as the server indexes it: an index built with
/// other definitions is rebuilt first, and a new database records the definitions it is indexed
/// with. Every process that writes resources opens it so (else the server's first start on a
/// database another command filled would index everything again).
pub async fn open_store(database_url: &str) -> Result<Store, String> {
    let store = Store::connect(database_url).await.map_err(|e| format!("database: {e}"))?.with_indexer(INDEXER);
    if let Some(n) = store.reindex_if_stale().await.map_err(|e| format!("database: {e}"))?.filter(|n| *n > 0) {
        tracing::info!(resources = n, "search index rebuilt for the current definitions");
    }
    Ok(store)
}

/// A built, not yet running, server.
pub struct Application {
    server: Server,
    port: u16,
    store: Store,
    sync: Option<calsync_sync::connection::SyncSettings>,
    clock: context::Clock,
    authorizers: connect::Authorizers,
}

impl Application {
    /// Connects to the database (migrating it) and binds the listener.
    pub async fn build(settings: &Settings) -> Result<Self, String> {
        let store = open_store(&settings.database_url).await?;
        let listener = TcpListener::bind(&settings.bind).map_err(|e| format!("cannot bind {}: {e}", settings.bind))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let data = web::Data::new(store.clone());
        let hold = web::Data::new(operation::HoldPolicy {
            duration: chrono::TimeDelta::seconds(i64::from(settings.hold_seconds.max(1))),
        });
        let clock = settings.clock_start.map(context::Clock::starting_at).unwrap_or_default();
        let sweeper = store.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOLD_SWEEP);
            loop {
                tick.tick().await;
                match operation::sweep_expired_holds(&sweeper, clock.now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(released = n, "expired holds released"),
                    Err(e) => tracing::warn!(error = %e, "releasing expired holds failed"),
                }
            }
        });
        let sync_settings = connections::sync_settings(settings)?;
        let queue = match &sync_settings {
            Some(_) => Some(
                calsync_worker::Queue::open(
                    &store,
                    std::time::Duration::from_secs(settings.sync.heartbeat_seconds.max(1)),
                )
                .await
                .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        let sync = web::Data::new(sync_settings.clone());
        let app_authorizers = connect::Authorizers::from_settings(settings)?;
        let authorizers = web::Data::new(app_authorizers.clone());
        let queue_data = web::Data::new(queue.clone().map(tokio::sync::Mutex::new));
        let egress = settings.egress.policy()?;
        let http = web::Data::new(calsync_links::http_client(egress.clone()).map_err(|e| e.to_string())?);
        let egress = web::Data::new(egress);
        let server_clock = clock;
        let clock = web::Data::new(clock);
        let places = web::Data::new(operation::PublishedPlaces::default());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(clock.clone())
                .app_data(hold.clone())
                .app_data(sync.clone())
                .app_data(queue_data.clone())
                .app_data(authorizers.clone())
                .app_data(http.clone())
                .app_data(egress.clone())
                .app_data(places.clone())
                .app_data(web::PayloadConfig::new(media::MAX_BODY))
                .wrap(ErrorHandlers::new().default_handler(outcome::as_operation_outcome))
                .configure(connections::routes)
                .configure(connect::routes)
                .configure(publishers::routes)
                .configure(operation::routes)
                .configure(interaction::routes)
        })
        .listen(listener)
        .map_err(|e| e.to_string())?
        .run();
        Ok(Self { server, port, store, sync: sync_settings, clock: server_clock, authorizers: app_authorizers })
    }

    /// Connects `participant` to a calendar of `kind` (`google`, `microsoft`, `ics`, `caldav`)
    /// with `secret` (sealed), as the connections API and the OAuth callback do; returns the
    /// connection's id. For demos and tools that hold credentials already.
    pub async fn connect_calendar(
        &self,
        participant: &str,
        kind: &str,
        secret: &serde_json::Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, String> {
        let sync = self.sync.as_ref().ok_or("calendar connections need a secret_key")?;
        let participant = connections::known_participant(&self.store, participant).await.map_err(|e| e.to_string())?;
        let host = match kind {
            "google" | "microsoft" => {
                self.authorizers.api_host(kind).ok_or_else(|| format!("{kind} is not configured on this server"))?
            }
            _ => secret["url"].as_str().and_then(calsync_connect::address_host).ok_or("the secret needs a url")?,
        };
        let c = connections::connect(&self.store, sync, &participant, kind, host, secret, now)
            .await
            .map_err(|e| e.to_string())?;
        Ok(c.id)
    }

    /// What the worker needs to run next to this server: the store, the sync settings (none
    /// without a secret key: the worker then polls publishers only) and the server's clock.
    pub fn worker_parts(&self) -> (Store, Option<calsync_sync::connection::SyncSettings>, calsync_worker::Clock) {
        let clock = self.clock;
        let now: calsync_worker::Clock = std::sync::Arc::new(move || clock.now());
        (self.store.clone(), self.sync.clone(), now)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The store the server uses (for loading data next to it).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until stopped.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

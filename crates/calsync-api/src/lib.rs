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

pub mod connections;
pub mod context;
pub mod interaction;
pub mod media;
pub mod operation;
pub mod outcome;
pub mod registry;
pub mod settings;

/// The searchable values of a resource, as the store indexes them.
fn index_rows(resource_type: &str, resource: &serde_json::Value) -> calsync_store::Indexed {
    use calsync_fhir::index;
    calsync_store::Indexed {
        terms: index::entries(resource_type, resource)
            .into_iter()
            .map(|e| calsync_store::IndexRow {
                param: e.param.to_string(),
                system: e.system,
                value: e.value,
                raw: e.raw,
            })
            .collect(),
        dates: index::date_entries(resource_type, resource)
            .into_iter()
            .map(|d| calsync_store::DateRow { param: d.param.to_string(), low: d.low, high: d.high })
            .collect(),
    }
}

/// The FHIR search index definitions, for the store.
pub const INDEXER: calsync_store::Indexer =
    calsync_store::Indexer { extract: index_rows, fingerprint: calsync_fhir::index::fingerprint };

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
        }
    }
}

/// How often expired holds are released.
const HOLD_SWEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// A built, not yet running, server.
pub struct Application {
    server: Server,
    port: u16,
    store: Store,
}

impl Application {
    /// Connects to the database (migrating it) and binds the listener.
    pub async fn build(settings: &Settings) -> Result<Self, String> {
        let store =
            Store::connect(&settings.database_url).await.map_err(|e| format!("database: {e}"))?.with_indexer(INDEXER);
        if let Some(n) = store.reindex_if_stale().await.map_err(|e| format!("database: {e}"))?.filter(|n| *n > 0) {
            tracing::info!(resources = n, "search index rebuilt for the current definitions");
        }
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
        let sync = web::Data::new(match &settings.secret_key {
            Some(key) => Some(connections::sync_settings(key)?),
            None => None,
        });
        let clock = web::Data::new(clock);
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(clock.clone())
                .app_data(hold.clone())
                .app_data(sync.clone())
                .app_data(web::PayloadConfig::new(media::MAX_BODY))
                .wrap(ErrorHandlers::new().default_handler(outcome::as_operation_outcome))
                .configure(connections::routes)
                .configure(operation::routes)
                .configure(interaction::routes)
        })
        .listen(listener)
        .map_err(|e| e.to_string())?
        .run();
        Ok(Self { server, port, store })
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

//! The composition root of calsync: the one place that wires the system together.
//!
//! From the layered [`Settings`] it opens the store with the FHIR search index definitions
//! ([`INDEXER`], [`open_store`]), builds the calendar connectors and OAuth authorizers
//! ([`connectors`]), opens the job queue, and hands all of it to the use cases
//! ([`calsync_usecase::UseCases`]). [`System`] is that wiring; [`Application`] serves it over
//! HTTP (the FHIR facade, `calsync-api`), and [`System::run_worker`] runs the background jobs
//! (`calsync-worker`) beside it or on their own. `calsync serve`, `calsync worker`, the other
//! commands and the black-box tests all start here.

use std::future::Future;
use std::time::Duration;

use calsync_store::Store;
use calsync_sync::connection::SyncSettings;
use calsync_usecase::{Clock, Parts, UseCases};
use calsync_worker::{Nightly, WorkerSettings};

pub mod authentication;
pub mod connectors;
mod queue;
mod server;
mod settings;

pub use server::Application;
pub use settings::{AuthConfig, AuthMode, EgressConfig, OAuthProvider, PublishersConfig, Settings, SyncConfig};

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

/// The FHIR search index definitions (`calsync_fhir::index`) in the store's terms. Every process
/// that writes resources opens its [`Store`] with it ([`open_store`]).
pub const INDEXER: calsync_store::Indexer = calsync_store::Indexer {
    extract: index_rows,
    fingerprint: calsync_fhir::index::fingerprint,
    reads: calsync_fhir::index::reads,
};

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

/// How often expired holds are released.
const HOLD_RELEASE: Duration = Duration::from_secs(5);

/// The wired system: the use cases over the store, the connectors and the queue.
#[derive(Clone)]
pub struct System {
    settings: Settings,
    cases: UseCases,
    sync: Option<SyncSettings>,
}

impl System {
    /// Opens the store (migrating and indexing it), builds the connectors and, when calendar
    /// syncs are on (a `secret_key`), opens the job queue.
    pub async fn open(settings: &Settings) -> Result<System, String> {
        let refusals = settings.production_refusals();
        if !refusals.is_empty() {
            return Err(format!("CALSYNC_ENV=production refuses to start: {}", refusals.join("; ")));
        }
        let store = open_store(&settings.database_url).await?;
        let sync = connectors::sync_settings(settings)?;
        let jobs: Option<std::sync::Arc<dyn calsync_usecase::JobQueue>> = match &sync {
            Some(_) => {
                let heartbeat = Duration::from_secs(settings.sync.heartbeat_seconds.max(1));
                let queue = calsync_worker::Queue::open(&store, heartbeat).await.map_err(|e| e.to_string())?;
                Some(std::sync::Arc::new(queue::SharedQueue(tokio::sync::Mutex::new(queue))))
            }
            None => None,
        };
        let egress = settings.egress.policy()?;
        let http = calsync_links::http_client(egress.clone()).map_err(|e| e.to_string())?;
        let cases = UseCases::new(Parts {
            store,
            clock: settings.clock_start.map(Clock::starting_at).unwrap_or_default(),
            hold: chrono::TimeDelta::seconds(i64::from(settings.hold_seconds.max(1))),
            sync: sync.clone(),
            jobs,
            egress,
            http,
            authorizers: connectors::authorizers(settings)?,
            min_poll: chrono::TimeDelta::seconds(i64::from(settings.publishers.min_poll_seconds)),
            open: settings.auth.mode() == AuthMode::None,
        });
        Ok(System { settings: settings.clone(), cases, sync })
    }

    /// The use cases.
    pub fn use_cases(&self) -> &UseCases {
        &self.cases
    }

    /// The settings it was opened with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The context of the command line's calls: the operator, now on the system's clock, this
    /// server's public address (else its bind address).
    pub fn operator(&self) -> calsync_usecase::Context {
        let base = match &self.settings.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.settings.bind),
        };
        self.cases.context(calsync_usecase::Caller::Operator, base)
    }

    /// Releases expired holds every few seconds, for as long as the process runs.
    pub fn release_holds_in_background(&self) {
        let cases = self.cases.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HOLD_RELEASE);
            loop {
                tick.tick().await;
                match cases.release_expired_holds(cases.clock().now()).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(released = n, "expired holds released"),
                    Err(e) => tracing::warn!(error = %e, "releasing expired holds failed"),
                }
            }
        });
    }

    /// The worker's settings from the configuration.
    pub fn worker_settings(&self) -> Result<WorkerSettings, String> {
        let sync = &self.settings.sync;
        Ok(WorkerSettings {
            concurrency: sync.concurrency.max(1),
            sweep: Duration::from_secs(sync.sweep_seconds.max(1)),
            heartbeat: Duration::from_secs(sync.heartbeat_seconds.max(1)),
            nightly: Some(Nightly::parse(&sync.nightly, &sync.nightly_zone)?),
            name: calsync_worker::worker_name(),
            egress: self.settings.egress.policy()?,
        })
    }

    /// True when calendar syncs are on (a `secret_key` to open credentials with).
    pub fn syncs_calendars(&self) -> bool {
        self.sync.is_some()
    }

    /// Runs the background jobs (calendar syncs, publisher polls, the nightly run) with
    /// `worker` settings on the system's clock until `shutdown` completes. Without a secret key
    /// only publishers are polled.
    pub async fn run_worker(
        &self,
        worker: WorkerSettings,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let clock = self.cases.clock();
        let now: calsync_worker::Clock = std::sync::Arc::new(move || clock.now());
        let store = self.cases.store().clone();
        calsync_worker::run(store, self.sync.clone(), worker, now, shutdown).await.map_err(|e| e.to_string())
    }
}

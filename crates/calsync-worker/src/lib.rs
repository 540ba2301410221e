//! calsync's background jobs, on apalis, queued in the application's own database (SQLite
//! embedded, PostgreSQL in production): nothing else needs installing.
//!
//! - A [`SyncJob::Calendar`] syncs one calendar connection
//!   ([`calsync_sync::connection::sync_connection`]); a [`SyncJob::Publisher`] polls one SMART
//!   Scheduling Links publisher ([`calsync_links::poll`]).
//! - The **sweep** queues a job for every connection and publisher that is due: new ones, the
//!   next regular sync or poll, a retry after a backoff. The job's idempotency key is the
//!   connection or publisher and its due time, so however often the sweep (or several workers'
//!   sweeps) runs, a due time is queued once.
//! - The **nightly run** (a cron schedule from the configuration) makes every connection due
//!   and sweeps; [`Queue::sync_all`] does the same on demand.
//! - A worker without a `secret_key` cannot open calendar credentials: it polls publishers
//!   only (its sweep queues no connection, it has no nightly run).
//!
//! Crash safety comes from two places. Applying a sync is one transaction (old set or new
//! set). A connection's due time moves only when its sync finished, so a job lost with its
//! worker is still due; apalis re-queues the jobs of a worker whose heartbeat stopped, and
//! the next sweep finds the connection due anyway.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use calsync_connect::egress::{Egress, EgressClient};
use calsync_store::{QueueDatabase, Store};
use calsync_sync::connection::{SyncSettings, sync_connection};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod nightly;

pub use nightly::Nightly;

/// One job: sync a calendar connection, or poll a publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SyncJob {
    /// Sync one calendar connection.
    Calendar {
        /// The connection's id.
        connection: String,
    },
    /// Poll one SMART Scheduling Links publisher.
    Publisher {
        /// The publisher's id.
        publisher: String,
    },
}

/// The queue every process names its sync jobs by.
const QUEUE: &str = "calsync-sync";

/// Runs of one job at most. A run ends early when its worker dies (and apalis re-queues it),
/// or when the store fails; a failing calendar is not an error here (the connection records it
/// and becomes due again later, under a new key). A job out of attempts leaves its connection
/// due under the same key until the nightly run gives it a new one.
const MAX_ATTEMPTS: usize = 25;

/// How long the queue's SQLite connections wait for the write lock (a large sync applies in one
/// transaction).
const QUEUE_BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// The pause before a failed worker restarts (it blocks one runtime thread: rare, and short).
const RESTART_PAUSE: Duration = Duration::from_millis(500);

/// Connections queued per sweep at most (the rest stay due for the next sweep).
const SWEEP_LIMIT: u64 = 100_000;

/// Why the worker could not start or queue.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The job queue's database.
    #[error("job queue: {0}")]
    Queue(String),
    /// The application's store.
    #[error(transparent)]
    Store(#[from] calsync_store::StoreError),
    /// The HTTP client for publishers.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Whether a push failed on a job's idempotency key being queued already (apalis' unique
/// index on job type and key).
fn is_taken_key(e: &impl std::fmt::Display) -> bool {
    e.to_string().contains("idx_jobs_idempotency_key")
}

fn queue_error(e: impl std::fmt::Display) -> WorkerError {
    WorkerError::Queue(e.to_string())
}

/// The instant the worker takes as now (the server's clock, which a demo may start elsewhere).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How the worker runs.
#[derive(Clone)]
pub struct WorkerSettings {
    /// Syncs running at once in this process (each provider also has its own limit, see
    /// [`calsync_sync::connection::ProviderLimits`]).
    pub concurrency: usize,
    /// How often due connections are queued.
    pub sweep: Duration,
    /// How often this worker tells the queue it is alive; a worker silent for three of these
    /// is taken for dead and its jobs go to the others.
    pub heartbeat: Duration,
    /// When every connection syncs (none: only when due or asked).
    pub nightly: Option<Nightly>,
    /// This process's worker name in the queue (unique among live workers).
    pub name: String,
    /// What publishers' manifests and files may reach (calendar connectors carry their own, in
    /// [`SyncSettings`]).
    pub egress: Egress,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            concurrency: 16,
            sweep: Duration::from_secs(60),
            heartbeat: Duration::from_secs(30),
            nightly: Some(Nightly::default()),
            name: worker_name(),
            egress: Egress::public(),
        }
    }
}

/// `calsync-worker-<host>-<pid>-<random>`: a restarted process never takes a dead one's name.
pub fn worker_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("calsync-worker-{host}-{}-{nanos:08x}", std::process::id())
}

/// The sync job queue in the store's database.
#[derive(Clone)]
pub enum Queue {
    /// On the embedded SQLite database.
    Sqlite(SqliteStorage<SyncJob>),
    /// On PostgreSQL.
    Postgres(PostgresStorage<SyncJob>),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Queue::Sqlite(_) => "Queue::Sqlite",
            Queue::Postgres(_) => "Queue::Postgres",
        })
    }
}

impl Queue {
    /// The queue in `store`'s database, its tables created or migrated.
    pub async fn open(store: &Store, heartbeat: Duration) -> Result<Self, WorkerError> {
        match store.queue_database() {
            QueueDatabase::Sqlite(options) => {
                // Its own connections, which wait as long as a sync's transaction may hold the
                // write lock: apalis takes a failed poll for a dead worker.
                let options = (*options).busy_timeout(QUEUE_BUSY_TIMEOUT);
                let pool = &apalis_sqlite::SqlitePool::connect_with(options).await.map_err(queue_error)?;
                SqliteStorage::setup(pool).await.map_err(queue_error)?;
                let config = apalis_sqlite::Config::default()
                    .queue(QUEUE)
                    .heartbeat_interval(heartbeat)
                    .missed_heartbeats(3)
                    .batch_size(32);
                Ok(Queue::Sqlite(SqliteStorage::new(pool).with_config(config)))
            }
            QueueDatabase::Postgres(pool) => {
                PostgresStorage::setup(&pool).await.map_err(queue_error)?;
                let config = apalis_postgres::Config::default()
                    .queue(QUEUE)
                    .heartbeat_interval(heartbeat)
                    .missed_heartbeats(3)
                    .batch_size(32);
                Ok(Queue::Postgres(PostgresStorage::new(&pool).with_config(config)))
            }
        }
    }

    /// Queues each (job, due time), once however often it is asked.
    async fn push_due(&mut self, store: &Store, due: Vec<(SyncJob, i64)>) -> Result<(), WorkerError> {
        let keyed: Vec<(String, SyncJob)> = due
            .into_iter()
            .map(|(job, due_ms)| {
                let key = match &job {
                    SyncJob::Calendar { connection } => format!("{connection}@{due_ms}"),
                    SyncJob::Publisher { publisher } => format!("publisher:{publisher}@{due_ms}"),
                };
                (key, job)
            })
            .collect();
        let task = |(key, job): (String, SyncJob)| {
            TaskBuilder::new(job).idempotency_key(key).max_attempts(MAX_ATTEMPTS).build()
        };
        match self {
            // apalis-sqlite skips a key already queued (`ON CONFLICT DO NOTHING`).
            Queue::Sqlite(s) => {
                s.push_all(&mut futures_util::stream::iter(keyed.into_iter().map(task))).await.map_err(queue_error)
            }
            // apalis-postgres does not: one key already queued fails the whole batch. Those queued
            // are left out first; should another process queue one of the rest meanwhile, each is
            // queued alone, and a key taken by then is queued already.
            Queue::Postgres(s) => {
                let keys: Vec<String> = keyed.iter().map(|(key, _)| key.clone()).collect();
                let queued = store.queued_job_keys(QUEUE, &keys).await?;
                let fresh: Vec<(String, SyncJob)> =
                    keyed.into_iter().filter(|(key, _)| !queued.contains(key)).collect();
                let mut all = futures_util::stream::iter(fresh.iter().cloned().map(task));
                match s.push_all(&mut all).await {
                    Err(e) if is_taken_key(&e) => {
                        for one in fresh {
                            match s.push_all(&mut futures_util::stream::iter([task(one)])).await {
                                Err(e) if !is_taken_key(&e) => return Err(queue_error(e)),
                                _ => {}
                            }
                        }
                        Ok(())
                    }
                    done => done.map_err(queue_error),
                }
            }
        }
    }

    /// Queues every connection and publisher due at `now` (those queued already stay queued
    /// once); returns how many were due.
    pub async fn sweep(&mut self, store: &Store, now: DateTime<Utc>) -> Result<usize, WorkerError> {
        self.sweep_jobs(store, now, Jobs::CalendarsAndPublishers).await
    }

    /// Queues what of `jobs` is due at `now`; returns how many were due.
    async fn sweep_jobs(&mut self, store: &Store, now: DateTime<Utc>, jobs: Jobs) -> Result<usize, WorkerError> {
        let mut due: Vec<(SyncJob, i64)> = match jobs {
            Jobs::CalendarsAndPublishers => store
                .connections_due(now, SWEEP_LIMIT)
                .await?
                .into_iter()
                .map(|(connection, at)| (SyncJob::Calendar { connection }, at))
                .collect(),
            Jobs::Publishers => Vec::new(),
        };
        due.extend(
            store
                .publishers_due(now, SWEEP_LIMIT)
                .await?
                .into_iter()
                .map(|(publisher, at)| (SyncJob::Publisher { publisher }, at)),
        );
        let n = due.len();
        if n > 0 {
            self.push_due(store, due).await?;
        }
        Ok(n)
    }

    /// Makes every connection due at `now` and queues them (the nightly run, or "sync all
    /// now"); returns how many were queued.
    pub async fn sync_all(&mut self, store: &Store, now: DateTime<Utc>) -> Result<usize, WorkerError> {
        store.make_connections_due(now).await?;
        self.sweep(store, now).await
    }
}

/// Which jobs a worker takes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Jobs {
    /// Calendar syncs and publisher polls.
    CalendarsAndPublishers,
    /// Publisher polls only: the worker has no key to open calendar credentials with.
    Publishers,
}

/// What a job needs.
struct Runner {
    store: Store,
    /// None: calendar syncs are off here (no `secret_key`); publishers are still polled.
    sync: Option<SyncSettings>,
    clock: Clock,
    http: EgressClient,
}

async fn run_sync_job(job: SyncJob, runner: Data<Arc<Runner>>) -> Result<(), BoxDynError> {
    match job {
        SyncJob::Calendar { connection } => sync_calendar(&runner, &connection).await,
        SyncJob::Publisher { publisher } => poll_publisher(&runner, &publisher).await,
    }
}

async fn poll_publisher(runner: &Runner, id: &str) -> Result<(), BoxDynError> {
    let now = (runner.clock)();
    // Polled meanwhile (on demand, or by another worker), or deleted.
    let Ok(p) = runner.store.publisher(id).await else { return Ok(()) };
    if p.next_run_ms.is_none_or(|due| due > now.timestamp_millis()) {
        return Ok(());
    }
    // Polled by hand a moment ago (a `$poll` racing this job): that poll is this one.
    if runner.store.claim_publisher_poll(id, now, calsync_links::MIN_INTERVAL).await?.is_err() {
        return Ok(());
    }
    tracing::info!(publisher = %p.id, "poll started");
    calsync_links::poll(&runner.store, &runner.http, id, now, &|_| {}).await?;
    Ok(())
}

async fn sync_calendar(runner: &Runner, connection: &str) -> Result<(), BoxDynError> {
    let now = (runner.clock)();
    // Synced meanwhile (on demand, or by another worker), deleted, or waiting for the participant.
    let Ok(c) = runner.store.calendar_connection(connection).await else { return Ok(()) };
    if c.next_run_ms.is_none_or(|due| due > now.timestamp_millis()) {
        return Ok(());
    }
    // Queued by a process that has the key; another worker of the queue may have it too.
    let Some(sync) = &runner.sync else {
        return Err("calendar syncs are off on this worker: it has no secret_key".into());
    };
    tracing::info!(connection = %c.id, kind = %c.kind, "sync started");
    runner.store.mark_connection_syncing(&c.id).await?;
    let c = sync_connection(&runner.store, sync, connection, now).await?;
    tracing::info!(connection = %c.id, kind = %c.kind, state = %c.state, "synced");
    Ok(())
}

/// Runs the sync workers, the sweep and the nightly run until `shutdown` completes. Without
/// `sync` (no `secret_key` to open calendar credentials with) only publishers are polled: no
/// calendar connection is queued, and there is no nightly run.
pub async fn run(
    store: Store,
    sync: Option<SyncSettings>,
    settings: WorkerSettings,
    clock: Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    let queue = Queue::open(&store, settings.heartbeat).await?;
    let http = calsync_links::http_client(settings.egress.clone())?;
    let jobs = if sync.is_some() { Jobs::CalendarsAndPublishers } else { Jobs::Publishers };
    let runner = Arc::new(Runner { store: store.clone(), sync, clock: clock.clone(), http });

    // The sweep: at once (a restarted worker picks up what is due), then every `sweep`.
    let (mut sweeper, sweep_store, sweep_clock) = (queue.clone(), store.clone(), clock.clone());
    let sweep_every = settings.sweep;
    let sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweep_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweeper.sweep_jobs(&sweep_store, sweep_clock(), jobs).await {
                Ok(0) => {}
                // Most are queued already (the key makes that a no-op): debug, not info.
                Ok(n) => tracing::debug!(jobs = n, "due connections and publishers queued"),
                Err(e) => tracing::warn!(error = %e, "queueing due connections and publishers failed"),
            }
        }
    });

    // A worker whose queue failed (the database busy past its timeout, or away) starts again,
    // after a pause so a database that stays away is not hammered; its job in flight goes to
    // the restarted worker once its heartbeats are missed.
    let mut monitor = Monitor::new().should_restart(|worker, error| {
        tracing::warn!(worker = %worker.name(), %error, "worker stopped on an error; restarting");
        std::thread::sleep(RESTART_PAUSE);
        true
    });
    let (name, concurrency) = (settings.name.clone(), settings.concurrency.max(1));
    monitor = match queue.clone() {
        Queue::Sqlite(backend) => monitor.register(move |run| {
            WorkerBuilder::new(format!("{name}-{run}"))
                .backend(backend.clone())
                .concurrency(concurrency)
                .data(runner.clone())
                .build(run_sync_job)
        }),
        Queue::Postgres(backend) => monitor.register(move |run| {
            WorkerBuilder::new(format!("{name}-{run}"))
                .backend(backend.clone())
                .concurrency(concurrency)
                .data(runner.clone())
                .build(run_sync_job)
        }),
    };
    if let Some(nightly) = settings.nightly.filter(|_| jobs == Jobs::CalendarsAndPublishers) {
        monitor = nightly.register(monitor, &settings.name, queue, store, clock);
    }
    let result = monitor.run_with_signal(async move {
        shutdown.await;
        Ok(())
    });
    let result = result.await.map_err(queue_error);
    sweep.abort();
    result
}

//! `calsync worker` (the background jobs as their own process) and `calsync sync` (a sync run
//! now, in this process, with a progress bar).

use std::path::PathBuf;
use std::time::Duration;

use calsync_api::Settings;
use calsync_store::Store;
use calsync_sync::connection::SyncSettings;
use calsync_worker::{Nightly, Queue, WorkerSettings};

/// Where the configuration and database are (shared by `worker` and `sync`).
#[derive(clap::Args)]
pub struct Placement {
    /// Database URL (overrides the configuration).
    #[arg(long)]
    database: Option<String>,
    /// Folder of the layered configuration (base.toml, $CALSYNC_ENV.toml).
    #[arg(long, default_value = "config")]
    config: PathBuf,
}

/// Arguments of `calsync worker`.
#[derive(clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    placement: Placement,
}

/// Arguments of `calsync sync`.
#[derive(clap::Args)]
pub struct SyncArgs {
    #[command(flatten)]
    placement: Placement,
    /// Sync every connection that syncs by itself (not those waiting for their participant).
    #[arg(long)]
    all: bool,
}

impl Placement {
    /// The settings and the store, indexed as the server indexes it.
    pub async fn open(&self) -> Result<(Settings, Store), String> {
        let mut settings = Settings::from_environment(&self.config)?;
        if let Some(database) = &self.database {
            settings.database_url = database.clone();
        }
        let store = calsync_api::open_store(&settings.database_url).await?;
        Ok((settings, store))
    }
}

/// Why a command that syncs calendars cannot run.
const NO_SECRET_KEY: &str = "calendar syncs need a secret_key in the configuration (CALSYNC_SECRET_KEY)";

/// The settings, the store and the sync settings (none without a `secret_key`).
async fn open(placement: &Placement) -> Result<(Settings, Store, Option<SyncSettings>), String> {
    let (settings, store) = placement.open().await?;
    let sync = calsync_api::connections::sync_settings(&settings)?;
    Ok((settings, store, sync))
}

/// The worker's settings from the configuration.
pub fn worker_settings(settings: &Settings) -> Result<WorkerSettings, String> {
    let sync = &settings.sync;
    Ok(WorkerSettings {
        concurrency: sync.concurrency.max(1),
        sweep: Duration::from_secs(sync.sweep_seconds.max(1)),
        heartbeat: Duration::from_secs(sync.heartbeat_seconds.max(1)),
        nightly: Some(Nightly::parse(&sync.nightly, &sync.nightly_zone)?),
        name: calsync_worker::worker_name(),
        egress: settings.egress.policy()?,
    })
}

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())
}

/// Completes on SIGINT or SIGTERM (a container stopping).
pub async fn stop_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

pub fn run_worker(args: WorkerArgs) -> Result<(), String> {
    crate::serve::init_logs();
    runtime()?.block_on(async move {
        let (settings, store, sync) = open(&args.placement).await?;
        let worker = worker_settings(&settings)?;
        tracing::info!(name = %worker.name, concurrency = worker.concurrency, "worker started");
        if sync.is_none() {
            tracing::warn!("{NO_SECRET_KEY}: this worker polls publishers only");
        }
        let clock: calsync_worker::Clock = std::sync::Arc::new(chrono::Utc::now);
        calsync_worker::run(store, sync, worker, clock, stop_signal()).await.map_err(|e| e.to_string())
    })
}

pub fn run_sync(args: SyncArgs) -> Result<(), String> {
    if !args.all {
        return Err("say which connections: --all".into());
    }
    crate::serve::init_logs_quiet();
    runtime()?.block_on(async move {
        let (settings, store, sync) = open(&args.placement).await?;
        let sync = Some(sync.ok_or(NO_SECRET_KEY)?);
        let start = chrono::Utc::now();
        let mut queue = Queue::open(&store, Duration::from_secs(settings.sync.heartbeat_seconds.max(1)))
            .await
            .map_err(|e| e.to_string())?;
        let total = queue.sync_all(&store, start).await.map_err(|e| e.to_string())? as u64;
        let mut worker = worker_settings(&settings)?;
        worker.nightly = None;
        worker.sweep = Duration::from_secs(5);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let clock: calsync_worker::Clock = std::sync::Arc::new(chrono::Utc::now);
        let running = tokio::spawn(calsync_worker::run(store.clone(), sync, worker, clock, async move {
            let _ = done_rx.await;
        }));
        let bar = indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} syncing [{bar:40}] {pos}/{len} connections  {per_sec}  eta {eta}  {msg}",
            )
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
        );
        let tally = loop {
            let tally = store.connection_tally(start).await.map_err(|e| e.to_string())?;
            bar.set_position(total.saturating_sub(tally.due));
            bar.set_message(format!("{} ok", tally.synced_since));
            if tally.due == 0 || running.is_finished() {
                break tally;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        bar.finish();
        let _ = done_tx.send(());
        running.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        let secs = (chrono::Utc::now() - start).as_seconds_f64();
        let states: Vec<String> = tally.states.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!(
            "synced {} of {total} connections in {secs:.1} s ({} ok since the start); now: {}",
            total - tally.due,
            tally.synced_since,
            states.join(", ")
        );
        Ok(())
    })
}

//! `calsync worker` (the background jobs as their own process) and `calsync sync` (a sync run
//! now, in this process, with a progress bar).

use std::path::PathBuf;
use std::time::Duration;

use calsync_system::{Settings, System};

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
    /// The system these settings describe, its store indexed as the server indexes it.
    pub async fn open(&self) -> Result<System, String> {
        let mut settings = Settings::from_environment(&self.config)?;
        if let Some(database) = &self.database {
            settings.database_url = database.clone();
        }
        System::open(&settings).await
    }
}

/// Why a command that syncs calendars cannot run.
const NO_SECRET_KEY: &str = "calendar syncs need a secret_key in the configuration (CALSYNC_SECRET_KEY)";

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
        let system = args.placement.open().await?;
        let worker = system.worker_settings()?;
        tracing::info!(name = %worker.name, concurrency = worker.concurrency, "worker started");
        if !system.syncs_calendars() {
            tracing::warn!("{NO_SECRET_KEY}: this worker polls publishers only");
        }
        system.run_worker(worker, stop_signal()).await
    })
}

pub fn run_sync(args: SyncArgs) -> Result<(), String> {
    if !args.all {
        return Err("say which connections: --all".into());
    }
    crate::serve::init_logs_quiet();
    runtime()?.block_on(async move {
        let system = args.placement.open().await?;
        if !system.syncs_calendars() {
            return Err(NO_SECRET_KEY.into());
        }
        let (cases, cx) = (system.use_cases(), system.operator());
        let start = cx.now;
        let total = cases.sync_all_connections(&cx).await.map_err(|e| e.to_string())? as u64;
        let mut worker = system.worker_settings()?;
        worker.nightly = None;
        worker.sweep = Duration::from_secs(5);
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let runner = system.clone();
        let running = tokio::spawn(async move {
            runner
                .run_worker(worker, async move {
                    let _ = done_rx.await;
                })
                .await
        });
        let bar = indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} syncing [{bar:40}] {pos}/{len} connections  {per_sec}  eta {eta}  {msg}",
            )
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
        );
        let tally = loop {
            let tally = cases.connection_tally(&cx, start).await.map_err(|e| e.to_string())?;
            bar.set_position(total.saturating_sub(tally.due));
            bar.set_message(format!("{} ok", tally.synced_since));
            if tally.due == 0 || running.is_finished() {
                break tally;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        bar.finish();
        let _ = done_tx.send(());
        running.await.map_err(|e| e.to_string())??;
        let secs = (cases.clock().now() - start).as_seconds_f64();
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

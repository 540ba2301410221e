//! `calsync serve`: the FHIR server on the embedded SQLite database (or PostgreSQL).

use std::path::PathBuf;

use calsync_system::{Application, AuthMode, Settings};

/// Arguments of `calsync serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides the configuration).
    #[arg(long)]
    bind: Option<String>,
    /// Database URL: a SQLite file (created on first start) or postgres://... (overrides the configuration).
    #[arg(long)]
    database: Option<String>,
    /// Folder of the layered configuration (base.toml, $CALSYNC_ENV.toml).
    #[arg(long, default_value = "config")]
    config: PathBuf,
    /// FHIR NDJSON files to load at start (each resource written under its own id), e.g. the demo week.
    #[arg(long = "load", value_name = "FILE")]
    load: Vec<PathBuf>,
    /// iCalendar files to import into participants' derived Schedules at start, as
    /// SCHEDULE=FILE (like `POST /Schedule/SCHEDULE/$import-ics`), e.g. the demo calendars.
    #[arg(long = "import-ics", value_name = "SCHEDULE=FILE")]
    import_ics: Vec<String>,
    /// Connect a participant to an emulated Google or Microsoft calendar holding an iCalendar
    /// file's busy time, as PROVIDER:PARTICIPANT=FILE (the demo: google:RelatedPerson/son=son.ics).
    /// The emulators run in this process; the worker syncs the connections.
    #[arg(long = "emulate-calendar", value_name = "PROVIDER:PARTICIPANT=FILE")]
    emulate_calendar: Vec<String>,
    /// Run the server's clock from this instant (RFC 3339) instead of now; time passes as
    /// usual. For demos whose data is a fixed week.
    #[arg(long)]
    clock_start: Option<chrono::DateTime<chrono::Utc>>,
}

/// Logs to stderr at `CALSYNC_LOG` (default `info`). Logs carry ids, counts and timings only,
/// never resource content or calendar data (see docs/ARCHITECTURE.md).
pub fn init_logs() {
    init_logs_at("info");
}

/// Logs warnings only unless `CALSYNC_LOG` says otherwise (commands with a progress bar).
pub fn init_logs_quiet() {
    init_logs_at("warn");
}

fn init_logs_at(default: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CALSYNC_LOG").unwrap_or_else(|_| default.into()))
        .with_writer(std::io::stderr)
        .init();
}

pub fn run(args: ServeArgs) -> Result<(), String> {
    init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let mut settings = Settings::from_environment(&args.config)?;
        if let Some(bind) = &args.bind {
            settings.bind = bind.clone();
        }
        if let Some(database) = &args.database {
            settings.database_url = database.clone();
        }
        settings.clock_start = args.clock_start;
        let now = args.clock_start.unwrap_or_else(chrono::Utc::now);
        let emulated = crate::emulate::start(&args.emulate_calendar, &mut settings, now)?;
        let app = Application::build(&settings).await?;
        let (system, cases) = (app.system().clone(), app.system().use_cases().clone());
        for file in &args.load {
            load(&system, file).await?;
        }
        for pair in &args.import_ics {
            let (schedule, file) =
                pair.split_once('=').ok_or_else(|| format!("--import-ics {pair:?}: expected SCHEDULE=FILE"))?;
            let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?;
            let imported = cases
                .import_calendar(&system.operator(), schedule, &text)
                .await
                .map_err(|e| format!("--import-ics {pair}: {e}"))?;
            println!("imported {file} into Schedule/{schedule}: {} busy windows", imported.busy);
        }
        emulated.connect(&system).await?;
        let host = settings.bind.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h).replace("0.0.0.0", "127.0.0.1");
        let base = format!("http://{host}:{}", app.port());
        let mode = settings.auth.mode();
        let unguarded = if mode == AuthMode::None { "  WITHOUT AUTHORIZATION: every caller may do everything" } else { "" };
        println!("calsync FHIR server on {base}  (database: {}){unguarded}", redact(&settings.database_url));
        if mode == AuthMode::None {
            tracing::warn!("[auth] mode = \"none\": every caller may read and change everything");
        }
        println!("  curl {base}/metadata");
        let bearer = if mode == AuthMode::Development {
            println!("  TOKEN=$(calsync token --as Patient/maria)   # the development issuer; see docs/security.md");
            " -H \"Authorization: Bearer $TOKEN\""
        } else {
            ""
        };
        println!("  curl{bearer} '{base}/Slot?schedule=dr-okafor&start=ge2026-12-11&status=free&_count=5'");
        println!(
            "  curl{bearer} '{base}/Appointment/$find-mutual?start=2026-12-07&end=2026-12-11&duration=30&participant=Patient/maria&participant=RelatedPerson/daughter&optional-participant=RelatedPerson/son&timezone=America/New_York&_count=3'"
        );
        println!("  (the whole story, hold, book and cancel, is in README.md)");
        // The embedded default: the worker runs in this process (production runs `calsync worker`).
        let (stop_worker, stopped) = tokio::sync::oneshot::channel::<()>();
        let worker = if settings.sync.worker {
            let worker = system.worker_settings()?;
            let system = system.clone();
            Some(tokio::spawn(async move {
                system
                    .run_worker(worker, async move {
                        let _ = stopped.await;
                    })
                    .await
            }))
        } else {
            None
        };
        let served = app.run().await.map_err(|e| e.to_string());
        let _ = stop_worker.send(());
        if let Some(worker) = worker {
            worker.await.map_err(|e| e.to_string())??;
        }
        served
    })
}

/// Resources per bulk write while loading.
const LOAD_BATCH: usize = 5000;

/// Writes every resource of an NDJSON file under its own id, in bulk transactions of
/// [`LOAD_BATCH`] (idempotent across restarts: unchanged resources keep their version).
async fn load(system: &calsync_system::System, file: &PathBuf) -> Result<(), String> {
    use std::io::BufRead;
    let name = file.display().to_string();
    let reader =
        std::fs::File::open(file).map(std::io::BufReader::new).map_err(|e| format!("cannot read {name}: {e}"))?;
    let started = std::time::Instant::now();
    let (mut count, mut written) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(LOAD_BATCH);
    for (i, line) in reader.lines().enumerate() {
        let at = |e: &dyn std::fmt::Display| format!("{name}:{}: {e}", i + 1);
        let line = line.map_err(|e| at(&e))?;
        if line.trim().is_empty() {
            continue;
        }
        let head: serde_json::Value = serde_json::from_str(&line).map_err(|e| at(&e))?;
        let (Some(t), Some(id)) = (head["resourceType"].as_str(), head["id"].as_str()) else {
            return Err(at(&"a loaded resource needs resourceType and id"));
        };
        // The same checks as a client's write, here to name the line.
        let value = calsync_fhir::validate::resource(&line, t).map_err(|e| at(&e))?;
        batch.push((t.to_string(), id.to_string(), value));
        count += 1;
        if batch.len() == LOAD_BATCH {
            written += system
                .use_cases()
                .put_resources(&system.operator(), std::mem::take(&mut batch))
                .await
                .map_err(|e| format!("{name}: {e}"))?;
        }
    }
    written += system.use_cases().put_resources(&system.operator(), batch).await.map_err(|e| format!("{name}: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!("loaded {count} resources from {name} ({written} new or changed) in {secs:.1} s");
    Ok(())
}

/// The URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…{}", &url[..scheme], &url[at..]),
        _ => url.to_string(),
    }
}

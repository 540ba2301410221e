//! `calsync ingest URL|DIR`: register a SMART Scheduling Links publisher (or find it
//! registered) and poll it now, with a progress bar; then say what was stored and what was
//! wrong, with file and line.

use std::sync::Mutex;

use calsync_usecase::{IngestEvent as Event, IngestReport as Report, PublisherOptions as Options};

use crate::worker::{Placement, runtime};

/// Arguments of `calsync ingest`.
#[derive(clap::Args)]
pub struct IngestArgs {
    /// The publisher's manifest URL (ending in `$bulk-publish`), or a directory holding a
    /// `$bulk-publish` file and the files it lists.
    source: String,
    /// The zone of Locations whose address names no US state (IANA).
    #[arg(long)]
    zone: Option<String>,
    /// The publisher writes local times with a `Z`: read them in each Location's zone.
    #[arg(long)]
    local_times: bool,
    /// Read everything again: no conditional request, no `_since` (what the publisher no longer
    /// has is removed after a full set).
    #[arg(long)]
    full: bool,
    /// Problems listed at the end at most (all are counted).
    #[arg(long, default_value_t = 20)]
    problems: usize,
    #[command(flatten)]
    placement: Placement,
}

pub fn run(args: IngestArgs) -> Result<(), String> {
    crate::serve::init_logs_quiet();
    runtime()?.block_on(async move {
        let system = args.placement.open().await?;
        let (cases, cx) = (system.use_cases(), system.operator());
        let options = Options { zone: args.zone.clone(), local_times: args.local_times };
        let bar = indicatif::ProgressBar::new_spinner().with_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg}  {human_pos} lines  {per_sec}  {elapsed}")
                .map_err(|e| e.to_string())?,
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let files = Mutex::new((0usize, 0usize));
        let progress = |e: Event| match e {
            Event::Manifest { files: n } => {
                *files.lock().unwrap_or_else(|p| p.into_inner()) = (0, n);
                bar.set_prefix(format!("manifest read, {n} files"));
            }
            Event::File { resource_type, url, .. } => {
                let mut f = files.lock().unwrap_or_else(|p| p.into_inner());
                f.0 += 1;
                bar.set_prefix(format!("file {}/{}", f.0, f.1));
                let name = url.rsplit('/').next().unwrap_or_default().to_string();
                bar.set_message(format!("{resource_type} {name}"));
            }
            Event::Read { lines, .. } => bar.inc(lines),
        };
        let p = cases
            .ingest_now(&cx, &args.source, options, args.full, &progress)
            .await
            .map_err(|e| e.to_string())?;
        bar.finish_and_clear();
        let report: Report = p.report.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or_default();
        let secs = (cases.clock().now() - cx.now).as_seconds_f64();
        println!("publisher {} ({}): {} in {secs:.1} s", p.id, p.manifest_url, p.state);
        for (t, c) in &report.types {
            let kept = if c.kept > 0 { format!(" ({} kept at their last good version)", c.kept) } else { String::new() };
            println!(
                "  {t}: {} lines, {} new, {} changed, {} unchanged, {} bad{kept}",
                c.lines, c.created, c.changed, c.unchanged, c.bad
            );
        }
        if report.full {
            println!("  a full data set: {} removed that the publisher no longer has", report.removed);
        }
        for (kind, n) in &report.repairs {
            println!("  repaired ({kind}): {n}, e.g.");
            for x in report.repaired.iter().filter(|x| &x.kind == kind).take(2) {
                println!("    {}:{}: {}", x.file.rsplit('/').next().unwrap_or_default(), x.line, x.message);
            }
        }
        for (t, n) in &report.skipped_types {
            println!("  skipped: {n} file(s) of {t} (not kept by calsync)");
        }
        if report.suspect_local_times > 0 {
            println!(
                "  {} Slots start between midnight and 5 am local time: if the publisher writes local times with Z, ingest again with --local-times",
                report.suspect_local_times
            );
        }
        for x in report.problems.iter().take(args.problems) {
            let file = x.file.rsplit('/').next().unwrap_or_default();
            println!("  {file}:{}: {}: {}", x.line, x.kind, x.message);
        }
        if report.problem_count as usize > args.problems.min(report.problems.len()) {
            println!("  ... {} problems in all (GET /publishers/{} lists the first 200)", report.problem_count, p.id);
        }
        match p.state.as_str() {
            "error" => Err(p.reason.unwrap_or_else(|| "the poll failed".into())),
            _ => Ok(()),
        }
    })
}

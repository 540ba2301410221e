//! `calsync busy`: the busy windows (or every occurrence) calsync reads from an iCalendar file.

use std::io::Write;
use std::path::PathBuf;

use calsync_core::Interval;
use calsync_ical::Calendar;

use crate::when::{self, DateEnd};

/// Arguments of `calsync busy`.
#[derive(clap::Args)]
pub struct BusyArgs {
    /// The iCalendar file.
    file: PathBuf,
    /// Start of the horizon (date, local date-time or RFC 3339 instant).
    #[arg(long)]
    from: String,
    /// End of the horizon; a date includes that day.
    #[arg(long)]
    to: String,
    /// The calendar owner's IANA zone: reads all-day and floating times.
    #[arg(long, default_value = "UTC")]
    tz: String,
    /// Print every occurrence, free ones too, with status and transparency.
    #[arg(long)]
    all: bool,
}

pub fn run(args: BusyArgs) -> Result<(), String> {
    let zone = when::zone(&args.tz)?;
    let horizon =
        Interval::new(when::instant(&args.from, zone, DateEnd::Start)?, when::instant(&args.to, zone, DateEnd::End)?);
    let name = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).map_err(|e| format!("cannot read {name}: {e}"))?;
    let expansion = Calendar::parse(&text).and_then(|c| c.expand(horizon, zone)).map_err(|e| format!("{name}: {e}"))?;
    for w in &expansion.warnings {
        eprintln!("calsync: warning: {name}: {w}");
    }
    let mut out = std::io::stdout().lock();
    let lines: Vec<String> = if args.all {
        expansion.occurrences.iter().map(|o| serde_json::to_string(o).expect("plain data")).collect()
    } else {
        expansion
            .busy()
            .iter()
            .map(|b| {
                serde_json::json!({"start": b.interval.start, "end": b.interval.end, "status": b.status}).to_string()
            })
            .collect()
    };
    for line in lines {
        writeln!(out, "{line}").map_err(|e| e.to_string())?;
    }
    Ok(())
}

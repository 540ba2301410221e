//! `calsync generate`: synthetic provider availability (Location, Schedule, Slot NDJSON) for
//! benchmarks and load tests. Deterministic: the same arguments write the same files.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use chrono::{Datelike, NaiveDate, TimeDelta, Weekday};

/// Arguments of `calsync generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Folder to write `Location.ndjson`, `Schedule.ndjson` and `Slot.ndjson` into.
    #[arg(long)]
    out: PathBuf,
    /// Locations, each with one Schedule.
    #[arg(long, default_value_t = 2000)]
    locations: u32,
    /// Slots in all, spread evenly over the Schedules.
    #[arg(long, default_value_t = 1_000_000)]
    slots: u64,
    /// First day of Slots (a Monday is a good choice).
    #[arg(long, default_value = "2027-01-04")]
    from: NaiveDate,
    /// Participants to write into `Participant.ndjson`: a Patient and then RelatedPersons of
    /// that patient, each with a derived Schedule of busy Slots (0: no file).
    #[arg(long, default_value_t = 0)]
    participants: u32,
    /// Busy Slots per participant, 15 to 60 minutes each, between 07:00 and 23:00 UTC.
    #[arg(long, default_value_t = 2000)]
    busy: u32,
    /// Days from `from` over which the busy Slots spread.
    #[arg(long, default_value_t = 90)]
    busy_days: u32,
    /// Also write a SMART Scheduling Links manifest (`$bulk-publish`) listing the three files,
    /// so that the folder is a publisher's feed (`calsync ingest`, or any static web server).
    #[arg(long)]
    manifest: bool,
}

/// Half-hour Slots per working day, from 14:00 UTC (09:00 in New York).
const SLOTS_PER_DAY: u64 = 10;

pub fn run(args: GenerateArgs) -> Result<(), String> {
    if args.locations == 0 {
        return Err("--locations must be at least 1".into());
    }
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let file = |name: &str| -> Result<BufWriter<std::fs::File>, String> {
        let path = args.out.join(name);
        std::fs::File::create(&path).map(BufWriter::new).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    let (mut locations, mut schedules, mut slots) =
        (file("Location.ndjson")?, file("Schedule.ndjson")?, file("Slot.ndjson")?);
    let io = |e: std::io::Error| e.to_string();
    if args.manifest {
        let output = ["Location", "Schedule", "Slot"].map(|t| {
            let mut o = serde_json::json!({"type": t, "url": format!("{t}.ndjson")});
            if t == "Slot" {
                o["extension"] = serde_json::json!({"state": ["MA"]});
            }
            o
        });
        let manifest = serde_json::json!({"transactionTime": format!("{}T00:00:00.000Z", args.from),
            "request": "$bulk-publish", "output": output, "error": []});
        std::fs::write(args.out.join("$bulk-publish"), format!("{manifest:#}\n")).map_err(io)?;
    }
    for l in 0..args.locations {
        writeln!(
            locations,
            r#"{{"resourceType":"Location","id":"loc-{l}","name":"Clinic {l}","telecom":[{{"system":"phone","value":"+1-555-{:07}"}}],"address":{{"city":"Springfield","state":"MA","postalCode":"{:05}"}}}}"#,
            l,
            1000 + l % 9000
        )
        .map_err(io)?;
        writeln!(
            schedules,
            r#"{{"resourceType":"Schedule","id":"sched-{l}","active":true,"actor":[{{"reference":"Location/loc-{l}"}}],"serviceType":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/service-type","code":"124"}}]}}]}}"#
        )
        .map_err(io)?;
    }
    let per_schedule = args.slots / u64::from(args.locations);
    let extra = args.slots % u64::from(args.locations);
    let mut written = 0u64;
    for l in 0..args.locations {
        let count = per_schedule + u64::from(u64::from(l) < extra);
        let mut day = args.from;
        let mut n = 0;
        while n < count {
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                let midnight = day.and_time(Default::default()).and_utc();
                for k in 0..SLOTS_PER_DAY.min(count - n) {
                    let start = midnight + TimeDelta::hours(14) + TimeDelta::minutes(30 * k as i64);
                    let end = start + TimeDelta::minutes(30);
                    // One Slot in five is already booked, spread by a fixed hash.
                    let busy = (u64::from(l) * 7919 + n * 104_729) % 5 == 0;
                    writeln!(
                        slots,
                        r#"{{"resourceType":"Slot","id":"s-{l}-{n}","schedule":{{"reference":"Schedule/sched-{l}"}},"status":"{}","start":"{}","end":"{}"}}"#,
                        if busy { "busy" } else { "free" },
                        start.format("%Y-%m-%dT%H:%M:%SZ"),
                        end.format("%Y-%m-%dT%H:%M:%SZ"),
                    )
                    .map_err(io)?;
                    n += 1;
                }
            }
            day = day.succ_opt().ok_or("date out of range")?;
        }
        written += count;
    }
    for w in [&mut locations, &mut schedules, &mut slots] {
        w.flush().map_err(io)?;
    }
    if args.participants > 0 {
        let mut people = file("Participant.ndjson")?;
        write_participants(&mut people, &args).map_err(io)?;
        people.flush().map_err(io)?;
        println!(
            "wrote {} participants with {} busy Slots each to {}",
            args.participants,
            args.busy,
            args.out.join("Participant.ndjson").display()
        );
    }
    println!(
        "wrote {} Locations, {} Schedules, {written} Slots to {}",
        args.locations,
        args.locations,
        args.out.display()
    );
    Ok(())
}

/// Participants `Patient/p-0`, `RelatedPerson/p-1`, ...: each with a derived Schedule
/// (`Schedule/ps-k`, participant-availability in UTC) and `busy` busy Slots at pseudo-random
/// times (a fixed linear congruential sequence, so the files are the same every time).
fn write_participants(out: &mut impl Write, args: &GenerateArgs) -> std::io::Result<()> {
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let midnight = args.from.and_time(Default::default()).and_utc();
    for k in 0..args.participants {
        let (t, extra) = if k == 0 {
            ("Patient", String::new())
        } else {
            ("RelatedPerson", r#","patient":{"reference":"Patient/p-0"}"#.to_string())
        };
        writeln!(out, r#"{{"resourceType":"{t}","id":"p-{k}"{extra}}}"#)?;
        writeln!(
            out,
            r#"{{"resourceType":"Schedule","id":"ps-{k}","active":true,"actor":[{{"reference":"{t}/p-{k}"}}],"extension":[{{"url":"{}","extension":[{{"url":"timezone","valueCode":"UTC"}}]}}]}}"#,
            calsync_fhir::availability::AVAILABILITY_EXTENSION
        )?;
        for n in 0..args.busy {
            let day = next(u64::from(args.busy_days.max(1)));
            let minute = 7 * 60 + next(16 * 60 - 60);
            let start = midnight + TimeDelta::days(day as i64) + TimeDelta::minutes(minute as i64);
            let end = start + TimeDelta::minutes(15 * (1 + next(4)) as i64);
            writeln!(
                out,
                r#"{{"resourceType":"Slot","id":"pb-{k}-{n}","schedule":{{"reference":"Schedule/ps-{k}"}},"status":"busy","start":"{}","end":"{}"}}"#,
                start.format("%Y-%m-%dT%H:%M:%SZ"),
                end.format("%Y-%m-%dT%H:%M:%SZ"),
            )?;
        }
    }
    Ok(())
}

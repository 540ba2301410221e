//! `calsync find`: provider Slot files plus participants' calendars in, mutual times out.

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{TimeDelta, Utc};
use chrono_tz::Tz;

use calsync_core::{Attendance, Interval, MutualQuery, Participant, Preference, SlotBook, WeeklyWindow, find_mutual};
use calsync_fhir::{AppointmentParticipant, ProviderData};

use crate::render::{self, Format};
use crate::when::{self, DateEnd};

/// Arguments of `calsync find`.
#[derive(clap::Args)]
pub struct FindArgs {
    /// Provider availability: SMART Scheduling Links NDJSON or FHIR JSON (resource or Bundle).
    #[arg(long = "slots", value_name = "FILE", required = true, num_args = 1..)]
    slots: Vec<PathBuf>,
    /// A participant's calendar as NAME=FILE.ics. The first is the patient, the others
    /// caregivers; NAME may also be a reference such as Patient/123 or RelatedPerson/7.
    #[arg(long = "participant", value_name = "NAME=FILE")]
    participants: Vec<String>,
    /// A participant who is welcome but not required.
    #[arg(long = "optional", value_name = "NAME")]
    optional: Vec<String>,
    /// Start of the search window: YYYY-MM-DD, YYYY-MM-DDTHH:MM (in --tz) or an RFC 3339 instant.
    #[arg(long)]
    from: String,
    /// End of the search window; a date includes that whole day.
    #[arg(long)]
    to: String,
    /// Length of the appointment (30m, 1h, 1h30m).
    #[arg(long, default_value = "30m")]
    duration: String,
    /// Zone for reading --from/--to and showing times (IANA name). Default: this machine's zone.
    #[arg(long)]
    tz: Option<String>,
    /// Preference for ranking: mornings, afternoons, evenings, weekdays, weekends or day names.
    #[arg(long = "prefer", value_name = "PREFERENCE")]
    prefer: Vec<String>,
    /// How many options to show.
    #[arg(long, default_value_t = 5)]
    limit: usize,
    /// Show options on distinct days.
    #[arg(long)]
    spread: bool,
    /// Also show provider times that do not work and who blocks them.
    #[arg(long)]
    explain: bool,
    /// Output: table for people, json (documented in docs/cli.md), fhir (a searchset Bundle).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Distance between start times offered inside a long provider Slot.
    #[arg(long, default_value = "15m")]
    step: String,
    /// A participant's own zone, NAME=ZONE (default: --tz): reads their all-day events and hours.
    #[arg(long = "zone", value_name = "NAME=ZONE")]
    zones: Vec<String>,
    /// Hours a participant can attend, NAME="mon-fri 09:00-17:00" (repeatable).
    #[arg(long = "hours", value_name = "NAME=WINDOW")]
    hours: Vec<String>,
    /// Travel time kept clear before and after a participant's busy time, NAME=DURATION.
    #[arg(long = "buffer", value_name = "NAME=DURATION")]
    buffers: Vec<String>,
    /// Minimum notice a participant needs, NAME=DURATION.
    #[arg(long = "notice", value_name = "NAME=DURATION")]
    notice: Vec<String>,
    /// Count a participant's tentative events as free.
    #[arg(long = "tentative-free", value_name = "NAME")]
    tentative_free: Vec<String>,
    /// How far past --to to look for alternatives when nothing fits.
    #[arg(long, default_value = "14d")]
    lookahead: String,
    /// The present instant (default: now); nothing before it is offered.
    #[arg(long)]
    now: Option<String>,
}

/// Splits `NAME=VALUE`.
fn pair<'a>(flag: &str, s: &'a str) -> Result<(&'a str, &'a str), String> {
    s.split_once('=')
        .map(|(n, v)| (n.trim(), v.trim()))
        .filter(|(n, v)| !n.is_empty() && !v.is_empty())
        .ok_or_else(|| format!("--{flag} expects NAME=VALUE, got {s:?}"))
}

/// Participants by name, in command-line order.
struct Roster {
    people: Vec<Participant>,
    index: HashMap<String, usize>,
}

impl Roster {
    fn get(&mut self, flag: &str, name: &str) -> Result<&mut Participant, String> {
        let i =
            *self.index.get(name).ok_or_else(|| format!("--{flag} names {name:?}, which is not a --participant"))?;
        Ok(&mut self.people[i])
    }
}

fn default_zone() -> Tz {
    localzone::get_local_zone().and_then(|z| z.parse().ok()).unwrap_or(chrono_tz::UTC)
}

pub fn run(args: FindArgs) -> Result<(), String> {
    let zone = match &args.tz {
        Some(z) => when::zone(z)?,
        None => default_zone(),
    };
    let now = match &args.now {
        Some(s) => when::instant(s, zone, DateEnd::Start)?,
        None => Utc::now(),
    };
    let window =
        Interval::new(when::instant(&args.from, zone, DateEnd::Start)?, when::instant(&args.to, zone, DateEnd::End)?);
    if window.is_empty() {
        return Err(format!("--to ({}) must be after --from ({})", args.to, args.from));
    }
    let duration = when::duration(&args.duration)?;
    let lookahead = when::duration(&args.lookahead)?;

    let mut query = MutualQuery::new(window, duration, now);
    query.step = when::duration(&args.step)?;
    query.limit = args.limit.max(1);
    query.spread = args.spread;
    query.explain = args.explain;
    query.zone = zone;
    query.lookahead = lookahead;
    query.preferences =
        args.prefer.iter().map(|p| p.parse::<Preference>().map_err(|e| e.to_string())).collect::<Result<_, _>>()?;

    let mut providers = ProviderData::default();
    for path in &args.slots {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {name}: {e}"))?;
        providers.read(&name, &text);
    }
    for p in &providers.problems {
        eprintln!("calsync: warning: skipped {p}");
    }

    let (people, files) = participants(&args, zone)?;
    // Busy time is read over the window plus look-ahead and a day either side for buffers.
    let horizon = Interval::new(window.start - TimeDelta::days(1), window.end + lookahead + TimeDelta::days(1));
    let mut roster = Roster { index: people.iter().enumerate().map(|(i, p)| (p.id.clone(), i)).collect(), people };
    for (person, file) in roster.people.iter_mut().zip(&files) {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {name}: {e}"))?;
        let (busy, warnings) =
            calsync_ical::busy_intervals(&text, horizon, person.zone).map_err(|e| format!("{name}: {e}"))?;
        for w in warnings {
            eprintln!("calsync: warning: {name}: {w}");
        }
        person.busy = busy;
    }
    apply_constraints(&args, &mut roster)?;

    let book = SlotBook::new(std::mem::take(&mut providers.slots));
    let outcome = find_mutual(&book, &roster.people, &query).map_err(|e| e.to_string())?;
    let appointment_people = appointment_participants(&roster.people);
    let text = render::render(
        args.format,
        &render::Context {
            query: &query,
            participants: &roster.people,
            appointment_people: &appointment_people,
            providers: &providers,
            outcome: &outcome,
        },
    );
    print!("{text}");
    Ok(())
}

/// Participants from `--participant NAME=FILE`, each in `--zone NAME=ZONE` or the query zone.
fn participants(args: &FindArgs, zone: Tz) -> Result<(Vec<Participant>, Vec<PathBuf>), String> {
    let mut zones = HashMap::new();
    for z in &args.zones {
        let (name, value) = pair("zone", z)?;
        zones.insert(name.to_string(), when::zone(value)?);
    }
    let mut people = Vec::new();
    let mut files = Vec::new();
    for spec in &args.participants {
        let (name, file) = pair("participant", spec)?;
        if people.iter().any(|p: &Participant| p.id == name) {
            return Err(format!("participant {name:?} is given twice"));
        }
        people.push(Participant::new(name, zones.get(name).copied().unwrap_or(zone), Vec::new()));
        files.push(PathBuf::from(file));
    }
    for name in zones.keys() {
        if !people.iter().any(|p| &p.id == name) {
            return Err(format!("--zone names {name:?}, which is not a --participant"));
        }
    }
    Ok((people, files))
}

fn apply_constraints(args: &FindArgs, roster: &mut Roster) -> Result<(), String> {
    for name in &args.optional {
        roster.get("optional", name)?.attendance = Attendance::Optional;
    }
    for name in &args.tentative_free {
        roster.get("tentative-free", name)?.constraints.tentative_is_busy = false;
    }
    for h in &args.hours {
        let (name, window) = pair("hours", h)?;
        let window: WeeklyWindow = window.parse().map_err(|e| format!("--hours {name}: {e}"))?;
        roster.get("hours", name)?.constraints.available.push(window);
    }
    for b in &args.buffers {
        let (name, d) = pair("buffer", b)?;
        let d = when::duration(d)?;
        let c = &mut roster.get("buffer", name)?.constraints;
        c.buffer_before = d;
        c.buffer_after = d;
    }
    for n in &args.notice {
        let (name, d) = pair("notice", n)?;
        roster.get("notice", name)?.constraints.minimum_notice = when::duration(d)?;
    }
    Ok(())
}

/// The first participant is the patient, the others caregivers, unless their name is a reference.
fn appointment_participants(people: &[Participant]) -> Vec<AppointmentParticipant> {
    people
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let reference = match (p.id.contains('/'), i) {
                (true, _) => p.id.clone(),
                (false, 0) => format!("Patient/{}", p.id),
                (false, _) => format!("RelatedPerson/{}", p.id),
            };
            AppointmentParticipant { reference, display: p.id.clone(), required: p.is_required() }
        })
        .collect()
}

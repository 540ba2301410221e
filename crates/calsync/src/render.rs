//! Output of `calsync find`: a table for people, stable JSON, or a FHIR searchset Bundle.

use std::fmt::Write;

use chrono_tz::Tz;
use serde::Serialize;

use calsync_core::{Blocker, Instant, Interval, MutualQuery, MutualSlot, Participant, SearchOutcome};
use calsync_fhir::{AppointmentParticipant, ProviderData, appointments_bundle};

/// Output format.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    /// For people: times in --tz.
    Table,
    /// Stable, documented JSON (docs/cli.md).
    Json,
    /// A FHIR R4 searchset Bundle of proposed Appointments.
    Fhir,
}

/// Everything an output needs.
pub struct Context<'a> {
    pub query: &'a MutualQuery,
    pub participants: &'a [Participant],
    pub appointment_people: &'a [AppointmentParticipant],
    pub providers: &'a ProviderData,
    pub outcome: &'a SearchOutcome,
}

pub fn render(format: Format, cx: &Context<'_>) -> String {
    match format {
        Format::Table => table(cx),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json(cx)).expect("plain data");
            s.push('\n');
            s
        }
        Format::Fhir => {
            let mut s = appointments_bundle(
                &cx.outcome.slots,
                cx.appointment_people,
                cx.providers,
                cx.outcome.explanation.no_fit.as_ref(),
            );
            s.push('\n');
            s
        }
    }
}

fn local(zone: Tz, t: Instant) -> chrono::DateTime<Tz> {
    t.with_timezone(&zone)
}

fn when(zone: Tz, i: &Interval) -> String {
    let (a, b) = (local(zone, i.start), local(zone, i.end));
    if a.date_naive() == b.date_naive() {
        format!("{} {}-{}", a.format("%a %Y-%m-%d"), a.format("%H:%M"), b.format("%H:%M"))
    } else {
        format!("{} - {}", a.format("%a %Y-%m-%d %H:%M"), b.format("%a %Y-%m-%d %H:%M"))
    }
}

fn names(people: &[Participant]) -> String {
    let names: Vec<&str> = people.iter().map(|p| p.id.as_str()).collect();
    match names.as_slice() {
        [] => "the provider".to_string(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn option_line(out: &mut String, n: usize, m: &MutualSlot, cx: &Context<'_>) {
    let place = cx.providers.place_of(&m.schedule).unwrap_or("");
    let _ = write!(out, "  {n:>2}. {}  {place}", when(cx.query.zone, &m.interval));
    let _ = write!(out, " ({}, {})", m.schedule, m.slot);
    if !m.absent.is_empty() {
        let _ = write!(out, "  without {}", m.absent.join(", "));
    }
    out.push('\n');
}

fn blocker_text(zone: Tz, b: &Blocker) -> String {
    match b {
        Blocker::Busy { interval, status } => format!("{} {}", status.code(), when(zone, interval)),
        Blocker::OutsideAvailableHours { available } => format!("outside available hours ({})", available.join("; ")),
        Blocker::MinimumNotice { earliest } => {
            format!("needs notice: nothing before {}", local(zone, *earliest).format("%a %Y-%m-%d %H:%M"))
        }
    }
}

fn table(cx: &Context<'_>) -> String {
    let q = cx.query;
    let mut out = String::new();
    let minutes = q.duration.num_minutes();
    let found = &cx.outcome.slots;
    let e = &cx.outcome.explanation;
    if found.is_empty() {
        let _ = writeln!(out, "No {minutes}-minute time works for {} (times in {}).", names(cx.participants), q.zone);
    } else {
        let _ = writeln!(
            out,
            "{} {} for {} ({minutes} min, times in {}{}):",
            found.len(),
            if found.len() == 1 { "time works" } else { "times work" },
            names(cx.participants),
            q.zone,
            if q.spread { ", one per day" } else { "" },
        );
        for (i, m) in found.iter().enumerate() {
            option_line(&mut out, i + 1, m, cx);
        }
    }
    if let Some(why) = &e.no_fit {
        let _ = writeln!(out, "Why: {}.", why.describe());
    }
    if !e.alternatives.without_optional.is_empty() {
        let _ = writeln!(out, "Without the optional participants:");
        for (i, m) in e.alternatives.without_optional.iter().enumerate() {
            option_line(&mut out, i + 1, m, cx);
        }
    }
    if !e.alternatives.after_window.is_empty() {
        let _ = writeln!(out, "Nearest times after the window:");
        for (i, m) in e.alternatives.after_window.iter().enumerate() {
            option_line(&mut out, i + 1, m, cx);
        }
    }
    if !e.rejected.is_empty() {
        let _ = writeln!(out, "Provider times that do not work:");
        for r in &e.rejected {
            let reasons: Vec<String> = r
                .blocked_by
                .iter()
                .map(|b| {
                    let why: Vec<String> = b.blockers.iter().map(|x| blocker_text(q.zone, x)).collect();
                    format!("{}: {}", b.participant, why.join(", "))
                })
                .collect();
            let _ = writeln!(out, "  - {}  {}", when(q.zone, &r.interval), reasons.join("; "));
        }
    }
    out
}

/// One option in the JSON output.
#[derive(Serialize)]
struct OptionOut<'a> {
    start: Instant,
    end: Instant,
    local_start: String,
    slot: &'a str,
    schedule: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    place: Option<&'a str>,
    score: u32,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    absent: &'a [String],
}

fn options<'a>(list: &'a [MutualSlot], cx: &'a Context<'_>) -> Vec<OptionOut<'a>> {
    list.iter()
        .map(|m| OptionOut {
            start: m.interval.start,
            end: m.interval.end,
            local_start: local(cx.query.zone, m.interval.start).to_rfc3339(),
            slot: &m.slot,
            schedule: &m.schedule,
            place: cx.providers.place_of(&m.schedule),
            score: m.score,
            absent: &m.absent,
        })
        .collect()
}

fn json(cx: &Context<'_>) -> serde_json::Value {
    let q = cx.query;
    let e = &cx.outcome.explanation;
    let participants: Vec<serde_json::Value> = cx
        .participants
        .iter()
        .zip(cx.appointment_people)
        .map(|(p, a)| {
            serde_json::json!({
                "name": p.id, "reference": a.reference, "zone": p.zone.name(),
                "required": p.is_required(), "busy_intervals": p.busy.len(),
            })
        })
        .collect();
    serde_json::json!({
        "query": {
            "from": q.window.start, "to": q.window.end, "duration_minutes": q.duration.num_minutes(),
            "zone": q.zone.name(), "limit": q.limit, "spread": q.spread,
            "preferences": q.preferences.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "participants": participants,
        },
        "slots": options(&cx.outcome.slots, cx),
        "no_fit": e.no_fit.as_ref().map(|n| serde_json::json!({"detail": n, "message": n.describe()})),
        "alternatives": {
            "without_optional": options(&e.alternatives.without_optional, cx),
            "after_window": options(&e.alternatives.after_window, cx),
        },
        "rejected": e.rejected,
        "problems": cx.providers.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
    })
}

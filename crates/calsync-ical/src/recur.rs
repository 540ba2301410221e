//! RRULE expansion on the wall clock.
//!
//! A recurrence repeats in the local time of its DTSTART (RFC 5545 §3.3.10), so the
//! rule is expanded on naive wall-clock times and each occurrence is placed on its
//! zone afterwards. The `rrule` crate does the BY* arithmetic; it is run on a zone
//! without transitions, and UNTIL is first moved onto the same wall clock.

use chrono::{NaiveDateTime, NaiveTime, TimeZone};
use rrule::{RRule, Tz as RuleClock, Unvalidated};

use crate::ParseError;
use crate::lexer::Property;

/// Occurrences of a rule, never past the horizon.
#[derive(Debug, Clone, Default)]
pub struct Expanded {
    /// Wall-clock start times, in order, DTSTART included when the rule yields it.
    pub occurrences: Vec<NaiveDateTime>,
    /// True when the expansion stopped at [`MAX_OCCURRENCES`] before the horizon.
    pub truncated: bool,
}

/// A bound on occurrences per rule, so a `FREQ=SECONDLY` rule cannot exhaust memory.
pub const MAX_OCCURRENCES: usize = 200_000;

const PARTS: &[&str] = &[
    "FREQ", "INTERVAL", "COUNT", "BYSECOND", "BYMINUTE", "BYHOUR", "BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO",
    "BYMONTH", "BYSETPOS", "WKST",
];

/// Expands `rule` from `dtstart` up to `horizon_end` (both wall clock). A UTC UNTIL is moved to
/// the wall clock with `utc_to_local`; a DATE UNTIL includes its whole day.
pub fn expand(
    rule: &Property,
    dtstart: NaiveDateTime,
    horizon_end: NaiveDateTime,
    utc_to_local: impl Fn(NaiveDateTime) -> NaiveDateTime,
) -> Result<Expanded, ParseError> {
    let err = |m: String| ParseError::new(rule.line, format!("RRULE: {m}"));
    let mut kept = Vec::new();
    let mut until = None;
    for part in rule.value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| err(format!("{part:?} is not KEY=VALUE")))?;
        let key = key.trim().to_ascii_uppercase();
        let value = value.trim().trim_end_matches(',');
        if key == "UNTIL" {
            until = Some(parse_until(value, &utc_to_local).ok_or_else(|| err(format!("bad UNTIL {value:?}")))?);
        } else if PARTS.contains(&key.as_str()) {
            kept.push(format!("{key}={value}"));
        }
        // Other parts (X- names, RSCALE...) do not change busy time we can compute; they are ignored.
    }
    let clock = |t: NaiveDateTime| RuleClock::UTC.from_utc_datetime(&t);
    let mut parsed: RRule<Unvalidated> = kept.join(";").parse().map_err(|e| err(format!("{e}")))?;
    if let Some(u) = until {
        if u < dtstart {
            // Nothing repeats; DTSTART alone stands.
            return Ok(Expanded { occurrences: vec![dtstart], truncated: false });
        }
        parsed = parsed.until(clock(u));
    }
    let set = parsed.build(clock(dtstart)).map_err(|e| err(format!("{e}")))?.limit();
    let mut out = Expanded::default();
    for t in &set {
        let t = t.naive_utc();
        if t > horizon_end {
            break;
        }
        if out.occurrences.len() == MAX_OCCURRENCES {
            out.truncated = true;
            break;
        }
        out.occurrences.push(t);
    }
    Ok(out)
}

fn parse_until(value: &str, utc_to_local: &impl Fn(NaiveDateTime) -> NaiveDateTime) -> Option<NaiveDateTime> {
    if value.len() == 8 {
        let d = chrono::NaiveDate::parse_from_str(value, "%Y%m%d").ok()?;
        return d.and_time(NaiveTime::from_hms_opt(23, 59, 59)?).into();
    }
    let (body, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(b) => (b, true),
        None => (value, false),
    };
    let t = NaiveDateTime::parse_from_str(body, "%Y%m%dT%H%M%S").ok()?;
    Some(if utc { utc_to_local(t) } else { t })
}

//! RRULE expansion on the wall clock.
//!
//! A recurrence repeats in the local time of its DTSTART (RFC 5545 §3.3.10), so the
//! rule is expanded on naive wall-clock times and each occurrence is placed on its
//! zone afterwards. The `rrule` crate does the BY* arithmetic; it is run on a zone
//! without transitions, and UNTIL is first moved onto the same wall clock.

use chrono::{NaiveDateTime, NaiveTime, TimeZone};
use rrule::{RRule, Tz as RuleClock, Unvalidated};

use crate::ParseError;
use crate::budget::Budget;
use crate::lexer::Property;

const PARTS: &[&str] = &[
    "FREQ",
    "INTERVAL",
    "COUNT",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
];

/// Expands `rule` from `dtstart` up to `horizon_end` (both wall clock). A UTC UNTIL is moved to
/// the wall clock with `utc_to_local`; a DATE UNTIL means midnight at the start of that day (as
/// dateutil and Google read it). An empty rule repeats nothing; a rule whose UNTIL lies before
/// DTSTART has no occurrences at all (Google writes those for "delete this and following").
/// `sole_rule` says the rule is its event's only RRULE: then an off-rule DTSTART is the first of
/// COUNT occurrences (RFC 5545 §3.8.5.3); with several rules each COUNT bounds its own rule.
/// Every occurrence generated is paid from `budget`; a rule that would overspend it is an error.
/// The returned wall-clock start times are in order, DTSTART first.
pub fn expand(
    rule: &Property,
    sole_rule: bool,
    dtstart: NaiveDateTime,
    horizon_end: NaiveDateTime,
    utc_to_local: impl Fn(NaiveDateTime) -> NaiveDateTime,
    budget: &mut Budget,
) -> Result<Vec<NaiveDateTime>, ParseError> {
    let err = |m: String| ParseError::new(rule.line, format!("RRULE: {m}"));
    if rule.value.trim().is_empty() {
        return Ok(vec![dtstart]);
    }
    let mut kept = Vec::new();
    let mut until = None;
    let mut count: Option<usize> = None;
    for part in rule.value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        // The rrule crate slices values by bytes: a character of several (`BYDAY=舀O`) panicked it.
        if !part.is_ascii() {
            return Err(err(format!("{part:?} is not ASCII")));
        }
        let (key, value) = part.split_once('=').ok_or_else(|| err(format!("{part:?} is not KEY=VALUE")))?;
        let key = key.trim().to_ascii_uppercase();
        let value = value.trim().trim_end_matches(',');
        if key == "UNTIL" {
            until = Some(parse_until(value, &utc_to_local).ok_or_else(|| err(format!("bad UNTIL {value:?}")))?);
        } else if key == "COUNT" && value.parse::<i64>().is_ok_and(|n| n <= 0) {
            // A non-positive COUNT (seen in the wild as -1) means no count.
        } else if PARTS.contains(&key.as_str()) {
            if key == "COUNT" {
                count = value.parse().ok();
            }
            kept.push(format!("{key}={value}"));
        } else if !key.starts_with("X-") {
            return Err(err(format!("unknown rule part {key:?}")));
        }
    }
    let clock = |t: NaiveDateTime| RuleClock::UTC.from_utc_datetime(&t);
    let mut parsed: RRule<Unvalidated> = kept.join(";").parse().map_err(|e| err(format!("{e}")))?;
    if let Some(u) = until {
        if u < dtstart {
            return Ok(Vec::new());
        }
        parsed = parsed.until(clock(u));
    }
    let set = parsed.build(clock(dtstart)).map_err(|e| err(format!("{e}")))?.limit();
    // DTSTART is always the first occurrence (RFC 5545 §3.8.5.3), even when the rule would skip it.
    let mut out = vec![dtstart];
    // DTSTART counts as the first of COUNT occurrences, even when the rule itself skips it.
    let wanted = match (count, sole_rule) {
        (Some(n), true) => n.max(1),
        _ => usize::MAX,
    };
    budget.in_time(rule.line)?;
    for t in &set {
        let t = t.naive_utc();
        if t > horizon_end || out.len() >= wanted {
            break;
        }
        if t == dtstart {
            continue;
        }
        budget.spend(1, rule.line)?;
        out.push(t);
    }
    Ok(out)
}

fn parse_until(value: &str, utc_to_local: &impl Fn(NaiveDateTime) -> NaiveDateTime) -> Option<NaiveDateTime> {
    if value.len() == 8 {
        let d = chrono::NaiveDate::parse_from_str(value, "%Y%m%d").ok()?;
        return Some(d.and_time(NaiveTime::MIN));
    }
    let (body, utc) = match value.strip_suffix(['Z', 'z']) {
        Some(b) => (b, true),
        None => (value, false),
    };
    let t = NaiveDateTime::parse_from_str(body, "%Y%m%dT%H%M%S").ok()?;
    Some(if utc { utc_to_local(t) } else { t })
}

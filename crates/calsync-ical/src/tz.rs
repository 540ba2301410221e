//! Time zones of an iCalendar file: IANA names, vendor-prefixed names, in-file
//! VTIMEZONE definitions and Windows names, with RFC 5545's rule for wall-clock
//! times that do not exist or happen twice.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{LocalResult, NaiveDateTime, TimeDelta, TimeZone};
use chrono_tz::Tz;

use calsync_core::Instant;

use crate::ParseError;
use crate::budget::Budget;
use crate::lexer::Component;
use crate::recur;
use crate::value;

/// The rules of one zone.
#[derive(Debug, Clone)]
pub enum Zone {
    /// An IANA zone.
    Iana(Tz),
    /// A zone defined only by a VTIMEZONE in the file.
    Defined(Arc<DefinedZone>),
}

impl Zone {
    /// The instant the wall clock reads `local`, by RFC 5545 §3.3.5: a time that happens twice
    /// is the first one; a time skipped by a forward jump is read with the offset before the jump.
    pub fn to_utc(&self, local: NaiveDateTime) -> Instant {
        match self {
            Zone::Iana(tz) => match tz.from_local_datetime(&local) {
                LocalResult::Single(t) => t.to_utc(),
                LocalResult::Ambiguous(a, b) => a.to_utc().min(b.to_utc()),
                LocalResult::None => (local - calsync_core::zone::offset_before(*tz, local)).and_utc(),
            },
            Zone::Defined(z) => z.to_utc(local),
        }
    }

    /// The wall-clock reading at `t`.
    pub fn to_local(&self, t: Instant) -> NaiveDateTime {
        match self {
            Zone::Iana(tz) => tz.from_utc_datetime(&t.naive_utc()).naive_local(),
            Zone::Defined(z) => t.naive_utc() + z.offset_at(t),
        }
    }
}

/// A zone built from a VTIMEZONE: its transitions as (instant, offset after).
#[derive(Debug, Clone)]
pub struct DefinedZone {
    initial: TimeDelta,
    transitions: Vec<(Instant, TimeDelta)>,
}

impl DefinedZone {
    fn offset_at(&self, t: Instant) -> TimeDelta {
        let k = self.transitions.partition_point(|(at, _)| *at <= t);
        if k == 0 { self.initial } else { self.transitions[k - 1].1 }
    }

    fn to_utc(&self, local: NaiveDateTime) -> Instant {
        // Offsets in force a day either side bound the candidates (zones change at most once a day).
        let before = self.offset_at((local - TimeDelta::days(1)).and_utc());
        let after = self.offset_at((local + TimeDelta::days(1)).and_utc());
        [before, after]
            .into_iter()
            .filter_map(|off| {
                let t = (local - off).and_utc();
                (self.offset_at(t) == off).then_some(t)
            })
            .min()
            .unwrap_or_else(|| (local - before).and_utc())
    }

    /// Builds the zone from a VTIMEZONE's STANDARD and DAYLIGHT observances, up to `until`.
    fn from_component(c: &Component, until: NaiveDateTime, budget: &mut Budget) -> Result<Self, ParseError> {
        let mut transitions = Vec::new();
        let mut earliest: Option<(NaiveDateTime, TimeDelta)> = None;
        for obs in c.children.iter().filter(|o| o.name == "STANDARD" || o.name == "DAYLIGHT") {
            let need = |name: &str| {
                obs.property(name).ok_or_else(|| ParseError::new(obs.line, format!("{} without {name}", obs.name)))
            };
            let from = value::utc_offset(need("TZOFFSETFROM")?)?;
            let to = value::utc_offset(need("TZOFFSETTO")?)?;
            let dtstart = need("DTSTART")?;
            let start = value::moment(dtstart, &dtstart.value)?.local();
            let mut onsets = vec![start];
            for rule in obs.all("RRULE") {
                onsets.extend(recur::expand(rule, true, start, until, |u| u + from, budget)?);
            }
            for rdate in obs.all("RDATE") {
                for v in rdate.value.split(',') {
                    budget.spend(1, rdate.line)?;
                    onsets.push(value::moment(rdate, v)?.local());
                }
            }
            for onset in onsets {
                if earliest.is_none_or(|(e, _)| onset < e) {
                    earliest = Some((onset, from));
                }
                transitions.push(((onset - from).and_utc(), to));
            }
        }
        let Some((_, initial)) = earliest else {
            return Err(ParseError::new(c.line, "VTIMEZONE without STANDARD or DAYLIGHT"));
        };
        transitions.sort_by_key(|(at, _)| *at);
        transitions.dedup_by_key(|(at, _)| *at);
        Ok(DefinedZone { initial, transitions })
    }
}

/// Finds the zone each TZID of a file stands for.
#[derive(Debug, Clone)]
pub struct ZoneResolver {
    defined: HashMap<String, Zone>,
    cache: HashMap<String, Option<Zone>>,
}

impl ZoneResolver {
    /// Reads the file's VTIMEZONEs, expanding their rules up to `until` within `budget`.
    pub fn new(vtimezones: &[&Component], until: NaiveDateTime, budget: &mut Budget) -> Result<Self, ParseError> {
        let mut defined = HashMap::new();
        for c in vtimezones {
            let Some(tzid) = c.property("TZID") else {
                return Err(ParseError::new(c.line, "VTIMEZONE without TZID"));
            };
            defined.insert(
                tzid.value.trim().to_string(),
                Zone::Defined(Arc::new(DefinedZone::from_component(c, until, budget)?)),
            );
        }
        Ok(Self { defined, cache: HashMap::new() })
    }

    /// The zone for `tzid`: an IANA name (also behind a vendor prefix such as
    /// `/mozilla.org/20050126_1/Europe/Berlin`), else the file's VTIMEZONE, else a Windows name.
    pub fn resolve(&mut self, tzid: &str) -> Option<Zone> {
        if let Some(z) = self.cache.get(tzid) {
            return z.clone();
        }
        let tzid_trim = tzid.trim().trim_matches('"');
        let found = iana(tzid_trim)
            .map(Zone::Iana)
            .or_else(|| self.defined.get(tzid_trim).cloned())
            .or_else(|| windows(tzid_trim).map(Zone::Iana));
        self.cache.insert(tzid.to_string(), found.clone());
        found
    }
}

/// An IANA zone by name, or by the longest IANA-looking suffix of a vendor path.
pub fn iana(name: &str) -> Option<Tz> {
    if let Ok(tz) = Tz::from_str(name) {
        return Some(tz);
    }
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    (1..parts.len()).find_map(|k| Tz::from_str(&parts[k..].join("/")).ok())
}

/// An IANA zone for a Windows zone name ("W. Europe Standard Time"), from CLDR's mapping.
pub fn windows(name: &str) -> Option<Tz> {
    localzone::win_zone_to_iana(name, None).and_then(|n| Tz::from_str(n).ok())
}

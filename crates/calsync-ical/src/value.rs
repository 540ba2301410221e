//! RFC 5545 value types the engine needs: DATE, DATE-TIME, DURATION, PERIOD, UTC-OFFSET.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};

use crate::ParseError;
use crate::lexer::Property;

/// Which clock a DATE-TIME is read on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Clock {
    /// Ends in `Z`.
    Utc,
    /// No zone: the calendar's zone.
    Floating,
    /// `TZID=...`.
    Zone(String),
}

/// A DATE or a DATE-TIME as written, before any zone is applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Moment {
    /// A whole day.
    Date(NaiveDate),
    /// A wall-clock time on some clock.
    DateTime(NaiveDateTime, Clock),
}

impl Moment {
    /// True for a DATE.
    pub fn is_date(&self) -> bool {
        matches!(self, Moment::Date(_))
    }

    /// The wall-clock reading (midnight for a DATE).
    pub fn local(&self) -> NaiveDateTime {
        match self {
            Moment::Date(d) => d.and_time(NaiveTime::MIN),
            Moment::DateTime(t, _) => *t,
        }
    }
}

/// A DURATION: a nominal number of days (23 or 25 hours across DST) plus exact seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Duration {
    /// Weeks and days: added on the wall clock.
    pub days: i64,
    /// Hours, minutes, seconds: added as elapsed time.
    pub seconds: i64,
}

impl Duration {
    /// True when it has no length.
    pub fn is_zero(&self) -> bool {
        self.days == 0 && self.seconds == 0
    }
}

/// The end of a PERIOD: an explicit end or a duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeriodEnd {
    /// `start/end`.
    At(Moment),
    /// `start/duration`.
    After(Duration),
}

/// Reads a DATE-TIME or DATE value of a property, honouring `VALUE=DATE` and `TZID`.
pub fn moment(prop: &Property, text: &str) -> Result<Moment, ParseError> {
    let text = text.trim();
    let clock = |utc: bool| match (utc, prop.param("TZID")) {
        (true, _) => Clock::Utc,
        (false, Some(tz)) => Clock::Zone(tz.trim().to_string()),
        (false, None) => Clock::Floating,
    };
    if prop.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || (text.len() == 8 && !text.contains('T')) {
        return date(text).map(Moment::Date).map_err(|m| ParseError::new(prop.line, format!("{}: {m}", prop.name)));
    }
    let (body, utc) = match text.strip_suffix(['Z', 'z']) {
        Some(b) => (b, true),
        None => (text, false),
    };
    let t = NaiveDateTime::parse_from_str(body, "%Y%m%dT%H%M%S")
        .or_else(|_| NaiveDateTime::parse_from_str(body, "%Y%m%dT%H%M"))
        .map_err(|_| {
            ParseError::new(prop.line, format!("{}: bad DATE-TIME {text:?}, expected YYYYMMDDTHHMMSS[Z]", prop.name))
        })?;
    Ok(Moment::DateTime(t, clock(utc)))
}

fn date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y%m%d").map_err(|_| format!("bad DATE {text:?}, expected YYYYMMDD"))
}

/// Durations longer than this (about 100 years) are refused: no calendar means them, and time
/// arithmetic on them would overflow.
const MAX_DAYS: i64 = 36_600;

/// Reads a DURATION such as `PT1H30M`, `P1D`, `-P2W`.
pub fn duration(line: usize, text: &str) -> Result<Duration, ParseError> {
    let bad = || ParseError::new(line, format!("bad DURATION {text:?}, expected e.g. PT1H30M or P1D"));
    let t = text.trim();
    let (negative, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let t = t.strip_prefix(['P', 'p']).ok_or_else(bad)?;
    let mut d = Duration::default();
    let mut in_time = false;
    let mut number = String::new();
    let mut any = false;
    let mut time_units = 0;
    for c in t.chars() {
        match c.to_ascii_uppercase() {
            'T' if !in_time && number.is_empty() => in_time = true,
            '0'..='9' => number.push(c),
            unit => {
                let n: i64 = number.parse().map_err(|_| bad())?;
                if n > MAX_DAYS * 86_400 {
                    return Err(bad());
                }
                number.clear();
                any = true;
                match (unit, in_time) {
                    ('W', false) => d.days = d.days.saturating_add(n.saturating_mul(7)),
                    ('D', false) => d.days = d.days.saturating_add(n),
                    ('H', true) => d.seconds = d.seconds.saturating_add(n.saturating_mul(3600)),
                    ('M', true) => d.seconds = d.seconds.saturating_add(n.saturating_mul(60)),
                    ('S', true) => d.seconds = d.seconds.saturating_add(n),
                    _ => return Err(bad()),
                }
                if in_time {
                    time_units += 1;
                }
            }
        }
    }
    if !number.is_empty() || !any || (in_time && time_units == 0) {
        return Err(bad());
    }
    if d.days.abs() > MAX_DAYS || d.seconds.abs() > MAX_DAYS * 86_400 {
        return Err(ParseError::new(line, format!("DURATION {text:?} is longer than {} years", MAX_DAYS / 366)));
    }
    if negative {
        d.days = -d.days;
        d.seconds = -d.seconds;
    }
    Ok(d)
}

/// Reads a PERIOD `start/end` or `start/duration`.
pub fn period(prop: &Property, text: &str) -> Result<(Moment, PeriodEnd), ParseError> {
    let (a, b) = text
        .split_once('/')
        .ok_or_else(|| ParseError::new(prop.line, format!("{}: bad PERIOD {text:?}, expected start/end", prop.name)))?;
    let start = moment(prop, a)?;
    let b = b.trim();
    let end = if b.starts_with(['P', 'p', '-', '+']) {
        PeriodEnd::After(duration(prop.line, b)?)
    } else {
        PeriodEnd::At(moment(prop, b)?)
    };
    Ok((start, end))
}

/// Reads a UTC-OFFSET `+0100`, `-053000`.
pub fn utc_offset(prop: &Property) -> Result<TimeDelta, ParseError> {
    let t = prop.value.trim();
    let bad = || ParseError::new(prop.line, format!("{}: bad UTC offset {t:?}, expected +HHMM", prop.name));
    let sign = match t.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(bad()),
    };
    let digits = &t[1..];
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<i64>().map_err(|_| bad());
    let (hours, minutes, seconds) = (n(0..2)?, n(2..4)?, if digits.len() == 6 { n(4..6)? } else { 0 });
    // RFC 5545 §3.3.14: hours 00-23, minutes and seconds 00-59.
    if hours > 23 || minutes > 59 || seconds > 59 {
        return Err(ParseError::new(
            prop.line,
            format!("{}: UTC offset {t:?} is out of range (at most 23 hours 59 minutes)", prop.name),
        ));
    }
    Ok(TimeDelta::seconds(sign * (hours * 3600 + minutes * 60 + seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(1, "PT1H30M").unwrap(), Duration { days: 0, seconds: 5400 });
        assert_eq!(duration(1, "P1D").unwrap(), Duration { days: 1, seconds: 0 });
        assert_eq!(duration(1, "P2W").unwrap(), Duration { days: 14, seconds: 0 });
        assert_eq!(duration(1, "-P1DT2H").unwrap(), Duration { days: -1, seconds: -7200 });
        assert_eq!(duration(1, "PT24H").unwrap(), Duration { days: 0, seconds: 86400 });
        for bad in ["1H", "P", "PT", "P1H", "PT1D", "P1DT", "P99999999999W", "PT9223372036854775807S", "P40000D"] {
            assert!(duration(1, bad).is_err(), "{bad}");
        }
    }
}

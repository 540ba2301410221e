//! Reading times, durations and zones from the command line: the CLI's edge with wall-clock time.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use calsync_core::Instant;
use calsync_core::zone::{Boundary, local_to_instant};

/// A zone by IANA name (`Europe/Berlin`, `UTC`).
pub fn zone(s: &str) -> Result<Tz, String> {
    s.parse::<Tz>().map_err(|_| format!("unknown time zone {s:?}: use an IANA name such as Europe/Berlin"))
}

/// A duration such as `30m`, `1h`, `1h30m`, `45min`, `2d`, or plain minutes (`30`).
pub fn duration(s: &str) -> Result<TimeDelta, String> {
    let bad = || format!("bad duration {s:?}: use e.g. 30m, 1h, 1h30m");
    let t = s.trim().to_ascii_lowercase();
    if let Ok(minutes) = t.parse::<i64>() {
        return Ok(TimeDelta::minutes(minutes));
    }
    let mut total = TimeDelta::zero();
    let mut number = String::new();
    let mut rest = t.as_str();
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() {
            number.push(c);
            rest = &rest[1..];
            continue;
        }
        let unit_len = rest.find(|ch: char| ch.is_ascii_digit()).unwrap_or(rest.len());
        let (unit, tail) = rest.split_at(unit_len);
        let n: i64 = number.parse().map_err(|_| bad())?;
        number.clear();
        total += match unit.trim() {
            "d" | "day" | "days" => TimeDelta::days(n),
            "h" | "hr" | "hour" | "hours" => TimeDelta::hours(n),
            "m" | "min" | "mins" | "minute" | "minutes" => TimeDelta::minutes(n),
            _ => return Err(bad()),
        };
        rest = tail;
    }
    if !number.is_empty() || total <= TimeDelta::zero() {
        return Err(bad());
    }
    Ok(total)
}

/// Which end of a range a date-only value stands for.
#[derive(Clone, Copy)]
pub enum DateEnd {
    /// The start of the day.
    Start,
    /// The end of the day (next midnight): `--to 2026-12-05` includes the 5th.
    End,
}

/// A point in time: an RFC 3339 instant, or a local date or date-time read in `zone`.
pub fn instant(s: &str, zone: Tz, date_end: DateEnd) -> Result<Instant, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(local_to_instant(zone, local, Boundary::Start));
        }
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("bad date {s:?}: use YYYY-MM-DD, YYYY-MM-DDTHH:MM or an RFC 3339 instant"))?;
    let day = match date_end {
        DateEnd::Start => date,
        DateEnd::End => date.succ_opt().ok_or_else(|| format!("date {s:?} is out of range"))?,
    };
    Ok(local_to_instant(zone, day.and_time(chrono::NaiveTime::MIN), Boundary::Start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("30m").unwrap(), TimeDelta::minutes(30));
        assert_eq!(duration("1h30m").unwrap(), TimeDelta::minutes(90));
        assert_eq!(duration("45min").unwrap(), TimeDelta::minutes(45));
        assert_eq!(duration("90").unwrap(), TimeDelta::minutes(90));
        assert_eq!(duration("2d").unwrap(), TimeDelta::days(2));
        for bad in ["", "m", "30x", "-5m", "0m", "1h30"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_read_in_the_zone_and_to_dates_include_their_day() {
        let z = chrono_tz::America::New_York;
        assert_eq!(instant("2026-12-01", z, DateEnd::Start).unwrap().to_rfc3339(), "2026-12-01T05:00:00+00:00");
        assert_eq!(instant("2026-12-01", z, DateEnd::End).unwrap().to_rfc3339(), "2026-12-02T05:00:00+00:00");
        assert_eq!(instant("2026-12-01T09:30", z, DateEnd::Start).unwrap().to_rfc3339(), "2026-12-01T14:30:00+00:00");
        assert_eq!(
            instant("2026-12-01T09:30:00Z", z, DateEnd::Start).unwrap().to_rfc3339(),
            "2026-12-01T09:30:00+00:00"
        );
        assert!(instant("next tuesday", z, DateEnd::Start).is_err());
    }
}

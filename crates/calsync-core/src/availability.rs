//! Recurring weekly windows in a participant's own zone ("weekdays 08:00-18:00")
//! and parts of the day, turned into UTC interval sets over a horizon.

use std::fmt;
use std::str::FromStr;

use chrono::{Days, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::interval::{Interval, IntervalSet};
use crate::zone::{self, Boundary, Weekdays};

/// A wall-clock window repeated on some days of the week, e.g. `mon-fri 08:00-18:00`.
///
/// An `end` of `00:00` (or `24:00` when parsed) means midnight at the end of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeeklyWindow {
    /// Days on which the window opens.
    pub days: Weekdays,
    /// Wall-clock opening time.
    pub start: NaiveTime,
    /// Wall-clock closing time (exclusive); midnight closes at the end of the day.
    pub end: NaiveTime,
}

impl WeeklyWindow {
    /// The instants covered by the window over `horizon`, DST-exact in `zone`.
    pub fn instants(&self, zone: Tz, horizon: Interval) -> IntervalSet {
        windows_instants(std::slice::from_ref(self), zone, horizon)
    }
}

/// The union of several weekly windows over `horizon` in `zone`.
pub fn windows_instants(windows: &[WeeklyWindow], zone: Tz, horizon: Interval) -> IntervalSet {
    let mut out = Vec::new();
    // One day of slack each side: a window on the previous local day may reach into the horizon.
    let first = zone::local_date(zone, horizon.start).pred_opt().unwrap_or(chrono::NaiveDate::MIN);
    let last = zone::local_date(zone, horizon.end);
    for date in first.iter_days().take_while(|d| *d <= last) {
        for w in windows.iter().filter(|w| w.days.contains_date(date)) {
            let start = zone::local_to_instant(zone, date.and_time(w.start), Boundary::Start);
            let end_local = if w.end == NaiveTime::MIN || w.end <= w.start {
                // Midnight, or an overnight window, closes on the next day.
                date.checked_add_days(Days::new(1)).unwrap_or(date).and_time(w.end)
            } else {
                date.and_time(w.end)
            };
            let end = zone::local_to_instant(zone, end_local, Boundary::End);
            out.push(Interval::new(start, end));
        }
    }
    IntervalSet::from_intervals(out).clipped_to(horizon)
}

/// A named part of the day, in the wall-clock time of whoever prefers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartOfDay {
    /// 06:00 to 12:00.
    Morning,
    /// 12:00 to 17:00.
    Afternoon,
    /// 17:00 to 21:00.
    Evening,
}

impl PartOfDay {
    /// The wall-clock window this part of the day stands for, on every day.
    pub fn window(self) -> WeeklyWindow {
        let hm = |h| NaiveTime::from_hms_opt(h, 0, 0).expect("valid hour");
        let (start, end) = match self {
            PartOfDay::Morning => (hm(6), hm(12)),
            PartOfDay::Afternoon => (hm(12), hm(17)),
            PartOfDay::Evening => (hm(17), hm(21)),
        };
        WeeklyWindow { days: Weekdays::ALL, start, end }
    }
}

/// Why a window, weekday list or time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseWindowError(pub(crate) String);

impl FromStr for Weekdays {
    type Err = ParseWindowError;

    /// Reads `mon-fri`, `weekdays`, `weekends`, `daily`, `sat,sun`, `tue`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = Weekdays::default();
        for part in s.split(',').map(str::trim) {
            let part_set = match part.to_ascii_lowercase().as_str() {
                "daily" | "all" | "every day" => Weekdays::ALL,
                "weekdays" | "workdays" => Weekdays::WORKDAYS,
                "weekends" | "weekend" => Weekdays::WEEKEND,
                range => match range.split_once('-') {
                    Some((a, b)) => {
                        let (a, b) = (parse_weekday(a)?, parse_weekday(b)?);
                        let mut days = Weekdays::only(a);
                        let mut d = a;
                        while d != b {
                            d = d.succ();
                            days = days.with(Weekdays::only(d));
                        }
                        days
                    }
                    None => Weekdays::only(parse_weekday(range)?),
                },
            };
            set = set.with(part_set);
        }
        Ok(set)
    }
}

fn parse_weekday(s: &str) -> Result<Weekday, ParseWindowError> {
    s.trim().parse::<Weekday>().map_err(|_| ParseWindowError(format!("unknown weekday {s:?}")))
}

/// Reads `HH:MM`; `24:00` stands for midnight at the end of the day.
pub fn parse_clock_time(s: &str) -> Result<NaiveTime, ParseWindowError> {
    let s = s.trim();
    if s == "24:00" {
        return Ok(NaiveTime::MIN);
    }
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| ParseWindowError(format!("bad time {s:?}, expected HH:MM")))
}

impl FromStr for WeeklyWindow {
    type Err = ParseWindowError;

    /// Reads `DAYS HH:MM-HH:MM`, e.g. `mon-fri 08:00-18:00`, or just `HH:MM-HH:MM` for every day.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (days, times) = match s.rsplit_once(' ') {
            Some((d, t)) => (d.parse()?, t),
            None => (Weekdays::ALL, s),
        };
        let (a, b) = times
            .split_once('-')
            .ok_or_else(|| ParseWindowError(format!("bad window {s:?}, expected e.g. mon-fri 08:00-18:00")))?;
        let (start, end) = (parse_clock_time(a)?, parse_clock_time(b)?);
        if start == end {
            return Err(ParseWindowError(format!("window {s:?} is empty")));
        }
        Ok(WeeklyWindow { days, start, end })
    }
}

impl fmt::Display for WeeklyWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri, Weekday::Sat, Weekday::Sun];
        let days: Vec<String> =
            names.iter().filter(|d| self.days.contains(**d)).map(|d| d.to_string().to_lowercase()).collect();
        let end = if self.end == NaiveTime::MIN { "24:00".to_string() } else { self.end.format("%H:%M").to_string() };
        write!(f, "{} {}-{}", days.join(","), self.start.format("%H:%M"), end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeDelta};

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> crate::Instant {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap().and_utc()
    }

    #[test]
    fn parses_windows() {
        let w: WeeklyWindow = "mon-fri 08:00-18:00".parse().unwrap();
        assert_eq!(w.days, Weekdays::WORKDAYS);
        assert_eq!(w.to_string(), "mon,tue,wed,thu,fri 08:00-18:00");
        let w: WeeklyWindow = "sat,sun 09:00-24:00".parse().unwrap();
        assert_eq!(w.days, Weekdays::WEEKEND);
        assert_eq!(w.end, NaiveTime::MIN);
        assert!("mon-fri 8-18".parse::<WeeklyWindow>().is_err());
        assert!("funday 08:00-09:00".parse::<WeeklyWindow>().is_err());
        assert!("08:00-08:00".parse::<WeeklyWindow>().is_err());
    }

    #[test]
    fn weekday_window_over_a_week_in_new_york() {
        let w: WeeklyWindow = "mon-fri 08:00-18:00".parse().unwrap();
        // Mon 2026-11-23 .. Mon 2026-11-30 (UTC), New York is UTC-5 in November.
        let set =
            w.instants(chrono_tz::America::New_York, Interval::new(utc(2026, 11, 23, 0, 0), utc(2026, 11, 30, 0, 0)));
        assert_eq!(set.len(), 5);
        assert_eq!(set.intervals()[0], Interval::new(utc(2026, 11, 23, 13, 0), utc(2026, 11, 23, 23, 0)));
        assert_eq!(set.total_duration(), TimeDelta::hours(50));
    }

    #[test]
    fn window_across_the_spring_gap_is_an_hour_shorter() {
        // 01:00-04:00 local on 2026-03-08 in New York: 02:00-03:00 does not exist.
        let w: WeeklyWindow = "sun 01:00-04:00".parse().unwrap();
        let day = Interval::new(utc(2026, 3, 8, 0, 0), utc(2026, 3, 9, 0, 0));
        let set = w.instants(chrono_tz::America::New_York, day);
        assert_eq!(set.intervals(), &[Interval::new(utc(2026, 3, 8, 6, 0), utc(2026, 3, 8, 8, 0))]);
    }

    #[test]
    fn window_starting_inside_the_gap_opens_at_the_jump() {
        let w: WeeklyWindow = "sun 02:30-05:00".parse().unwrap();
        let day = Interval::new(utc(2026, 3, 8, 0, 0), utc(2026, 3, 9, 0, 0));
        let set = w.instants(chrono_tz::America::New_York, day);
        // Opens 03:00 EDT (07:00Z), closes 05:00 EDT (09:00Z).
        assert_eq!(set.intervals(), &[Interval::new(utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 9, 0))]);
    }

    #[test]
    fn window_across_the_autumn_overlap_is_an_hour_longer() {
        // 00:00-03:00 local on 2026-10-25 in Berlin covers 4 real hours.
        let w: WeeklyWindow = "sun 00:00-03:00".parse().unwrap();
        let day = Interval::new(utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0));
        let set = w.instants(chrono_tz::Europe::Berlin, day);
        assert_eq!(set.intervals(), &[Interval::new(utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 2, 0))]);
    }

    #[test]
    fn window_ending_inside_the_overlap_runs_to_its_second_reading() {
        // 00:00-01:30 on 2026-11-01 in New York: 01:30 happens at 05:30Z and 06:30Z.
        let w: WeeklyWindow = "sun 00:00-01:30".parse().unwrap();
        let day = Interval::new(utc(2026, 11, 1, 0, 0), utc(2026, 11, 2, 0, 0));
        let set = w.instants(chrono_tz::America::New_York, day);
        assert_eq!(set.intervals(), &[Interval::new(utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 6, 30))]);
    }

    #[test]
    fn morning_in_tokyo_is_the_previous_evening_in_utc() {
        let set = PartOfDay::Morning
            .window()
            .instants(chrono_tz::Asia::Tokyo, Interval::new(utc(2026, 6, 1, 0, 0), utc(2026, 6, 2, 0, 0)));
        assert!(set.contains_instant(utc(2026, 6, 1, 22, 0)));
        assert!(!set.contains_instant(utc(2026, 6, 1, 4, 0)));
    }
}

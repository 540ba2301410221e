//! Preferences that rank mutual slots: parts of the day and days of the week.

use std::fmt;
use std::str::FromStr;

use chrono::NaiveTime;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::availability::{ParseWindowError, PartOfDay, WeeklyWindow, windows_instants};
use crate::interval::{Interval, IntervalSet};
use crate::zone::Weekdays;

/// Something a person would rather have; a slot whose start matches scores one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "kebab-case")]
pub enum Preference {
    /// Mornings, afternoons or evenings.
    PartOfDay(PartOfDay),
    /// Some days of the week (weekdays, weekends, tue,thu...).
    Days(Weekdays),
}

impl Preference {
    /// The instants of `horizon` at which a slot may start to match, read in `zone`.
    pub fn instants(&self, zone: Tz, horizon: Interval) -> IntervalSet {
        let window = match self {
            Preference::PartOfDay(p) => p.window(),
            Preference::Days(days) => WeeklyWindow { days: *days, start: NaiveTime::MIN, end: NaiveTime::MIN },
        };
        windows_instants(&[window], zone, horizon)
    }
}

impl FromStr for Preference {
    type Err = ParseWindowError;

    /// Reads `mornings`, `afternoons`, `evenings`, `weekdays`, `weekends` or day names (`tue,thu`, `mon-wed`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "morning" | "mornings" => Ok(Preference::PartOfDay(PartOfDay::Morning)),
            "afternoon" | "afternoons" => Ok(Preference::PartOfDay(PartOfDay::Afternoon)),
            "evening" | "evenings" => Ok(Preference::PartOfDay(PartOfDay::Evening)),
            other => other.parse().map(Preference::Days).map_err(|_| {
                ParseWindowError(format!(
                    "unknown preference {s:?}: use mornings, afternoons, evenings, weekdays, weekends or day names"
                ))
            }),
        }
    }
}

impl fmt::Display for Preference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Preference::PartOfDay(PartOfDay::Morning) => f.write_str("mornings"),
            Preference::PartOfDay(PartOfDay::Afternoon) => f.write_str("afternoons"),
            Preference::PartOfDay(PartOfDay::Evening) => f.write_str("evenings"),
            Preference::Days(d) if *d == Weekdays::WORKDAYS => f.write_str("weekdays"),
            Preference::Days(d) if *d == Weekdays::WEEKEND => f.write_str("weekends"),
            Preference::Days(d) => {
                let w = WeeklyWindow { days: *d, start: NaiveTime::MIN, end: NaiveTime::MIN };
                let s = w.to_string();
                f.write_str(s.split(' ').next().unwrap_or_default())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for s in ["mornings", "afternoons", "evenings", "weekdays", "weekends", "tue,thu"] {
            let p: Preference = s.parse().unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert!("brunch".parse::<Preference>().is_err());
    }
}

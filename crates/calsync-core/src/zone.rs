//! The edge between wall-clock time in an IANA zone and UTC instants.
//!
//! Local times are turned into instants here and nowhere else in the core. Two
//! wall-clock times need a rule: one that falls in a spring-forward gap never
//! happens, one in a fall-back overlap happens twice. The rule used here is the
//! one for *boundaries of time ranges*: a boundary at wall-clock `L` is the first
//! instant whose wall clock reads `L` or later ([`Boundary::Start`]), or the last
//! such reading for the end of a range ([`Boundary::End`]) so that a range covers
//! every instant whose wall clock lies inside it.

use chrono::{Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;

use crate::interval::{Instant, Interval};

/// Which end of a range a wall-clock time bounds; decides fall-back overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// Start of a range: the earlier of two readings.
    Start,
    /// End of a range: the later of two readings.
    End,
}

/// The instant at which the wall clock of `zone` reads `local`, by the boundary rule.
///
/// In a gap (the reading never happens) both boundaries map to the instant the
/// clock jumps, which is the first instant reading later than `local`.
pub fn local_to_instant(zone: Tz, local: NaiveDateTime, boundary: Boundary) -> Instant {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => {
            let (early, late) = if a <= b { (a, b) } else { (b, a) };
            match boundary {
                Boundary::Start => early.with_timezone(&Utc),
                Boundary::End => late.with_timezone(&Utc),
            }
        }
        LocalResult::None => gap_end(zone, local),
    }
}

/// The UTC offset in force at `local`'s date just before any transition: used to shift gap times.
pub fn offset_before(zone: Tz, local: NaiveDateTime) -> TimeDelta {
    let probe = local - TimeDelta::days(1);
    TimeDelta::seconds(zone.offset_from_utc_datetime(&probe).fix().local_minus_utc() as i64)
}

/// The first instant whose wall clock reads `local` or later, for `local` inside a gap.
fn gap_end(zone: Tz, local: NaiveDateTime) -> Instant {
    // The jump lies between reading `local` with the later offset and with the earlier one.
    let before = offset_before(zone, local);
    let after =
        TimeDelta::seconds(zone.offset_from_utc_datetime(&(local + TimeDelta::days(1))).fix().local_minus_utc() as i64);
    let (mut lo, mut hi) = {
        let a = (local - after).and_utc();
        let b = (local - before).and_utc();
        (a.min(b), a.max(b))
    };
    // Invariant: wall(lo) < local <= wall(hi); bisect to the second.
    while hi - lo > TimeDelta::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if zone.from_utc_datetime(&mid.naive_utc()).naive_local() >= local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// The wall-clock reading of `zone` at instant `t`.
pub fn wall_clock(zone: Tz, t: Instant) -> NaiveDateTime {
    zone.from_utc_datetime(&t.naive_utc()).naive_local()
}

/// The local calendar date in `zone` at instant `t`.
pub fn local_date(zone: Tz, t: Instant) -> NaiveDate {
    wall_clock(zone, t).date()
}

/// The local dates of `zone` that touch `horizon`, in order.
pub fn local_dates(zone: Tz, horizon: Interval) -> impl Iterator<Item = NaiveDate> {
    let first = local_date(zone, horizon.start);
    let last = local_date(zone, horizon.end);
    first.iter_days().take_while(move |d| *d <= last)
}

/// The instants at which each local day of `zone` touching `horizon` begins and ends.
pub fn local_day(zone: Tz, date: NaiveDate) -> Interval {
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    Interval::new(
        local_to_instant(zone, date.and_time(NaiveTime::MIN), Boundary::Start),
        local_to_instant(zone, next.and_time(NaiveTime::MIN), Boundary::Start),
    )
}

/// A weekday set, Monday = bit 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Weekdays(u8);

impl Weekdays {
    /// Every day of the week.
    pub const ALL: Weekdays = Weekdays(0b111_1111);
    /// Monday to Friday.
    pub const WORKDAYS: Weekdays = Weekdays(0b001_1111);
    /// Saturday and Sunday.
    pub const WEEKEND: Weekdays = Weekdays(0b110_0000);

    /// The set holding one day.
    pub fn only(day: chrono::Weekday) -> Self {
        Weekdays(1 << day.num_days_from_monday())
    }

    /// Both sets together.
    pub fn with(self, other: Weekdays) -> Self {
        Weekdays(self.0 | other.0)
    }

    /// True when `day` is in the set.
    pub fn contains(self, day: chrono::Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    /// True when the date's weekday is in the set.
    pub fn contains_date(self, date: NaiveDate) -> bool {
        self.contains(date.weekday())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> Instant {
        local(y, m, d, h, min).and_utc()
    }

    #[test]
    fn us_spring_forward_gap_maps_to_the_jump() {
        // 2026-03-08 02:00 EST -> 03:00 EDT; 02:30 never happens in New York.
        let z = chrono_tz::America::New_York;
        assert_eq!(local_to_instant(z, local(2026, 3, 8, 2, 30), Boundary::Start), utc(2026, 3, 8, 7, 0));
        assert_eq!(local_to_instant(z, local(2026, 3, 8, 2, 30), Boundary::End), utc(2026, 3, 8, 7, 0));
        assert_eq!(local_to_instant(z, local(2026, 3, 8, 3, 0), Boundary::Start), utc(2026, 3, 8, 7, 0));
        assert_eq!(local_to_instant(z, local(2026, 3, 8, 1, 59), Boundary::Start), utc(2026, 3, 8, 6, 59));
    }

    #[test]
    fn us_fall_back_overlap_takes_earliest_for_start_latest_for_end() {
        // 2026-11-01 02:00 EDT -> 01:00 EST; 01:30 happens at 05:30Z and 06:30Z.
        let z = chrono_tz::America::New_York;
        assert_eq!(local_to_instant(z, local(2026, 11, 1, 1, 30), Boundary::Start), utc(2026, 11, 1, 5, 30));
        assert_eq!(local_to_instant(z, local(2026, 11, 1, 1, 30), Boundary::End), utc(2026, 11, 1, 6, 30));
    }

    #[test]
    fn eu_switch_days() {
        let z = chrono_tz::Europe::Berlin;
        // 2026-03-29 02:00 CET -> 03:00 CEST.
        assert_eq!(local_to_instant(z, local(2026, 3, 29, 2, 15), Boundary::Start), utc(2026, 3, 29, 1, 0));
        // 2026-10-25 03:00 CEST -> 02:00 CET; 02:15 happens twice.
        assert_eq!(local_to_instant(z, local(2026, 10, 25, 2, 15), Boundary::Start), utc(2026, 10, 25, 0, 15));
        assert_eq!(local_to_instant(z, local(2026, 10, 25, 2, 15), Boundary::End), utc(2026, 10, 25, 1, 15));
    }

    #[test]
    fn local_days_are_23_and_25_hours_on_switch_days() {
        let z = chrono_tz::Europe::Berlin;
        let spring = local_day(z, NaiveDate::from_ymd_opt(2026, 3, 29).unwrap());
        let autumn = local_day(z, NaiveDate::from_ymd_opt(2026, 10, 25).unwrap());
        assert_eq!(spring.duration(), TimeDelta::hours(23));
        assert_eq!(autumn.duration(), TimeDelta::hours(25));
    }

    #[test]
    fn weekday_sets() {
        assert!(Weekdays::WORKDAYS.contains(chrono::Weekday::Fri));
        assert!(!Weekdays::WORKDAYS.contains(chrono::Weekday::Sat));
        assert_eq!(Weekdays::WORKDAYS.with(Weekdays::WEEKEND), Weekdays::ALL);
    }
}

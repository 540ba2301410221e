//! A participant (patient or caregiver): busy windows, zone, constraints and preferences.

use chrono::TimeDelta;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::availability::{WeeklyWindow, windows_instants};
use crate::interval::{Instant, Interval, IntervalSet};
use crate::preference::Preference;

/// How a busy window blocks, mirroring FHIR `Slot.status` for derived Schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BusyStatus {
    /// Firmly busy.
    Busy,
    /// Busy if tentative time counts as busy for this participant.
    BusyTentative,
    /// Unavailable (out of office, leave).
    BusyUnavailable,
}

impl BusyStatus {
    /// The FHIR `Slot.status` code.
    pub fn code(self) -> &'static str {
        match self {
            BusyStatus::Busy => "busy",
            BusyStatus::BusyTentative => "busy-tentative",
            BusyStatus::BusyUnavailable => "busy-unavailable",
        }
    }
}

/// A window in which a participant is not free. Carries nothing but time and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BusyInterval {
    /// When.
    pub interval: Interval,
    /// How firmly.
    pub status: BusyStatus,
}

impl BusyInterval {
    /// `windows` sorted, with windows of one status that overlap or touch made one.
    pub fn merged(windows: &[BusyInterval]) -> Vec<BusyInterval> {
        let mut all = windows.to_vec();
        all.sort_by_key(|b| (b.status, b.interval.start, b.interval.end));
        let mut out: Vec<BusyInterval> = Vec::with_capacity(all.len());
        for b in all {
            match out.last_mut() {
                Some(last) if last.status == b.status && b.interval.start <= last.interval.end => {
                    last.interval = Interval::new(last.interval.start, last.interval.end.max(b.interval.end));
                }
                _ => out.push(b),
            }
        }
        out.sort();
        out
    }
}

/// Whether a participant must be able to attend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attendance {
    /// A time only counts when this participant is free.
    #[default]
    Required,
    /// Wanted, but a time may be offered without them as an alternative.
    Optional,
}

/// Limits a participant puts on when they can attend, all read in their own zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraints {
    /// Weekly windows the participant can attend in; empty means any time.
    pub available: Vec<WeeklyWindow>,
    /// Nothing may start sooner than this after "now".
    pub minimum_notice: TimeDelta,
    /// Time kept clear before each busy window (travel to it).
    pub buffer_before: TimeDelta,
    /// Time kept clear after each busy window (travel from it).
    pub buffer_after: TimeDelta,
    /// Whether busy-tentative windows block.
    pub tentative_is_busy: bool,
}

impl Default for Constraints {
    fn default() -> Self {
        Self {
            available: Vec::new(),
            minimum_notice: TimeDelta::zero(),
            buffer_before: TimeDelta::zero(),
            buffer_after: TimeDelta::zero(),
            tentative_is_busy: true,
        }
    }
}

/// A person whose calendar constrains the appointment.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    /// Stable name or reference (`patient`, `Patient/123`).
    pub id: String,
    /// The participant's IANA zone: constraints and preferences are read in it.
    pub zone: Tz,
    /// Busy windows, in any order.
    pub busy: Vec<BusyInterval>,
    /// When they can attend at all.
    pub constraints: Constraints,
    /// Required or optional.
    pub attendance: Attendance,
    /// What they would rather have; used for ranking only.
    pub preferences: Vec<Preference>,
}

/// Why a participant cannot attend a given time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Blocker {
    /// A busy window (shown as it is, without buffers) overlaps the time plus buffers.
    Busy {
        /// The busy window.
        interval: Interval,
        /// Its status.
        status: BusyStatus,
    },
    /// The time lies outside the participant's available hours.
    OutsideAvailableHours {
        /// The windows, as written in the participant's zone.
        available: Vec<String>,
    },
    /// The time starts sooner than the participant's minimum notice allows.
    MinimumNotice {
        /// Earliest allowed start.
        earliest: Instant,
    },
}

impl Participant {
    /// A required participant with no constraints, free outside `busy`.
    pub fn new(id: impl Into<String>, zone: Tz, busy: Vec<BusyInterval>) -> Self {
        Self {
            id: id.into(),
            zone,
            busy,
            constraints: Constraints::default(),
            attendance: Attendance::Required,
            preferences: Vec::new(),
        }
    }

    /// True for a required participant.
    pub fn is_required(&self) -> bool {
        self.attendance == Attendance::Required
    }

    fn blocks(&self, status: BusyStatus) -> bool {
        status != BusyStatus::BusyTentative || self.constraints.tentative_is_busy
    }

    /// The instants of `horizon` at which an appointment may take place for this participant.
    ///
    /// An appointment `[s, e)` suits the participant iff it lies inside this set: busy windows are
    /// widened by the buffers, and the available hours and minimum notice are cut out.
    pub fn free_time(&self, horizon: Interval, now: Instant) -> IntervalSet {
        let c = &self.constraints;
        let busy = IntervalSet::from_intervals(
            self.busy
                .iter()
                .filter(|b| self.blocks(b.status))
                .map(|b| b.interval.widened(c.buffer_before, c.buffer_after))
                .filter(|i| i.overlaps(&horizon)),
        );
        let mut free = busy.complement_within(horizon);
        if !c.available.is_empty() {
            free = free.intersection(&windows_instants(&c.available, self.zone, horizon));
        }
        let earliest = now + c.minimum_notice;
        if earliest > horizon.start {
            free = free.difference(&IntervalSet::single(Interval::new(horizon.start, earliest)));
        }
        free
    }

    /// Everything that stops this participant from attending `appointment`; empty when they can.
    pub fn blockers(&self, appointment: Interval, now: Instant) -> Vec<Blocker> {
        let c = &self.constraints;
        let mut out = Vec::new();
        let earliest = now + c.minimum_notice;
        if appointment.start < earliest {
            out.push(Blocker::MinimumNotice { earliest });
        }
        if !c.available.is_empty() {
            let allowed = windows_instants(&c.available, self.zone, appointment);
            if !allowed.contains_interval(&appointment) {
                out.push(Blocker::OutsideAvailableHours {
                    available: c.available.iter().map(ToString::to_string).collect(),
                });
            }
        }
        let mut busy: Vec<&BusyInterval> = self
            .busy
            .iter()
            .filter(|b| {
                self.blocks(b.status) && b.interval.widened(c.buffer_before, c.buffer_after).overlaps(&appointment)
            })
            .collect();
        busy.sort();
        busy.dedup();
        out.extend(busy.into_iter().map(|b| Blocker::Busy { interval: b.interval, status: b.status }));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn utc(d: u32, h: u32, min: u32) -> Instant {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap().and_hms_opt(h, min, 0).unwrap().and_utc()
    }

    fn busy(a: Instant, b: Instant, status: BusyStatus) -> BusyInterval {
        BusyInterval { interval: Interval::new(a, b), status }
    }

    #[test]
    fn buffers_widen_busy_windows() {
        let mut p =
            Participant::new("caregiver", chrono_tz::UTC, vec![busy(utc(24, 10, 0), utc(24, 11, 0), BusyStatus::Busy)]);
        p.constraints.buffer_before = TimeDelta::minutes(30);
        p.constraints.buffer_after = TimeDelta::minutes(15);
        let free = p.free_time(Interval::new(utc(24, 8, 0), utc(24, 14, 0)), utc(1, 0, 0));
        assert_eq!(
            free.intervals(),
            &[Interval::new(utc(24, 8, 0), utc(24, 9, 30)), Interval::new(utc(24, 11, 15), utc(24, 14, 0))]
        );
        let blockers = p.blockers(Interval::new(utc(24, 11, 0), utc(24, 11, 30)), utc(1, 0, 0));
        assert_eq!(
            blockers,
            vec![Blocker::Busy { interval: Interval::new(utc(24, 10, 0), utc(24, 11, 0)), status: BusyStatus::Busy }]
        );
    }

    #[test]
    fn tentative_blocks_only_when_configured() {
        let mut p = Participant::new(
            "p",
            chrono_tz::UTC,
            vec![busy(utc(24, 10, 0), utc(24, 11, 0), BusyStatus::BusyTentative)],
        );
        let h = Interval::new(utc(24, 8, 0), utc(24, 14, 0));
        assert_eq!(p.free_time(h, utc(1, 0, 0)).len(), 2);
        p.constraints.tentative_is_busy = false;
        assert_eq!(p.free_time(h, utc(1, 0, 0)).intervals(), &[h]);
    }

    #[test]
    fn minimum_notice_and_hours_are_cut_out() {
        let mut p = Participant::new("patient", chrono_tz::America::New_York, vec![]);
        p.constraints.available = vec!["mon-fri 09:00-17:00".parse().unwrap()];
        p.constraints.minimum_notice = TimeDelta::hours(24);
        // "now" is Mon 2026-11-23 15:00Z; Tue 24th 09:00 EST = 14:00Z.
        let now = utc(23, 15, 0);
        let free = p.free_time(Interval::new(utc(23, 0, 0), utc(26, 0, 0)), now);
        assert_eq!(free.intervals()[0], Interval::new(utc(24, 15, 0), utc(24, 22, 0)));
        let blockers = p.blockers(Interval::new(utc(24, 14, 0), utc(24, 14, 30)), now);
        assert_eq!(blockers, vec![Blocker::MinimumNotice { earliest: utc(24, 15, 0) }]);
        let blockers = p.blockers(Interval::new(utc(25, 23, 0), utc(25, 23, 30)), now);
        assert!(matches!(blockers[0], Blocker::OutsideAvailableHours { .. }));
    }
}

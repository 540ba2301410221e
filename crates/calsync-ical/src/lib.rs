//! The iCalendar engine of calsync.
//!
//! Reads RFC 5545 data (VEVENT, VFREEBUSY, VTIMEZONE) and answers one question:
//! when is this person busy? Recurrences (RRULE, RDATE, EXDATE, RECURRENCE-ID with
//! RANGE=THISANDFUTURE), statuses, transparency, all-day and floating times, IANA,
//! vendor-prefixed, in-file and Windows zones are handled; DST gaps and overlaps
//! follow RFC 5545 §3.3.5.
//!
//! It also writes one thing: the confirmation of a booked appointment ([`Invitation`]).
//!
//! Privacy by construction: the lexer keeps only time properties, so no summary,
//! description, attendee or location is ever copied out of the input.
//!
//! ```
//! use calsync_ical::busy_intervals;
//! use calsync_core::Interval;
//! use chrono::{TimeZone, Utc};
//!
//! let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:1\nDTSTART:20261201T090000Z\nDTEND:20261201T100000Z\nRRULE:FREQ=DAILY;COUNT=3\nEND:VEVENT\nEND:VCALENDAR\n";
//! let horizon = Interval::new(Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(), Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap());
//! let (busy, warnings) = busy_intervals(ics, horizon, chrono_tz::UTC).unwrap();
//! assert_eq!(busy.len(), 3);
//! assert!(warnings.is_empty());
//! ```

use std::fmt;

use calsync_core::{BusyInterval, Interval};
use chrono_tz::Tz;

pub mod budget;
pub mod calendar;
pub mod invitation;
pub mod lexer;
pub mod recur;
pub mod tz;
pub mod value;

pub use budget::Budget;
pub use calendar::{Calendar, EventStatus, Expansion, Occurrence};
pub use invitation::{Invitation, InvitationStatus};

/// A calendar that cannot be read, or not within the [`budget`] limits, and the line where
/// reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line of the input.
    pub line: usize,
    /// What is wrong there.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        Self { line, message: message.into() }
    }
}

/// Something read inexactly but not fatal (an unknown zone, a rule cut short).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line of the input.
    pub line: usize,
    /// What was assumed.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The busy windows of an iCalendar stream over `horizon`, with dates and floating times read
/// in `zone` (the participant's zone), within the limits of [`budget`].
pub fn busy_intervals(
    input: &str,
    horizon: Interval,
    zone: Tz,
) -> Result<(Vec<BusyInterval>, Vec<Warning>), ParseError> {
    busy_intervals_of([input], horizon, zone)
}

/// The busy windows of several iCalendar streams of one person (the objects of a CalDAV
/// collection) merged, the streams sharing one [`Budget`] and the limit on busy windows.
pub fn busy_intervals_of<'a>(
    inputs: impl IntoIterator<Item = &'a str>,
    horizon: Interval,
    zone: Tz,
) -> Result<(Vec<BusyInterval>, Vec<Warning>), ParseError> {
    let mut budget = Budget::default();
    let mut all = Expansion::default();
    for input in inputs {
        let mut one = Calendar::parse(input)?.expand_within(horizon, zone, &mut budget)?;
        all.occurrences.append(&mut one.occurrences);
        all.freebusy.append(&mut one.freebusy);
        all.warnings.append(&mut one.warnings);
    }
    let all = all.within_limits(horizon)?;
    Ok((all.busy(), all.warnings))
}

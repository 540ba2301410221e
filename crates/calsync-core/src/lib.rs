//! The matching core of calsync.
//!
//! Pure functions over UTC instants: no I/O, no FHIR, no HTTP, no SQL. Given
//! provider Slots and participants (busy windows, zone, constraints), it finds
//! the times that work for everyone, ranks them, and explains the rest.
//!
//! ```
//! use calsync_core::{find_mutual, Interval, MutualQuery, Participant, ProviderSlot, SlotBook, SlotStatus};
//! use chrono::{TimeDelta, TimeZone, Utc};
//!
//! let at = |h| Utc.with_ymd_and_hms(2026, 12, 1, h, 0, 0).unwrap();
//! let slots = vec![ProviderSlot {
//!     id: "Slot/1".into(), schedule: "Schedule/dr-a".into(),
//!     interval: Interval::new(at(9), at(12)), status: SlotStatus::Free, capacity: None,
//! }];
//! let patient = Participant::new("patient", chrono_tz::UTC, vec![]);
//! let query = MutualQuery::new(Interval::new(at(0), at(23)), TimeDelta::minutes(30), at(0));
//! let outcome = find_mutual(&SlotBook::new(slots), &[patient], &query).unwrap();
//! assert_eq!(outcome.slots[0].interval.start, at(9));
//! ```

pub mod availability;
pub mod explain;
pub mod interval;
pub mod participant;
pub mod preference;
pub mod provider;
pub mod search;
pub mod zone;

pub use availability::{PartOfDay, WeeklyWindow};
pub use explain::{Alternatives, Explanation, NoFit, ParticipantBlockers, Rejection};
pub use interval::{Instant, Interval, IntervalSet};
pub use participant::{Attendance, Blocker, BusyInterval, BusyStatus, Constraints, Participant};
pub use preference::Preference;
pub use provider::{ProviderSlot, SlotStatus};
pub use search::{MutualQuery, MutualSlot, QueryError, SearchOutcome, SlotBook, find_mutual};
pub use zone::Weekdays;

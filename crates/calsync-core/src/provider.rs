//! Provider availability: the Slots a provider's Schedules publish.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::interval::Interval;
use crate::participant::BusyStatus;

/// FHIR R4 `Slot.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlotStatus {
    /// Open for booking.
    Free,
    /// Taken.
    Busy,
    /// Held for someone.
    BusyTentative,
    /// Not bookable.
    BusyUnavailable,
    /// Published by mistake.
    EnteredInError,
}

impl SlotStatus {
    /// The FHIR code.
    pub fn code(self) -> &'static str {
        match self {
            SlotStatus::Free => "free",
            SlotStatus::Busy => "busy",
            SlotStatus::BusyTentative => "busy-tentative",
            SlotStatus::BusyUnavailable => "busy-unavailable",
            SlotStatus::EnteredInError => "entered-in-error",
        }
    }

    /// How a participant's Slot of this status blocks them: not at all when free (or published
    /// by mistake).
    pub fn busy(self) -> Option<BusyStatus> {
        match self {
            SlotStatus::Busy => Some(BusyStatus::Busy),
            SlotStatus::BusyTentative => Some(BusyStatus::BusyTentative),
            SlotStatus::BusyUnavailable => Some(BusyStatus::BusyUnavailable),
            SlotStatus::Free | SlotStatus::EnteredInError => None,
        }
    }
}

/// An unknown `Slot.status` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown Slot.status {0:?}: expected free, busy, busy-tentative, busy-unavailable or entered-in-error")]
pub struct UnknownSlotStatus(pub String);

impl FromStr for SlotStatus {
    type Err = UnknownSlotStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "free" => SlotStatus::Free,
            "busy" => SlotStatus::Busy,
            "busy-tentative" => SlotStatus::BusyTentative,
            "busy-unavailable" => SlotStatus::BusyUnavailable,
            "entered-in-error" => SlotStatus::EnteredInError,
            other => return Err(UnknownSlotStatus(other.to_string())),
        })
    }
}

/// One provider Slot: a window of a Schedule in which appointments can be booked.
///
/// A Slot longer than the appointment (SMART Scheduling Links publishers emit
/// whole-day Slots) offers several start times inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSlot {
    /// The Slot's id (`Slot/abc` or `abc`).
    pub id: String,
    /// The Schedule it belongs to (`Schedule/xyz`).
    pub schedule: String,
    /// When.
    pub interval: Interval,
    /// Its status.
    pub status: SlotStatus,
    /// Appointments it can still take, when the publisher says (slot-capacity); `None` means one.
    pub capacity: Option<u32>,
}

impl ProviderSlot {
    /// True when an appointment can be booked into it.
    pub fn is_bookable(&self) -> bool {
        self.status == SlotStatus::Free && self.capacity != Some(0)
    }
}

/// A time that works: a provider Slot and a start inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutualSlot {
    /// The provider Slot's id.
    pub slot: String,
    /// The provider Schedule.
    pub schedule: String,
    /// The appointment itself: a start inside the Slot, and the requested duration.
    pub interval: Interval,
    /// How many preferences it meets.
    pub score: u32,
    /// Optional participants who cannot attend it (only in alternatives).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
}

//! Explanations: who blocks a time, why nothing fits, and what would work instead.

use serde::{Deserialize, Serialize};

use crate::interval::{Instant, Interval};
use crate::participant::Blocker;
use crate::provider::MutualSlot;

/// Everything a search can say beyond its results.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// Provider times in the window that the participants cannot attend (when asked to explain).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<Rejection>,
    /// Why nothing fits, when nothing does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_fit: Option<NoFit>,
    /// What would work instead, when nothing does.
    #[serde(default, skip_serializing_if = "Alternatives::is_empty")]
    pub alternatives: Alternatives,
}

/// A provider time that fails, and the participants who block it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The provider Slot.
    pub slot: String,
    /// Its Schedule.
    pub schedule: String,
    /// The appointment time that was tried.
    pub interval: Interval,
    /// Who cannot come, and why.
    pub blocked_by: Vec<ParticipantBlockers>,
}

/// One participant's reasons for not attending a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantBlockers {
    /// The participant.
    pub participant: String,
    /// Their reasons.
    pub blockers: Vec<Blocker>,
}

/// Why no time fits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum NoFit {
    /// The window ends before now: nothing in it can be offered any more.
    WindowPassed {
        /// From when times can be offered: now.
        from: Instant,
    },
    /// No bookable provider Slot in the window fits the duration.
    NoProviderAvailability,
    /// These participants are not free at any time the provider is.
    ParticipantsUnavailable {
        /// Who.
        participants: Vec<String>,
    },
    /// Each participant is free at some provider time, but never all at once.
    NoCommonTime,
}

impl NoFit {
    /// A sentence for people.
    pub fn describe(&self) -> String {
        match self {
            NoFit::WindowPassed { from } => format!(
                "the window is over: times can be offered from {}",
                from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            NoFit::NoProviderAvailability => {
                "the provider has no bookable time in the window that is long enough".to_string()
            }
            NoFit::ParticipantsUnavailable { participants } => {
                format!("{} busy at every time the provider is available", list_people(participants))
            }
            NoFit::NoCommonTime => {
                "everyone is free at some of the provider's times, but never all at the same time".to_string()
            }
        }
    }
}

fn list_people(people: &[String]) -> String {
    match people {
        [one] => format!("{one} is"),
        [init @ .., last] => format!("{} and {last} are", init.join(", ")),
        [] => "nobody is".to_string(),
    }
}

/// Times that work if something gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alternatives {
    /// Times when every required participant can come; `absent` names the optional ones who cannot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without_optional: Vec<MutualSlot>,
    /// The nearest times that work for everyone after the window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_window: Vec<MutualSlot>,
}

impl Alternatives {
    /// True when there is nothing to offer.
    pub fn is_empty(&self) -> bool {
        self.without_optional.is_empty() && self.after_window.is_empty()
    }
}

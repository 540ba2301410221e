//! Who calls a use case, and when.

use chrono::{DateTime, TimeDelta, Utc};

/// The system's one clock: real time, or real time shifted so that the system started at a
/// chosen instant (`calsync serve --clock-start`, for the demo, whose data is a fixed week). Time
/// still passes, so holds still expire. Everything that needs "now" reads it here, through the
/// [`Context`] of its call.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    offset: TimeDelta,
}

impl Clock {
    /// A clock that reads `start` now and runs on from there.
    pub fn starting_at(start: DateTime<Utc>) -> Clock {
        Clock { offset: start - Utc::now() }
    }

    /// The current instant on this clock.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

/// Who asks.
///
/// Every use case receives the caller and asks the policy ([`crate::policy`],
/// [`crate::compartment`]) what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials were presented.
    Anonymous,
    /// The command line, run by whoever operates this deployment: it holds the configuration
    /// and the database already.
    Operator,
    /// A client with a valid bearer token, and who it names.
    Bearer(crate::access::Principal),
}

/// What every use case takes besides its input.
#[derive(Debug, Clone)]
pub struct Context {
    /// Who asks.
    pub caller: Caller,
    /// The instant of the call on the system's [`Clock`].
    pub now: DateTime<Utc>,
    /// This server's address as the caller reached it (`http://host:port`), for the URLs a use
    /// case hands out when no public address is configured.
    pub base: String,
    /// The request's id (a client's `X-Request-Id`, else drawn): the audit trail and the logs
    /// name it.
    pub request: String,
}

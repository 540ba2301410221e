//! Who is asking: every handler receives a [`RequestContext`].
//!
//! Today every caller is anonymous and allowed; the security issue fills in bearer
//! tokens, scopes and compartments here without touching the handlers.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use chrono::{DateTime, TimeDelta, Utc};

/// The server's clock: real time, or real time shifted so that the server started at a chosen
/// instant (`calsync serve --clock-start`, for the demo, whose data is a fixed week). Time
/// still passes, so holds still expire.
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

/// The caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No credentials were presented.
    Anonymous,
}

/// Per-request facts handlers may rely on.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// Who is asking.
    pub caller: Caller,
    /// The base URL of this server as the client addressed it (`http://host:port`).
    pub base: String,
    /// The instant of the request on the server's [`Clock`].
    pub now: DateTime<Utc>,
}

impl FromRequest for RequestContext {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let info = req.connection_info();
        let now = req.app_data::<web::Data<Clock>>().map_or_else(Utc::now, |c| c.now());
        let base = format!("{}://{}", info.scheme(), info.host());
        ready(Ok(RequestContext { caller: Caller::Anonymous, base, now }))
    }
}

//! Who is asking: every handler receives a [`RequestContext`].
//!
//! Today every caller is anonymous and allowed; the security issue fills in bearer
//! tokens, scopes and compartments here without touching the handlers.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload};

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
}

impl FromRequest for RequestContext {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let info = req.connection_info();
        ready(Ok(RequestContext { caller: Caller::Anonymous, base: format!("{}://{}", info.scheme(), info.host()) }))
    }
}

//! Who is asking: every handler receives a [`RequestContext`], the use cases' [`Context`] of the
//! request.
//!
//! Today every caller is anonymous; the security issue reads bearer tokens here, and the use
//! cases check the caller they are given.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use calsync_usecase::{Caller, Context, UseCases};

/// The [`Context`] of a request: its caller, its instant on the system's clock, and the base URL
/// the client addressed (`http://host:port`).
#[derive(Debug, Clone)]
pub struct RequestContext(pub Context);

impl std::ops::Deref for RequestContext {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.0
    }
}

impl FromRequest for RequestContext {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let info = req.connection_info();
        let base = format!("{}://{}", info.scheme(), info.host());
        // The use cases hold the system's one clock; a server without them is not wired.
        ready(match req.app_data::<web::Data<UseCases>>() {
            Some(cases) => Ok(RequestContext(cases.context(Caller::Anonymous, base))),
            None => Err(actix_web::error::ErrorInternalServerError("the server has no use cases")),
        })
    }
}

/// A request as a handler starts from it: the HTTP request, its [`RequestContext`], and the use
/// cases.
pub struct Incoming {
    /// The HTTP request.
    pub req: HttpRequest,
    /// Who asks, and when.
    pub cx: RequestContext,
    /// The use cases.
    pub cases: web::Data<UseCases>,
}

impl FromRequest for Incoming {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let cx = match RequestContext::from_request(req, payload).into_inner() {
            Ok(cx) => cx,
            Err(e) => return ready(Err(e)),
        };
        ready(match req.app_data::<web::Data<UseCases>>() {
            Some(cases) => Ok(Incoming { req: req.clone(), cx, cases: cases.clone() }),
            None => Err(actix_web::error::ErrorInternalServerError("the server has no use cases")),
        })
    }
}

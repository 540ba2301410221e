//! Who is asking: every handler receives a [`RequestContext`], the use cases' [`Context`] of the
//! request, with the caller its bearer token names ([`crate::auth`]). The use cases check the
//! caller they are given.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use calsync_usecase::{Caller, Context, UseCaseError, UseCases};

use crate::edge::Edge;
use crate::outcome::ApiError;

/// The routes answered without a token: discovery, the SMART Scheduling Links feed, the two a
/// browser comes back to from outside, which their `state` authenticates, and the development
/// issuer's sign-in.
pub const PUBLIC: [&str; 11] = [
    "/metadata",
    "/.well-known/smart-configuration",
    "/.well-known/jwks.json",
    "/OperationDefinition/{id}",
    "/SearchParameter/{id}",
    "/$bulk-publish",
    "/$bulk-publish/{file}",
    "/$booking-return",
    "/connect/{provider}/callback",
    "/auth/authorize",
    "/auth/token",
];

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
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let authorization = req.headers().get("authorization").map(|v| v.to_str().unwrap_or("?").to_string());
        // The use cases hold the system's one clock; a server without them (or its edge) is not
        // wired.
        let cases = req.app_data::<web::Data<UseCases>>().cloned();
        let edge = req.app_data::<web::Data<Edge>>().cloned();
        let base = edge.as_ref().map(|e| e.base(req)).unwrap_or_default();
        let public = req.match_pattern().is_some_and(|p| PUBLIC.contains(&p.as_str()));
        // A client's request id, when it is a plain token (it is written into the audit trail).
        let request_id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| {
                !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            })
            .map(String::from);
        let req = req.clone();
        Box::pin(async move {
            let cases = cases.ok_or_else(|| ApiError::internal("the server has no use cases"))?;
            let edge = edge.ok_or_else(|| ApiError::internal("the server has no edge"))?;
            let caller = edge.authenticator.caller(authorization.as_deref()).await.map_err(ApiError::from)?;
            // Deny by default at the edge too: without a token nothing but the public routes is
            // read further (the use cases check again, whoever calls them).
            if caller == Caller::Anonymous && !cases.is_open() && !public {
                return Err(ApiError::from(UseCaseError::Unauthenticated("a bearer token is required".into())).into());
            }
            let mut cx = cases.context(caller, base);
            if let Some(id) = request_id {
                cx.request = id;
            }
            // The error handler audits a refusal with the caller it was given.
            req.extensions_mut().insert(cx.clone());
            Ok(RequestContext(cx))
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
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let context = RequestContext::from_request(req, payload);
        let (req, cases) = (req.clone(), req.app_data::<web::Data<UseCases>>().cloned());
        Box::pin(async move {
            let cx = context.await?;
            let cases = cases.ok_or_else(|| ApiError::internal("the server has no use cases"))?;
            Ok(Incoming { req, cx, cases })
        })
    }
}

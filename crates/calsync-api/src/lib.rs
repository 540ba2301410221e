//! The FHIR R4 facade of calsync: HTTP in, one use case, FHIR out.
//!
//! `GET /metadata`; read, vread, create, update (with `If-Match`), delete and search on the
//! resources calsync keeps ([`registry`]); the scheduling operations ([`operation`], one module
//! each); calendar connections and publishers as plain JSON. Each handler parses its request,
//! calls one method of [`calsync_usecase::UseCases`] with the request's
//! [`context::RequestContext`], and renders the answer. Every error is an OperationOutcome with
//! a precise 4xx status (5xx only for our own faults, without internals).
//!
//! The composition root (`calsync-system`) serves it: [`mount`] the routes over the use cases,
//! and wrap the application in [`errors`], then in [`xml::at_the_edge`] (FHIR XML for clients
//! that ask for it).

use actix_web::middleware::ErrorHandlers;
use actix_web::web;
use calsync_usecase::UseCases;

pub mod auth;
pub mod connect;
pub mod connections;
pub mod context;
pub mod edge;
pub mod interaction;
pub mod media;
pub mod operation;
pub mod outcome;
pub mod publishers;
pub mod registry;
pub mod sign_in;
pub mod smart;
pub mod xml;

/// Mounts the whole facade over `cases`: its routes (operations before the REST interactions,
/// whose `/{type}/{id}` would match them), the use cases as their shared data, and the largest
/// body accepted.
pub fn mount(cases: UseCases, edge: edge::Edge) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let cases = web::Data::new(cases);
    let edge = web::Data::new(edge);
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(cases.clone())
            .app_data(edge.clone())
            .app_data(web::PayloadConfig::new(media::MAX_BODY))
            .configure(smart::routes)
            .configure(sign_in::routes)
            .configure(connections::routes)
            .configure(connect::routes)
            .configure(publishers::routes)
            .configure(operation::routes)
            .configure(interaction::routes);
    }
}

/// The middleware that turns every error response not already FHIR (an unknown route, a wrong
/// method, a body too large) into an OperationOutcome with the same status.
pub fn errors<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(outcome::as_operation_outcome)
}

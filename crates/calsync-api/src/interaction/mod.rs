//! The REST interactions, one module each, and the routes that reach them.

use actix_web::web;

use crate::outcome::ApiError;
use crate::registry;

mod capabilities;
mod create;
mod delete;
mod read;
pub mod search;
mod search_parameter;
mod update;
mod vread;

/// Mounts every interaction; a known path with another method answers 405.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let not_allowed = || web::route().to(method_not_allowed);
    cfg.service(web::resource("/metadata").route(web::get().to(capabilities::handle)).default_service(not_allowed()))
        .service(
            web::resource("/{type}")
                .route(web::get().to(search::get))
                .route(web::post().to(create::handle))
                .default_service(not_allowed()),
        )
        .service(
            web::resource("/SearchParameter/{id}")
                .route(web::get().to(search_parameter::read))
                .default_service(not_allowed()),
        )
        .service(web::resource("/{type}/_search").route(web::post().to(search::post)).default_service(not_allowed()))
        .service(
            web::resource("/{type}/{id}")
                .route(web::get().to(read::handle))
                .route(web::put().to(update::handle))
                .route(web::delete().to(delete::handle))
                .default_service(not_allowed()),
        )
        .service(
            web::resource("/{type}/{id}/_history/{vid}")
                .route(web::get().to(vread::handle))
                .default_service(not_allowed()),
        );
}

pub(crate) async fn method_not_allowed(req: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(format!("{} is not supported on {}", req.method(), req.path())))
}

/// The id of a URL, if FHIR allows it; no resource can have another (404, and the database
/// never sees it).
pub(crate) fn resource_id<'a>(resource_type: &str, id: &'a str) -> Result<&'a str, ApiError> {
    if calsync_store::is_valid_id(id) {
        Ok(id)
    } else {
        Err(ApiError::NotFound(format!("{resource_type}/{id:?} is not known: ids are 1-64 of A-Z a-z 0-9 - .")))
    }
}

/// The resource type of a URL, if the server keeps it (404 otherwise).
fn resource_type(name: &str) -> Result<&str, ApiError> {
    if registry::is_supported(name) {
        Ok(name)
    } else {
        Err(ApiError::NotFound(format!("resource type {name:?} is not supported")))
    }
}

/// After a Consent was written or deleted (`before` and `after` its versions): every
/// participant either version names has their calendar connections re-checked, and those no
/// longer permitted are purged at once. A failure here is logged; the next sync purges anyway.
pub(crate) async fn consent_changed(
    store: &calsync_store::Store,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
    now: chrono::DateTime<chrono::Utc>,
) {
    let mut named: Vec<&str> = before.into_iter().chain(after).flat_map(calsync_fhir::consent::named).collect();
    named.sort_unstable();
    named.dedup();
    match calsync_sync::connection::enforce_consent(store, &named, now).await {
        Ok(withdrawn) if !withdrawn.is_empty() => {
            tracing::info!(connections = withdrawn.len(), "consent withdrawn: connections purged")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "re-checking consent after a Consent write failed"),
    }
}

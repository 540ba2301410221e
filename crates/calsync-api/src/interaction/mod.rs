//! The REST interactions, one module each, and the routes that reach them.

use actix_web::{guard, web};

mod capabilities;
mod create;
mod delete;
mod read;
mod search;
mod search_parameter;
mod update;
mod vread;

/// Mounts every interaction; a known path with another method answers 405. `HEAD` answers as
/// `GET` does, without the body.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let not_allowed = || web::route().to(crate::outcome::method_not_allowed);
    let get_or_head = || web::route().guard(guard::Any(guard::Get()).or(guard::Head()));
    cfg.service(
        web::resource("/metadata").route(get_or_head().to(capabilities::handle)).default_service(not_allowed()),
    )
    .service(
        web::resource("/{type}")
            .route(get_or_head().to(search::get))
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
            .route(get_or_head().to(read::handle))
            .route(web::put().to(update::handle))
            .route(web::delete().to(delete::handle))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/{type}/{id}/_history/{vid}")
            .route(get_or_head().to(vread::handle))
            .default_service(not_allowed()),
    );
}

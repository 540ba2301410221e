//! The REST interactions, one module each, and the routes that reach them.

use actix_web::web;

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
    cfg.service(
        web::resource("/metadata")
            .route(web::get().to(capabilities::handle))
            .route(web::head().to(capabilities::handle))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/{type}")
            .route(web::get().to(search::get))
            .route(web::head().to(search::get))
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
            .route(web::head().to(read::handle))
            .route(web::put().to(update::handle))
            .route(web::delete().to(delete::handle))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/{type}/{id}/_history/{vid}")
            .route(web::get().to(vread::handle))
            .route(web::head().to(vread::handle))
            .default_service(not_allowed()),
    );
}

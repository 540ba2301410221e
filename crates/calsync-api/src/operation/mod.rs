//! The scheduling operations, one module each: `Appointment/$find` (IHE ITI-115),
//! `Appointment/$find-mutual`, `Appointment/$hold`, `Appointment/$book`,
//! `Appointment/{id}/$cancel`, `Appointment/{id}/$ics`, `Schedule/{id}/$import-ics`,
//! `Slot/{id}/$booking-link` and `$bulk-publish`. Each reads its parameters ([`inputs`]), calls
//! one use case and renders the answer; each has an OperationDefinition ([`definition`]) served
//! at `/OperationDefinition/{id}` and listed in the CapabilityStatement.

use actix_web::web;

mod book;
mod booking_link;
mod bulk_publish;
mod cancel;
pub mod definition;
mod find;
mod find_mutual;
mod hold;
pub(crate) mod ics;
mod import_ics;
pub mod inputs;

/// The parameters of `$find` (`mutual` false) or `$find-mutual` as the query the use case takes.
pub use find_mutual::read as find_query;

/// Mounts the operations (before the REST interactions, whose `/{type}/{id}` would match them).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let not_allowed = || web::route().to(crate::outcome::method_not_allowed);
    cfg.service(
        web::resource("/Appointment/$find")
            .route(web::get().to(find::handle))
            .route(web::post().to(find::handle))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/Appointment/$find-mutual")
            .route(web::get().to(find_mutual::handle))
            .route(web::post().to(find_mutual::handle))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/$bulk-publish").route(web::get().to(bulk_publish::manifest)).default_service(not_allowed()),
    )
    .service(
        web::resource("/$bulk-publish/{file}").route(web::get().to(bulk_publish::file)).default_service(not_allowed()),
    )
    .service(
        web::resource("/Slot/{id}/$booking-link")
            .route(web::post().to(booking_link::link))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/$booking-return")
            .route(web::get().to(booking_link::finish))
            .route(web::post().to(booking_link::finish))
            .default_service(not_allowed()),
    )
    .service(web::resource("/Appointment/$hold").route(web::post().to(hold::handle)).default_service(not_allowed()))
    .service(web::resource("/Appointment/$book").route(web::post().to(book::handle)).default_service(not_allowed()))
    .service(
        web::resource("/Appointment/{id}/$cancel").route(web::post().to(cancel::handle)).default_service(not_allowed()),
    )
    .service(web::resource("/Appointment/{id}/$ics").route(web::get().to(ics::handle)).default_service(not_allowed()))
    .service(
        web::resource("/Schedule/{id}/$import-ics")
            .app_data(web::PayloadConfig::new(calsync_usecase::import_calendar::MAX_BYTES))
            .route(web::post().to(import_ics::handle))
            .default_service(not_allowed()),
    )
    .service(
        web::resource("/OperationDefinition/{id}")
            .route(web::get().to(definition::read))
            .default_service(not_allowed()),
    );
}

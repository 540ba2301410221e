//! The HTTP server: the FHIR facade over the system's use cases.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{App, HttpServer};

use crate::{Settings, System};

/// A built, not yet running, server: the system opened, its holds released in the background,
/// the listener bound. Shared by `calsync serve` and the black-box tests (port 0, a fresh
/// database).
pub struct Application {
    server: Server,
    port: u16,
    system: System,
}

impl Application {
    /// Opens the system and binds `settings.bind`.
    pub async fn build(settings: &Settings) -> Result<Self, String> {
        let system = System::open(settings).await?;
        system.release_holds_in_background();
        let listener = TcpListener::bind(&settings.bind).map_err(|e| format!("cannot bind {}: {e}", settings.bind))?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let api = calsync_api::mount(system.use_cases().clone(), crate::authentication::edge(settings)?);
        let server = HttpServer::new(move || {
            App::new()
                .wrap(calsync_api::errors())
                .wrap(actix_web::middleware::from_fn(calsync_api::xml::at_the_edge))
                .configure(api.clone())
        })
        .listen(listener)
        .map_err(|e| e.to_string())?
        .run();
        Ok(Self { server, port, system })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The system it serves.
    pub fn system(&self) -> &System {
        &self.system
    }

    /// Serves until stopped.
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }
}

//! Connecting a Google or Microsoft calendar through OAuth 2.0 (authorization code with PKCE):
//!
//! - `GET /connect/{provider}/start?participant=Patient/1` redirects the browser to the
//!   provider's consent page, asking for the least scopes (free/busy only).
//! - `GET /connect/{provider}/callback?code&state` takes that authorization once and creates the
//!   connection. A browser gets a short page; other clients the connection as JSON (201).

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_usecase::UseCases;
use calsync_usecase::connect::Callback;

use crate::connections::view;
use crate::context::RequestContext;
use crate::outcome::ApiError;

/// The cookie that binds an authorization to the browser that started it.
const BINDING_COOKIE: &str = "calsync_connect";

/// Mounts the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/connect/{provider}/start").route(web::get().to(start)))
        .service(web::resource("/connect/{provider}/callback").route(web::get().to(callback)));
}

type Query = web::Query<std::collections::HashMap<String, String>>;

async fn start(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let participant = query.get("participant").ok_or_else(|| ApiError::bad_request("participant is required"))?;
    let started = cases.start_authorization(&cx, &path, participant).await?;
    // The browser that gives consent must be the one that started: it carries the binding back.
    let binding = actix_web::cookie::Cookie::build(BINDING_COOKIE, started.binding)
        .path("/connect")
        .http_only(true)
        .secure(cx.base.starts_with("https:"))
        .same_site(actix_web::cookie::SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::minutes(10))
        .finish();
    Ok(HttpResponse::Found()
        .insert_header(("Location", started.url))
        .insert_header(("Cache-Control", "no-store"))
        .cookie(binding)
        .finish())
}

async fn callback(
    req: HttpRequest,
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let back = Callback {
        state: query.get("state").cloned(),
        code: query.get("code").cloned(),
        error: query.get("error").cloned(),
        binding: req.cookie(BINDING_COOKIE).map(|c| c.value().to_string()),
    };
    let c = cases.finish_authorization(&cx, &path, &back).await?;
    let wants_html =
        req.headers().get("Accept").and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        return Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
            "<!doctype html><meta charset=utf-8><title>Calendar connected</title>\
             <p>Your {} calendar is connected. calsync reads only when you are busy, never what your events are.\
             <p>You can close this page.",
            if c.kind == "google" { "Google" } else { "Outlook" }
        )));
    }
    Ok(HttpResponse::Created().insert_header(("Location", format!("{}/connections/{}", cx.base, c.id))).json(view(&c)))
}

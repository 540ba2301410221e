//! `/connections`: participants' calendar connections (not FHIR resources: they hold sealed
//! credentials), as plain JSON. Create one for an ICS feed or a CalDAV calendar, list a
//! participant's with their status, sync one now, sync all, delete one (its busy Slots go with
//! it). Google and Microsoft connect through OAuth (`/connect/{provider}/start`, see
//! [`crate::connect`]).

use actix_web::{HttpResponse, web};
use calsync_usecase::connections::NewConnection;
use calsync_usecase::{CalendarConnection, UseCases};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::outcome::ApiError;

/// Mounts the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/connections").route(web::post().to(create)).route(web::get().to(list)))
        .service(web::resource("/connections/$sync-all").route(web::post().to(sync_all)))
        .service(web::resource("/connections/{id}").route(web::get().to(read)).route(web::delete().to(delete)))
        .service(web::resource("/connections/{id}/$sync").route(web::post().to(sync_now)));
}

/// An instant in UTC milliseconds as FHIR instant text (null when none).
pub(crate) fn instant(ms: Option<i64>) -> Value {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or(Value::Null, |t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

/// What clients see of a connection: never its credentials or address beyond the host.
pub(crate) fn view(c: &CalendarConnection) -> Value {
    json!({"id": c.id, "participant": c.participant, "schedule": format!("Schedule/{}", c.schedule),
        "kind": c.kind, "host": c.host, "state": c.state, "reason": c.reason,
        "lastSuccess": instant(c.last_success_ms), "nextRun": instant(c.next_run_ms)})
}

fn text(body: &Value, name: &str) -> Result<String, ApiError> {
    body[name]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .map(String::from)
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

async fn create(cx: RequestContext, cases: web::Data<UseCases>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let new = NewConnection {
        participant: text(&body, "participant")?,
        kind: text(&body, "kind")?,
        url: text(&body, "url")?,
        username: body["username"].as_str().map(String::from),
        password: body["password"].as_str().map(String::from),
    };
    let c = cases.connect_calendar(&cx, new).await?;
    Ok(HttpResponse::Created().insert_header(("Location", format!("{}/connections/{}", cx.base, c.id))).json(view(&c)))
}

async fn list(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let participant = query.get("participant").ok_or_else(|| ApiError::bad_request("participant is required"))?;
    let found = cases.connections_of(&cx, participant).await?;
    Ok(HttpResponse::Ok().json(json!({"connections": found.iter().map(view).collect::<Vec<_>>()})))
}

async fn read(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&cases.connection(&cx, &path).await?)))
}

async fn sync_now(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&cases.sync_connection_now(&cx, &path).await?)))
}

/// `POST /connections/$sync-all`: every connection that syncs by itself becomes due now and is
/// queued for the worker (what the nightly run does). 202 with how many were queued.
async fn sync_all(cx: RequestContext, cases: web::Data<UseCases>) -> Result<HttpResponse, ApiError> {
    let queued = cases.sync_all_connections(&cx).await?;
    Ok(HttpResponse::Accepted().json(json!({"queued": queued})))
}

async fn delete(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    cases.disconnect_calendar(&cx, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

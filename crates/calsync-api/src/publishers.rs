//! `/publishers`: SMART Scheduling Links publishers whose availability calsync ingests (not
//! FHIR resources), as plain JSON. Register one by its manifest URL, read its status (with the
//! report of its last poll: counts, bad lines with file and line), poll it now, or remove it
//! with everything ingested from it.

use actix_web::{HttpResponse, web};
use calsync_usecase::{Publisher, PublisherOptions, UseCases};
use serde_json::{Value, json};

use crate::connections::instant;
use crate::context::RequestContext;
use crate::outcome::ApiError;

/// Mounts the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/publishers").route(web::post().to(create)).route(web::get().to(list)))
        .service(web::resource("/publishers/{id}").route(web::get().to(read)).route(web::delete().to(delete)))
        .service(web::resource("/publishers/{id}/$poll").route(web::post().to(poll_now)));
}

/// What clients see of a publisher.
fn view(p: &Publisher) -> Value {
    let options: Value = serde_json::from_str(&p.options).unwrap_or(Value::Null);
    let report: Value = p.report.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
    json!({"id": p.id, "manifest": p.manifest_url, "options": options, "state": p.state, "reason": p.reason,
        "since": p.since, "polls": p.polls, "lastPoll": instant(p.last_poll_ms), "nextRun": instant(p.next_run_ms),
        "report": report})
}

async fn create(cx: RequestContext, cases: web::Data<UseCases>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let manifest = body["manifest"]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("manifest (the publisher's $bulk-publish URL) is required"))?;
    let options = PublisherOptions {
        zone: body["zone"].as_str().map(String::from),
        local_times: body["localTimes"].as_bool().unwrap_or(false),
    };
    let p = cases.register_publisher(&cx, manifest, options).await?;
    Ok(HttpResponse::Created().insert_header(("Location", format!("{}/publishers/{}", cx.base, p.id))).json(view(&p)))
}

async fn list(cx: RequestContext, cases: web::Data<UseCases>) -> Result<HttpResponse, ApiError> {
    let all = cases.publishers(&cx).await?;
    Ok(HttpResponse::Ok().json(json!({"publishers": all.iter().map(view).collect::<Vec<_>>()})))
}

async fn read(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&cases.publisher(&cx, &path).await?)))
}

async fn poll_now(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&cases.poll_publisher_now(&cx, &path).await?)))
}

async fn delete(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    cases.remove_publisher(&cx, &path).await?;
    Ok(HttpResponse::NoContent().finish())
}

//! `/publishers`: SMART Scheduling Links publishers whose availability calsync ingests (not
//! FHIR resources). Register one by its manifest URL, read its status (with the report of its
//! last poll: counts, bad lines with file and line), poll it now, or remove it with everything
//! ingested from it. The worker polls each as often as the publisher allows (see
//! [`calsync_links`]).

use actix_web::{HttpResponse, web};
use calsync_connect::egress::{Egress, EgressClient};
use calsync_links::Options;
use calsync_store::{Publisher, Store, StoreError};
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

/// The HTTP client polls use.
pub(crate) type Http = web::Data<EgressClient>;

/// What clients see of a publisher.
fn view(p: &Publisher) -> Value {
    let options: Value = serde_json::from_str(&p.options).unwrap_or(Value::Null);
    let report: Value = p.report.as_deref().and_then(|r| serde_json::from_str(r).ok()).unwrap_or(Value::Null);
    json!({"id": p.id, "manifest": p.manifest_url, "options": options, "state": p.state, "reason": p.reason,
        "since": p.since, "polls": p.polls, "lastPoll": instant(p.last_poll_ms), "nextRun": instant(p.next_run_ms),
        "report": report})
}

async fn create(
    cx: RequestContext,
    store: web::Data<Store>,
    egress: web::Data<Egress>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let manifest = body["manifest"]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::BadRequest("manifest (the publisher's $bulk-publish URL) is required".into()))?;
    // A path on this server's disk is for the command line only.
    if !(manifest.starts_with("http://") || manifest.starts_with("https://")) {
        return Err(ApiError::BadRequest("manifest must be an http(s) URL".into()));
    }
    let url = url::Url::parse(manifest).map_err(|e| ApiError::BadRequest(format!("{manifest:?} is not a URL: {e}")))?;
    egress.admit(&url).map_err(|refused| crate::connections::refused_address(&refused, "manifest"))?;
    let options = Options {
        zone: body["zone"].as_str().map(String::from),
        local_times: body["localTimes"].as_bool().unwrap_or(false),
    };
    let p = calsync_links::register(&store, manifest, options, cx.now).await.map_err(links_error)?;
    tracing::info!(publisher = %p.id, "publisher registered");
    Ok(HttpResponse::Created().insert_header(("Location", format!("{}/publishers/{}", cx.base, p.id))).json(view(&p)))
}

fn links_error(e: calsync_links::LinksError) -> ApiError {
    match e {
        calsync_links::LinksError::Invalid(m) => ApiError::BadRequest(m),
        calsync_links::LinksError::Store(e) => e.into(),
    }
}

async fn list(store: web::Data<Store>) -> Result<HttpResponse, ApiError> {
    let all = store.publishers().await?;
    Ok(HttpResponse::Ok().json(json!({"publishers": all.iter().map(view).collect::<Vec<_>>()})))
}

async fn one(store: &Store, id: &str) -> Result<Publisher, ApiError> {
    match store.publisher(id).await {
        Ok(p) => Ok(p),
        Err(StoreError::NotFound(..)) => Err(ApiError::NotFound(format!("publisher {id} is not known"))),
        Err(e) => Err(e.into()),
    }
}

async fn read(store: web::Data<Store>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&one(&store, &path).await?)))
}

async fn poll_now(
    cx: RequestContext,
    store: web::Data<Store>,
    http: Http,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = one(&store, &path).await?.id;
    let p = calsync_links::poll(&store, &http, &id, cx.now, &|_| {}).await.map_err(links_error)?;
    Ok(HttpResponse::Ok().json(view(&p)))
}

async fn delete(
    cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let p = one(&store, &path).await?;
    let removed = store.delete_publisher(&p.id, &calsync_links::INGESTED_TYPES, cx.now).await?;
    tracing::info!(publisher = %p.id, removed, "publisher removed");
    Ok(HttpResponse::NoContent().finish())
}

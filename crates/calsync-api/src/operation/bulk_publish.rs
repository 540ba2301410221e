//! `GET /$bulk-publish` and its files: calsync's provider availability as a SMART Scheduling
//! Links feed (see [`calsync_usecase::publish`]). The manifest is JSON whatever the Accept
//! header, with `Cache-Control: max-age`, an `ETag` that moves with every write of a Location,
//! Schedule or Slot, `Last-Modified`, and `304` on `If-None-Match` (or `If-Modified-Since`).
//! Files are `application/fhir+ndjson`; Slot files are streamed a chunk at a time.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_usecase::UseCases;
use calsync_usecase::publish::{FeedFile, Held, MAX_AGE_SECONDS, Manifest};
use chrono::{DateTime, Utc};

use crate::context::RequestContext;
use crate::outcome::ApiError;

type Query = web::Query<std::collections::HashMap<String, String>>;

fn cache() -> (&'static str, String) {
    ("Cache-Control", format!("max-age={MAX_AGE_SECONDS}"))
}

fn last_modified(at: Option<DateTime<Utc>>) -> Option<(&'static str, String)> {
    at.map(|t| ("Last-Modified", t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()))
}

/// `GET /$bulk-publish`.
pub async fn manifest(
    req: HttpRequest,
    cx: RequestContext,
    cases: web::Data<UseCases>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let held = Held { if_none_match: header("If-None-Match"), if_modified_since: header("If-Modified-Since") };
    let answer = cases.feed_manifest(&cx, query.get("_since").map(String::as_str), &held).await?;
    Ok(match answer {
        Manifest::NotModified { tag, modified } => {
            let mut not_modified = HttpResponse::NotModified();
            not_modified.insert_header(("ETag", tag)).insert_header(cache());
            if let Some(h) = last_modified(modified) {
                not_modified.insert_header(h);
            }
            not_modified.finish()
        }
        Manifest::Current { tag, modified, body } => {
            let mut ok = HttpResponse::Ok();
            ok.content_type("application/json").insert_header(("ETag", tag)).insert_header(cache());
            if let Some(h) = last_modified(modified) {
                ok.insert_header(h);
            }
            ok.json(body)
        }
    })
}

/// `GET /$bulk-publish/{file}`.
pub async fn file(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let file = cases.feed_file(&cx, &path, query.get("_since").map(String::as_str)).await?;
    let mut response = HttpResponse::Ok();
    response.content_type("application/fhir+ndjson").insert_header(cache());
    Ok(match file {
        FeedFile::Whole(text) => response.body(text),
        // Straight from the store to the client, a chunk at a time.
        FeedFile::Slots(lines) => response.streaming(futures_util::stream::unfold(lines, |mut lines| async move {
            let chunk = match lines.next().await? {
                Ok(bytes) => Ok(web::Bytes::from(bytes)),
                Err(e) => {
                    tracing::warn!(error = %e, "publishing Slots failed");
                    Err(actix_web::error::ErrorInternalServerError("the store failed"))
                }
            };
            Some((chunk, lines))
        })),
    })
}

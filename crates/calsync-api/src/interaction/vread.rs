//! `GET /[type]/[id]/_history/[vid]`: one version.

use actix_web::{HttpResponse, web};

use crate::context::Incoming;
use crate::media;
use crate::outcome::ApiError;

pub async fn handle(at: Incoming, path: web::Path<(String, String, String)>) -> Result<HttpResponse, ApiError> {
    let Incoming { req, cx, cases } = at;
    media::negotiate(&req)?;
    let (t, id, vid) = path.into_inner();
    let version: i64 = vid.parse().map_err(|_| ApiError::bad_request(format!("version {vid:?} is not a number")))?;
    let stored = cases.vread(&cx, &t, &id, version).await?;
    Ok(media::resource_response(HttpResponse::Ok(), &req, &stored))
}

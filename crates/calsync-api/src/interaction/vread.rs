//! `GET /[type]/[id]/_history/[vid]`: one version.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_usecase::UseCases;

use crate::context::RequestContext;
use crate::media;
use crate::outcome::ApiError;

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let (t, id, vid) = path.into_inner();
    let version: i64 = vid.parse().map_err(|_| ApiError::BadRequest(format!("version {vid:?} is not a number")))?;
    let stored = cases.vread(&cx, &t, &id, version).await?;
    Ok(media::resource_response(HttpResponse::Ok(), &req, &stored))
}

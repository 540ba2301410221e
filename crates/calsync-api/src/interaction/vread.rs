//! `GET /[type]/[id]/_history/[vid]`: one version.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_store::Store;

use super::resource_type;
use crate::context::RequestContext;
use crate::media;
use crate::outcome::ApiError;

pub async fn handle(
    req: HttpRequest,
    _cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let (t, id, vid) = path.into_inner();
    let version: i64 = vid.parse().map_err(|_| ApiError::BadRequest(format!("version {vid:?} is not a number")))?;
    let t = resource_type(&t)?;
    let stored = store.vread(t, super::resource_id(t, &id)?, version).await?;
    if stored.deleted {
        return Err(ApiError::Gone(format!("{t}/{id} version {version} records its deletion")));
    }
    Ok(media::resource_response(HttpResponse::Ok(), &req, &stored))
}

//! `GET /[type]/[id]`: the current version; 410 after a delete.

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
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let (t, id) = path.into_inner();
    let t = resource_type(&t)?;
    let stored = store.read(t, super::resource_id(t, &id)?).await?;
    Ok(media::resource_response(HttpResponse::Ok(), &req, &stored))
}

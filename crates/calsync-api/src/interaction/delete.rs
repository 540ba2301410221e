//! `DELETE /[type]/[id]`: reads answer 410 afterwards.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_store::Store;

use super::resource_type;
use crate::context::RequestContext;
use crate::outcome::ApiError;

pub async fn handle(
    _req: HttpRequest,
    _cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    let t = resource_type(&t)?;
    store.delete(t, super::resource_id(t, &id)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

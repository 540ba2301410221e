//! `DELETE /[type]/[id]`: reads answer 410 afterwards.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_store::Store;

use super::resource_type;
use crate::context::RequestContext;
use crate::outcome::ApiError;

pub async fn handle(
    _req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    let t = resource_type(&t)?;
    let id = super::resource_id(t, &id)?;
    let before = match t {
        "Consent" => store.read(t, id).await.ok().map(|r| r.content),
        _ => None,
    };
    store.delete(t, id, cx.now).await?;
    if before.is_some() {
        super::consent_changed(&store, before.as_ref(), None, cx.now).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

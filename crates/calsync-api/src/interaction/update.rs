//! `PUT /[type]/[id]`: a new version (or the first), honouring `If-Match`.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_store::Store;

use super::resource_type;
use crate::context::RequestContext;
use crate::media;
use crate::outcome::ApiError;

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    media::require_json_body(&req)?;
    let (t, id) = path.into_inner();
    let t = resource_type(&t)?;
    let expected = media::if_match(req.headers())?;
    let text = media::body_text(&body)?;
    let value = calsync_fhir::validate::resource(text, t)?;
    match value.get("id").and_then(|v| v.as_str()) {
        Some(body_id) if body_id == id => {}
        Some(body_id) => {
            return Err(ApiError::BadRequest(format!("body id {body_id:?} does not match the URL id {id:?}")));
        }
        None => return Err(ApiError::BadRequest("an update must carry the resource id".into())),
    }
    let before = match t {
        "Consent" => store.read(t, &id).await.ok().map(|r| r.content),
        _ => None,
    };
    let (stored, created) = store.update(t, &id, value, expected, cx.now).await?;
    if t == "Consent" {
        super::consent_changed(&store, before.as_ref(), Some(&stored.content), cx.now).await;
    }
    let builder = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(media::resource_response(builder, &req, &stored))
}

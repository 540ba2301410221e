//! `PUT /[type]/[id]`: a new version (or the first), honouring `If-Match`.

use actix_web::{HttpResponse, web};

use crate::context::Incoming;
use crate::media;
use crate::outcome::ApiError;

pub async fn handle(
    at: Incoming,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let Incoming { req, cx, cases } = at;
    media::negotiate(&req)?;
    media::require_json_body(&req)?;
    let (t, id) = path.into_inner();
    let t = calsync_usecase::resources::kept_type(&t)?;
    let expected = media::if_match(req.headers())?;
    let text = media::body_text(&body)?;
    let (stored, created) = cases.update(&cx, t, &id, text, expected).await?;
    let builder = if created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(media::resource_response(builder, &req, &stored))
}

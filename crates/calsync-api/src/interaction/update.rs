//! `PUT /[type]/[id]`: a new version (or the first), honouring `If-Match`.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_usecase::UseCases;

use crate::context::RequestContext;
use crate::media;
use crate::outcome::ApiError;

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
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

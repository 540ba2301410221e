//! `DELETE /[type]/[id]`: reads answer 410 afterwards.

use actix_web::{HttpResponse, web};
use calsync_usecase::UseCases;

use crate::context::RequestContext;
use crate::outcome::ApiError;

pub async fn handle(
    cx: RequestContext,
    cases: web::Data<UseCases>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    cases.delete(&cx, &t, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

//! `POST /[type]`: validate, store under a server id, answer 201 with `Location`.

use actix_web::http::header;
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
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    media::require_json_body(&req)?;
    let t = resource_type(&path)?;
    let text = media::body_text(&body)?;
    let mut value = calsync_fhir::validate::resource(text, t)?;
    // Conditional create: nothing new when exactly one resource already matches.
    if let Some(criteria) = req.headers().get("If-None-Exist") {
        let criteria = criteria.to_str().map_err(|_| ApiError::BadRequest("If-None-Exist is not text".into()))?;
        let existing = super::search::matching(&store, t, criteria, 2, cx.now).await?;
        match existing.resources.as_slice() {
            [] => {}
            [one] => return Ok(media::resource_response(HttpResponse::Ok(), &req, one)),
            _ => {
                return Err(ApiError::PreconditionFailed(format!(
                    "If-None-Exist {criteria:?} matches {} resources",
                    existing.total
                )));
            }
        }
    }
    // The server assigns the id; a client's id is ignored on create.
    if let Some(map) = value.as_object_mut() {
        map.remove("id");
    }
    let stored = store.create(t, value, cx.now).await?;
    if t == "Consent" {
        // A new Consent can deny (a nested deny, or a status other than active).
        super::consent_changed(&store, None, Some(&stored.content), cx.now).await;
    }
    let location = format!("{}/{t}/{}/_history/{}", cx.base, stored.id, stored.version_id);
    let mut created = HttpResponse::Created();
    created.insert_header((header::LOCATION, location));
    Ok(media::resource_response(created, &req, &stored))
}

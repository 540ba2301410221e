//! `POST /[type]`: validate, store under a server id, answer 201 with `Location`; with
//! `If-None-Exist`, 200 and the one resource that matches already.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::context::Incoming;
use crate::media;
use crate::outcome::ApiError;

pub async fn handle(at: Incoming, path: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let Incoming { req, cx, cases } = at;
    media::negotiate(&req)?;
    media::require_json_body(&req)?;
    let t = calsync_usecase::resources::kept_type(&path)?;
    let text = media::body_text(&body)?;
    let criteria = match req.headers().get("If-None-Exist") {
        Some(c) => Some(c.to_str().map_err(|_| ApiError::bad_request("If-None-Exist is not text"))?),
        None => None,
    };
    let created = cases.create(&cx, t, text, criteria).await?;
    let stored = &created.resource;
    if !created.new {
        return Ok(media::resource_response(HttpResponse::Ok(), &req, stored));
    }
    let location = format!("{}/{t}/{}/_history/{}", cx.base, stored.id, stored.version_id);
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, location));
    Ok(media::resource_response(response, &req, stored))
}

//! `GET /[type]/[id]`: the current version; 410 after a delete.

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
) -> Result<HttpResponse, ApiError> {
    let (t, id) = path.into_inner();
    let t = resource_type(&t)?;
    // An Appointment can be asked for as its iCalendar confirmation.
    if t == "Appointment" && crate::operation::ics::wants_calendar(&req) {
        let stored = store.read(t, super::resource_id(t, &id)?).await?;
        return crate::operation::ics::respond(&cx, &store, &stored).await;
    }
    media::negotiate(&req)?;
    let stored = store.read(t, super::resource_id(t, &id)?).await?;
    Ok(media::resource_response(HttpResponse::Ok(), &req, &stored))
}

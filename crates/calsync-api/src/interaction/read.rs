//! `GET /[type]/[id]`: the current version; 410 after a delete. An Appointment asked for as
//! `text/calendar` is its iCalendar confirmation.

use actix_web::{HttpResponse, web};

use crate::context::Incoming;
use crate::media;
use crate::operation::ics;
use crate::outcome::ApiError;

pub async fn handle(at: Incoming, path: web::Path<(String, String)>) -> Result<HttpResponse, ApiError> {
    let Incoming { req, cx, cases } = at;
    let (t, id) = path.into_inner();
    let t = calsync_usecase::resources::kept_type(&t)?;
    if t == "Appointment" && ics::wants_calendar(&req) {
        return ics::respond(&cx, &cases, &id).await;
    }
    media::negotiate(&req)?;
    let stored = cases.read(&cx, t, &id).await?;
    Ok(media::resource_response(HttpResponse::Ok(), &req, &stored))
}

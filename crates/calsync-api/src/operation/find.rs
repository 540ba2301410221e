//! `Appointment/$find` (IHE ITI-115 Find Potential Appointments): free provider time as
//! proposed Appointments. Unlike `$find-mutual` it takes no caregivers; `patient-reference`'s
//! own busy time (their derived Schedule) still counts. Held Slots are never offered.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_store::Store;

use super::Inputs;
use super::find_mutual::{Request, respond};
use crate::context::RequestContext;
use crate::media;
use crate::outcome::ApiError;

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let inputs = Inputs::read(&req, &body)?;
    let request = Request::read(&inputs, false, cx.now)?;
    respond(&req, &cx, &store, &request).await
}

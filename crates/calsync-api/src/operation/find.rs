//! `Appointment/$find` (IHE ITI-115 Find Potential Appointments): free provider time as
//! proposed Appointments. Unlike `$find-mutual` it takes no caregivers; `patient-reference`'s
//! own busy time (their derived Schedule) still counts. Held Slots are never offered.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_usecase::UseCases;

use super::find_mutual::{read, respond};
use super::inputs::Inputs;
use crate::context::RequestContext;
use crate::media;
use crate::outcome::ApiError;

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    cases: web::Data<UseCases>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let inputs = Inputs::read(&req, &body)?;
    let query = read(&inputs, false, cx.now)?;
    let found = cases.find(&cx, &query).await?;
    Ok(respond(&req, &cx, &found, false))
}

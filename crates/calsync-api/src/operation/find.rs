//! `Appointment/$find` (IHE ITI-115 Find Potential Appointments): free provider time as
//! proposed Appointments. Unlike `$find-mutual` it takes no caregivers; `patient-reference`'s
//! own busy time (their derived Schedule) still counts. Held Slots are never offered. Each
//! option has an id and is kept for a hold's time, so that `$hold` and `$book` take it back by
//! `appointment-reference` (ITI-116, ITI-117). The IG's `patient-resource`, `reason`,
//! `referral-identifier`, `timing` and `insurance-reference` are taken and do not narrow the
//! options.

use actix_web::HttpResponse;

use super::find_mutual::{read, respond};
use super::inputs::Call;
use crate::outcome::ApiError;

pub async fn handle(call: Call) -> Result<HttpResponse, ApiError> {
    let mut query = read(&call.inputs, false, call.cx.now)?;
    query.remember = true;
    query.count_all = true;
    let found = call.cases.find(&call.cx, &query).await?;
    Ok(respond(&call, &found, false))
}

//! `Appointment/$find` (IHE ITI-115 Find Potential Appointments): free provider time as
//! proposed Appointments. Unlike `$find-mutual` it takes no caregivers; `patient-reference`'s
//! own busy time (their derived Schedule) still counts. Held Slots are never offered.

use actix_web::HttpResponse;

use super::find_mutual::{read, respond};
use super::inputs::Call;
use crate::outcome::ApiError;

pub async fn handle(call: Call) -> Result<HttpResponse, ApiError> {
    let query = read(&call.inputs, false, call.cx.now)?;
    let found = call.cases.find(&call.cx, &query).await?;
    Ok(respond(&call, &found, false))
}

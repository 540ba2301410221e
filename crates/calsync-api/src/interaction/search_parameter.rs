//! `GET /SearchParameter/{id}`: the search parameters calsync defines itself (today `Slot-end`),
//! so clients can read what the CapabilityStatement's `definition` points to.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_usecase::search::END_SEARCH_PARAMETER;
use serde_json::{Value, json};

use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

/// The SearchParameter resources calsync publishes, by id.
pub fn definitions() -> Vec<Value> {
    vec![json!({
        "resourceType": "SearchParameter",
        "id": "Slot-end",
        "url": END_SEARCH_PARAMETER,
        "name": "end",
        "status": "active",
        "description": "The end of the Slot. With `start`, allows overlap queries: start=lt{to}&end=gt{from}.",
        "code": "end",
        "base": ["Slot"],
        "type": "date",
        "expression": "Slot.end",
        "comparator": ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"],
    })]
}

pub async fn read(req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let id = path.into_inner();
    let found = definitions()
        .into_iter()
        .find(|d| d["id"] == id.as_str())
        .ok_or_else(|| ApiError::not_found(format!("SearchParameter/{id} is not known")))?;
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &found)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn definitions_are_valid_fhir() {
        for d in super::definitions() {
            calsync_fhir::validate::resource(&d.to_string(), "SearchParameter").unwrap();
        }
    }
}

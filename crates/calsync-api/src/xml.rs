//! FHIR XML at the edge: a client that asks for XML (`_format=xml`, or `Accept` naming
//! `application/fhir+xml` before any JSON) gets every FHIR answer in XML (reads, searches,
//! operations, errors), and a write may send an XML body. The handlers work in JSON; this
//! middleware converts their answers and the bodies it is sent (`calsync_fhir::xml`). Answers
//! that are not FHIR resources (the SMART Scheduling Links feed, iCalendar, `/connections`,
//! `/publishers`) stay as they are.

use actix_web::body::{BoxBody, MessageBody, to_bytes};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::media;
use crate::outcome::{FHIR_JSON, operation_outcome};

/// The FHIR XML media type.
pub const FHIR_XML: &str = "application/fhir+xml";

/// True when `media` (a media type, or a `_format` value) names XML.
pub fn is_xml(media: &str) -> bool {
    let m = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(m.as_str(), "application/fhir+xml" | "application/xml" | "text/xml" | "xml")
}

/// True when the request wants its answer in XML: `_format` decides; else `Accept`, by the first
/// of its media types that names XML or JSON (or anything).
pub fn wants_xml(req: &HttpRequest) -> bool {
    // Every request passes here: the query is read only when it may name a format.
    if req.query_string().contains("_format")
        && let Some(format) = media::query_value(req, "_format")
    {
        return is_xml(&format);
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    for m in accept.split(',') {
        if is_xml(m) {
            return true;
        }
        let plain = m.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        if plain.contains("json") || plain == "*/*" || plain == "application/*" {
            return false;
        }
    }
    false
}

/// The middleware (`actix_web::middleware::from_fn(xml::at_the_edge)`), outside the one that
/// turns errors into OperationOutcomes, so that those are converted too.
pub async fn at_the_edge(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let xml_out = wants_xml(req.request());
    let xml_in = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(is_xml);
    if xml_in {
        let body = match req.extract::<web::Bytes>().await {
            Ok(body) => body,
            Err(e) => {
                let status = e.as_response_error().status_code();
                let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    let pattern = req.match_pattern().unwrap_or_default();
                    format!("the request body is larger than {} bytes, the limit here", media::body_limit(&pattern))
                } else {
                    e.to_string()
                };
                return Ok(req.into_response(answer(status, "invalid", &text, xml_out)));
            }
        };
        let read = std::str::from_utf8(&body).map_err(|_| "the body is not UTF-8".to_string());
        match read.and_then(calsync_fhir::xml::to_json) {
            Ok(json) => {
                req.set_payload(Payload::from(web::Bytes::from(json)));
                let headers = req.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
                headers.remove(header::CONTENT_LENGTH);
            }
            Err(why) => {
                let text = format!("the XML body cannot be read as a FHIR R4 resource: {why}");
                return Ok(req.into_response(answer(StatusCode::BAD_REQUEST, "structure", &text, xml_out)));
            }
        }
    }
    let res = next.call(req).await?.map_into_boxed_body();
    let fhir =
        res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with(FHIR_JSON));
    if !xml_out || !fhir {
        return Ok(res);
    }
    let (req, res) = res.into_parts();
    let (mut head, body) = res.into_parts();
    let bytes = to_bytes(body).await.unwrap_or_default();
    head.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_XML));
    if bytes.is_empty() {
        // HEAD, or an answer without a body.
        return Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(bytes))));
    }
    let converted = std::str::from_utf8(&bytes).map_err(|e| e.to_string()).and_then(calsync_fhir::xml::from_json);
    match converted {
        Ok(xml) => Ok(ServiceResponse::new(req, head.set_body(BoxBody::new(xml)))),
        Err(why) => {
            let id = uuid::Uuid::new_v4().simple().to_string();
            tracing::error!(error_id = %id, cause = %why, "an answer could not be written as XML");
            let text = format!("internal error (error id {id})");
            Ok(ServiceResponse::new(req, answer(StatusCode::INTERNAL_SERVER_ERROR, "exception", &text, true)))
        }
    }
}

/// An OperationOutcome answer, in XML when `xml`.
fn answer(status: StatusCode, code: &str, text: &str, xml: bool) -> HttpResponse {
    let outcome = operation_outcome("error", code, text, None).to_string();
    match xml.then(|| calsync_fhir::xml::from_json(&outcome)) {
        Some(Ok(body)) => HttpResponse::build(status).content_type(FHIR_XML).body(body),
        _ => HttpResponse::build(status).content_type(FHIR_JSON).body(outcome),
    }
}

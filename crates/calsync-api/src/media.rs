//! Media types: FHIR JSON in and out, `_format` and `_pretty`, ETag and If-Match.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use calsync_usecase::StoredResource;

use crate::outcome::ApiError;
pub use crate::outcome::FHIR_JSON;

/// Largest request body accepted, but for calendar uploads.
pub const MAX_BODY: usize = 1024 * 1024;

/// The largest body the route `pattern` accepts: calendar files are larger than resources.
pub fn body_limit(pattern: &str) -> usize {
    if pattern.ends_with("$import-ics") { calsync_usecase::import_calendar::MAX_BYTES } else { MAX_BODY }
}

pub use calsync_usecase::search::query_pairs;

/// The first value of URL query parameter `name`, if present and readable.
pub fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    query_pairs(req.query_string(), false).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A request body as text (400 when it is not UTF-8).
pub fn body_text(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| ApiError::bad_request("body is not UTF-8"))
}

fn is_json(media: &str) -> bool {
    let m = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(m.as_str(), "application/fhir+json" | "application/json" | "json" | "application/*" | "*/*" | "")
}

/// Refuses requests that want something other than FHIR JSON or XML (406): `_format` wins over
/// `Accept`. XML answers are written at the edge ([`crate::xml`]).
pub fn negotiate(req: &HttpRequest) -> Result<(), ApiError> {
    let fhir = |m: &str| is_json(m) || crate::xml::is_xml(m);
    if let Some(format) = query_value(req, "_format") {
        return if fhir(&format) {
            Ok(())
        } else {
            Err(ApiError::NotAcceptable(format!("_format {format:?} is not supported; use json or xml")))
        };
    }
    match req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(accept) if accept.split(',').any(fhir) => Ok(()),
        Some(accept) => Err(ApiError::NotAcceptable(format!(
            "cannot answer as {accept}; use application/fhir+json or application/fhir+xml"
        ))),
    }
}

/// Refuses bodies that are not JSON (415).
pub fn require_json_body(req: &HttpRequest) -> Result<(), ApiError> {
    match req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
        Some(ct) if is_json(ct) => Ok(()),
        Some(ct) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {ct} is not supported; use application/fhir+json"
        ))),
        None => Err(ApiError::UnsupportedMediaType("Content-Type is required: application/fhir+json".into())),
    }
}

/// The version an `If-Match` header names (`W/"3"` or `"3"`), if present.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(raw) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let text = raw.to_str().unwrap_or("").trim();
    let inner = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    inner.parse().map(Some).map_err(|_| ApiError::bad_request(format!("If-Match {text:?} is not an ETag like W/\"1\"")))
}

/// True when the request asks for `_pretty=true`.
pub fn pretty(req: &HttpRequest) -> bool {
    query_value(req, "_pretty").as_deref() == Some("true")
}

/// A JSON body, pretty when `_pretty=true`.
pub fn body(req: &HttpRequest, value: &serde_json::Value) -> String {
    if pretty(req) { serde_json::to_string_pretty(value).unwrap_or_default() } else { value.to_string() }
}

/// A response carrying one stored resource, with ETag and Last-Modified.
pub fn resource_response(mut builder: HttpResponseBuilder, req: &HttpRequest, stored: &StoredResource) -> HttpResponse {
    builder
        .content_type(FHIR_JSON)
        .insert_header((header::ETAG, format!("W/\"{}\"", stored.version_id)))
        .insert_header((header::LAST_MODIFIED, stored.last_updated.format("%a, %d %b %Y %H:%M:%S GMT").to_string()))
        .body(body(req, &stored.content))
}

/// A value as it may stand in a URL's query (what is not a letter, digit or `-._~,|/:` percent-encoded).
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' | b'|' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

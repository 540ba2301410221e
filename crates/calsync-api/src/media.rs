//! Media types: FHIR JSON in and out, `_format` and `_pretty`, ETag and If-Match.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use calsync_store::StoredResource;

use crate::outcome::ApiError;

/// The FHIR JSON media type.
pub const FHIR_JSON: &str = "application/fhir+json";

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// Splits a query string into percent-decoded name/value pairs. In a URL's query a `+` is a
/// plus sign (as in a `+01:00` zone offset); in a form body (`form`) it stands for a space.
pub fn query_pairs(query: &str, form: bool) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k, form)?, decode(v, form)?))
        })
        .collect()
}

fn decode(s: &str, form: bool) -> Result<String, ApiError> {
    let bad = || ApiError::BadRequest(format!("{s:?} is not valid percent-encoded UTF-8"));
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit())).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' if form => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// The decoded value of URL query parameter `name`, if present and readable.
/// The first value of a query parameter.
pub fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    query_param(req, name)
}

fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    query_pairs(req.query_string(), false).ok()?.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A request body as text (400 when it is not UTF-8).
pub fn body_text(body: &[u8]) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|_| ApiError::BadRequest("body is not UTF-8".into()))
}

fn is_json(media: &str) -> bool {
    let m = media.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(m.as_str(), "application/fhir+json" | "application/json" | "json" | "application/*" | "*/*" | "")
}

/// Refuses requests that want something other than JSON (406): `_format` wins over `Accept`.
pub fn negotiate(req: &HttpRequest) -> Result<(), ApiError> {
    if let Some(format) = query_param(req, "_format") {
        return if is_json(&format) {
            Ok(())
        } else {
            Err(ApiError::NotAcceptable(format!("_format {format:?} is not supported; use json")))
        };
    }
    match req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(accept) if accept.split(',').any(is_json) => Ok(()),
        Some(accept) => Err(ApiError::NotAcceptable(format!("cannot answer as {accept}; use application/fhir+json"))),
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
    inner.parse().map(Some).map_err(|_| ApiError::BadRequest(format!("If-Match {text:?} is not an ETag like W/\"1\"")))
}

/// True when the request asks for `_pretty=true`.
pub fn pretty(req: &HttpRequest) -> bool {
    query_param(req, "_pretty").as_deref() == Some("true")
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

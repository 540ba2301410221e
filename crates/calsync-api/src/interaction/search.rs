//! `GET /[type]?…` and `POST /[type]/_search`: a searchset Bundle with keyset paging (see
//! [`calsync_usecase::search`] for the parameters).
//!
//! Anything not understood is ignored and left out of the `self` link, or refused (400) under
//! `Prefer: handling=strict`: a search never silently answers zero because of a parameter it did
//! not understand.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_usecase::search::{Entry, SearchRequest};
use serde_json::{Value, json};

use crate::context::Incoming;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn get(at: Incoming, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let pairs = media::query_pairs(at.req.query_string(), false)?;
    search(&at, &path, &pairs).await
}

pub async fn post(at: Incoming, path: web::Path<String>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let mut pairs = media::query_pairs(at.req.query_string(), false)?;
    pairs.extend(media::query_pairs(media::body_text(&body)?, true)?);
    search(&at, &path, &pairs).await
}

fn strict(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("Prefer")
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("handling=strict")))
}

async fn search(at: &Incoming, type_name: &str, pairs: &[(String, String)]) -> Result<HttpResponse, ApiError> {
    let Incoming { req, cx, cases } = at;
    media::negotiate(req)?;
    let request = SearchRequest::parse(type_name, pairs, strict(req), cx.now)?;
    let found = cases.search(cx, &request).await?;
    let t = request.resource_type();
    let link = |extra: Option<String>| {
        let mut params: Vec<String> = request.kept().iter().map(|(k, v)| format!("{k}={}", media::encode(v))).collect();
        params.push(format!("_count={}", request.count()));
        params.extend(extra);
        format!("{}/{t}?{}", cx.base, params.join("&"))
    };
    let mut links = vec![json!({"relation": "self", "url": link(request.cursor().map(|c| format!("_cursor={c}")))})];
    if let Some(next) = &found.next {
        links.push(json!({"relation": "next", "url": link(Some(format!("_cursor={next}")))}));
    }
    let text = searchset(&cx.base, found.total, &Value::Array(links), found.matches, found.included, &found.warnings);
    let body = if media::pretty(req) {
        let value: Value = serde_json::from_str(&text).map_err(|e| ApiError::internal(e.to_string()))?;
        serde_json::to_string_pretty(&value).unwrap_or(text)
    } else {
        text
    };
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(body))
}

/// A searchset Bundle written around resources that are already JSON text; `warnings`, if any,
/// in an OperationOutcome entry (search mode `outcome`).
fn searchset(
    base: &str,
    total: u64,
    links: &Value,
    matches: Vec<Entry>,
    included: Vec<Entry>,
    warnings: &[String],
) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(4096);
    let _ = write!(out, r#"{{"resourceType":"Bundle","type":"searchset","total":{total},"link":{links},"entry":["#);
    let tagged = matches.into_iter().map(|m| (m, "match")).chain(included.into_iter().map(|m| (m, "include")));
    for (n, (Entry { resource_type: t, id, json }, mode)) in tagged.enumerate() {
        if n > 0 {
            out.push(',');
        }
        let full_url = Value::String(format!("{base}/{t}/{id}"));
        let _ = write!(out, r#"{{"fullUrl":{full_url},"resource":{json},"search":{{"mode":"{mode}"}}}}"#);
    }
    if !warnings.is_empty() {
        let issues: Vec<Value> =
            warnings.iter().map(|w| json!({"severity": "warning", "code": "incomplete", "diagnostics": w})).collect();
        let outcome = json!({"resourceType": "OperationOutcome", "issue": issues});
        if !out.ends_with('[') {
            out.push(',');
        }
        let _ = write!(out, r#"{{"resource":{outcome},"search":{{"mode":"outcome"}}}}"#);
    }
    out.push_str("]}");
    out
}

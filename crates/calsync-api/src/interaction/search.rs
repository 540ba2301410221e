//! `GET /[type]?…` and `POST /[type]/_search`: a searchset Bundle with keyset paging.
//!
//! Supported today: `_id` on every type; `schedule`, `status`, `start` and the custom `end`
//! on Slot; `_count`, `_format`, `_pretty`. Comma is OR, a repeated parameter is AND.
//! Anything else is ignored and left out of the `self` link, or refused (400) under
//! `Prefer: handling=strict`: a search never silently answers zero because of a parameter
//! it did not understand.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_fhir::index::{self as fhir_index, ParamKind};
use calsync_store::search::{
    AnyOf, Bound, Cursor, Direction, IndexFilter, IndexTerm, Match, Page, ResourceSearch, SlotSearch,
};
use calsync_store::{Store, StoredResource};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::resource_type;
use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

/// Default and largest page size.
pub const DEFAULT_COUNT: u64 = 50;
/// `_count` above this is cut to it (or refused under strict handling).
pub const MAX_COUNT: u64 = 500;

/// Search parameters by resource type, for the CapabilityStatement: (name, type, documentation).
pub const SEARCH_PARAMS: &[(&str, &str, &str, &str)] = &[
    ("Slot", "schedule", "reference", "The Schedule the Slot belongs to"),
    ("Slot", "status", "token", "busy | free | busy-unavailable | busy-tentative | entered-in-error"),
    ("Slot", "start", "date", "Slot start"),
    ("Slot", "end", "date", "Slot end (calsync extension: with start, allows overlap queries start=lt..&end=gt..)"),
];

/// Reference search parameters `_include` can follow: (source type, parameter, JSON path of the
/// references: object keys, `[]` for "every element").
pub const INCLUDES: &[(&str, &str, &[&str])] = &[
    ("Slot", "schedule", &["schedule"]),
    ("Schedule", "actor", &["actor[]"]),
    ("Appointment", "slot", &["slot[]"]),
    ("Appointment", "actor", &["participant[]", "actor"]),
];

/// `_revinclude` the server can answer: (type that refers, parameter, type referred to).
pub const REVINCLUDES: &[(&str, &str, &str)] = &[("Slot", "schedule", "Schedule")];

/// Largest number of resources a single `_revinclude` adds to a page.
const MAX_REVINCLUDED: u64 = 1000;

/// Canonical URL of the custom `end` SearchParameter.
pub const END_SEARCH_PARAMETER: &str = "https://calsync.example.org/fhir/SearchParameter/Slot-end";

pub async fn get(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let pairs = media::query_pairs(req.query_string(), false)?;
    search(&req, &cx, &store, &path, &pairs).await
}

pub async fn post(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let mut pairs = media::query_pairs(req.query_string(), false)?;
    pairs.extend(media::query_pairs(media::body_text(&body)?, true)?);
    search(&req, &cx, &store, &path, &pairs).await
}

fn strict(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("Prefer")
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("handling=strict")))
}

/// The parsed request: recognised parameters (kept for links) and what they ask.
struct Parsed {
    kept: Vec<(String, String)>,
    /// `_elements`: top-level elements to keep in matches.
    elements: Option<Vec<String>>,
    direction: Direction,
    summary_count: bool,
    /// (source type, parameter, iterate).
    includes: Vec<(String, String, bool)>,
    revincludes: Vec<(String, String)>,
    slot: SlotSearch,
    /// The same filters for types other than Slot.
    resource: ResourceSearch,
    count: u64,
    cursor: Option<Cursor>,
}

async fn search(
    req: &HttpRequest,
    cx: &RequestContext,
    store: &Store,
    type_name: &str,
    pairs: &[(String, String)],
) -> Result<HttpResponse, ApiError> {
    media::negotiate(req)?;
    let t = resource_type(type_name)?;
    let parsed = parse(t, pairs, strict(req))?;
    let mut page = run(store, t, &parsed).await?;
    if parsed.summary_count {
        page.resources.clear();
        page.next = None;
    }
    let link = |extra: Option<String>| {
        let mut params: Vec<String> = parsed.kept.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        params.push(format!("_count={}", parsed.count));
        params.extend(extra);
        format!("{}/{t}?{}", cx.base, params.join("&"))
    };
    let this_page = parsed.cursor.as_ref().map(|c| format!("_cursor={}", cursor_token(c)));
    let mut links = vec![json!({"relation": "self", "url": link(this_page)})];
    if let Some(next) = &page.next {
        links.push(json!({"relation": "next", "url": link(Some(format!("_cursor={}", cursor_token(next))))}));
    }
    let included = includes(store, &parsed, &page.resources).await?;
    let entries: Vec<Value> = page
        .resources
        .iter()
        .map(|r| {
            let mut e = entry(&cx.base, r, "match");
            if let Some(keep) = &parsed.elements {
                subset(&mut e["resource"], keep);
            }
            e
        })
        .chain(included.iter().map(|r| entry(&cx.base, r, "include")))
        .collect();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": page.total,
        "link": links,
        "entry": entries,
    });
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(req, &bundle)))
}

async fn run(store: &Store, t: &str, parsed: &Parsed) -> Result<Page, ApiError> {
    Ok(if t == "Slot" {
        store.search_slots(&parsed.slot, parsed.direction, parsed.cursor.as_ref(), parsed.count).await?
    } else {
        store.search_resources(t, &parsed.resource, parsed.direction, parsed.cursor.as_ref(), parsed.count).await?
    })
}

/// Resources of type `t` matching `criteria` (a query string such as `If-None-Exist` carries),
/// at most `limit`. Criteria are read strictly: ignoring one would match too much.
pub async fn matching(store: &Store, t: &str, criteria: &str, limit: u64) -> Result<Page, ApiError> {
    let pairs = media::query_pairs(criteria, false)?;
    if pairs.is_empty() {
        return Err(ApiError::BadRequest("conditional criteria are empty".into()));
    }
    let mut parsed = parse(t, &pairs, true)?;
    parsed.count = limit;
    run(store, t, &parsed).await
}

fn entry(base: &str, r: &StoredResource, mode: &str) -> Value {
    json!({
        "fullUrl": format!("{base}/{}/{}", r.resource_type, r.id),
        "resource": r.content,
        "search": {"mode": mode},
    })
}

/// Keeps only the `keep` elements (and resourceType, id, meta) and tags the resource SUBSETTED.
fn subset(resource: &mut Value, keep: &[String]) {
    let Value::Object(map) = resource else { return };
    map.retain(|k, _| matches!(k.as_str(), "resourceType" | "id" | "meta") || keep.iter().any(|e| e == k));
    let meta = map.entry("meta").or_insert_with(|| json!({}));
    let tag = json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"});
    match meta.get_mut("tag").and_then(Value::as_array_mut) {
        Some(tags) => tags.push(tag),
        None => meta["tag"] = json!([tag]),
    }
}

/// The references at `path` in a resource (`[]` steps into every array element).
fn references<'a>(content: &'a Value, path: &[&str]) -> Vec<&'a str> {
    let mut current: Vec<&Value> = vec![content];
    for step in path {
        let (key, many) = match step.strip_suffix("[]") {
            Some(k) => (k, true),
            None => (*step, false),
        };
        current = current
            .into_iter()
            .filter_map(|v| v.get(key))
            .flat_map(|v| if many { v.as_array().map(|a| a.iter().collect()).unwrap_or_default() } else { vec![v] })
            .collect();
    }
    current.into_iter().filter_map(|v| v.get("reference").and_then(Value::as_str)).collect()
}

/// Resources named by `_include` (following `:iterate` through what was included, three rounds
/// at most) and `_revinclude`, each once, none of the matches repeated.
async fn includes(store: &Store, parsed: &Parsed, matches: &[StoredResource]) -> Result<Vec<StoredResource>, ApiError> {
    let mut seen: std::collections::HashSet<(String, String)> =
        matches.iter().map(|r| (r.resource_type.clone(), r.id.clone())).collect();
    let mut out: Vec<StoredResource> = Vec::new();
    let mut frontier: Vec<StoredResource> = matches.to_vec();
    for round in 0..3 {
        let mut next = Vec::new();
        for (source, param, iterate) in &parsed.includes {
            if round > 0 && !iterate {
                continue;
            }
            let Some((_, _, path)) = INCLUDES.iter().find(|(s, p, _)| s == source && p == param) else { continue };
            for r in frontier.iter().filter(|r| &r.resource_type == source) {
                for reference in references(&r.content, path) {
                    let Some((t, id)) = reference.rsplit_once('/') else { continue };
                    let t = t.rsplit('/').next().unwrap_or(t);
                    if !crate::registry::is_supported(t) || !calsync_store::is_valid_id(id) {
                        continue;
                    }
                    if seen.insert((t.to_string(), id.to_string())) {
                        match store.read(t, id).await {
                            Ok(found) => next.push(found),
                            Err(calsync_store::StoreError::NotFound(..) | calsync_store::StoreError::Gone(..)) => {}
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
        if next.is_empty() {
            break;
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    for (source, param) in &parsed.revincludes {
        if (source.as_str(), param.as_str()) == ("Slot", "schedule") {
            let schedules: Vec<String> = matches
                .iter()
                .filter(|r| r.resource_type == "Schedule")
                .map(|r| format!("Schedule/{}", r.id))
                .collect();
            if schedules.is_empty() {
                continue;
            }
            let search =
                SlotSearch { schedules: vec![AnyOf { values: schedules, negate: false }], ..Default::default() };
            for slot in store.search_slots(&search, Direction::Ascending, None, MAX_REVINCLUDED).await?.resources {
                if seen.insert((slot.resource_type.clone(), slot.id.clone())) {
                    out.push(slot);
                }
            }
        }
    }
    Ok(out)
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' | b'|' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The opaque `_cursor` of a page: hex of its sort key.
fn cursor_token(c: &Cursor) -> String {
    let raw = match c {
        Cursor::Slot(start, id) => format!("s{start}|{id}"),
        Cursor::Id(id) => format!("i{id}"),
    };
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn parse_cursor(token: &str) -> Result<Cursor, ApiError> {
    let bad = || ApiError::BadRequest("_cursor is not one this server issued".into());
    if !token.len().is_multiple_of(2) || token.len() > 512 {
        return Err(bad());
    }
    let bytes: Vec<u8> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    let raw = String::from_utf8(bytes).map_err(|_| bad())?;
    match raw.split_at_checked(1) {
        Some(("s", rest)) => {
            let (start, id) = rest.split_once('|').ok_or_else(bad)?;
            Ok(Cursor::Slot(start.parse().map_err(|_| bad())?, id.to_string()))
        }
        Some(("i", id)) => Ok(Cursor::Id(id.to_string())),
        _ => Err(bad()),
    }
}

fn parse(t: &str, pairs: &[(String, String)], strict: bool) -> Result<Parsed, ApiError> {
    let mut p = Parsed {
        kept: Vec::new(),
        elements: None,
        direction: Direction::Ascending,
        summary_count: false,
        includes: Vec::new(),
        revincludes: Vec::new(),
        slot: SlotSearch::default(),
        resource: ResourceSearch::default(),
        count: DEFAULT_COUNT,
        cursor: None,
    };
    for (key, value) in pairs {
        if key.contains('\0') || value.contains('\0') {
            return Err(ApiError::BadRequest(format!("search parameter {key:?} contains a NUL character")));
        }
        let (name, modifier) = match key.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (key.as_str(), None),
        };
        let bad_modifier =
            || ApiError::BadRequest(format!("modifier :{} is not supported on {name}", modifier.unwrap_or("")));
        match (name, t) {
            ("_count", _) => {
                let n: u64 =
                    value.parse().map_err(|_| ApiError::BadRequest(format!("_count {value:?} is not a number")))?;
                if n > MAX_COUNT && strict {
                    return Err(ApiError::BadRequest(format!("_count {n} is above the maximum of {MAX_COUNT}")));
                }
                p.count = n.clamp(1, MAX_COUNT);
            }
            ("_cursor", _) => p.cursor = Some(parse_cursor(value)?),
            ("_format" | "_pretty", _) => {}
            ("_elements", _) => {
                p.elements.get_or_insert_with(Vec::new).extend(split(value));
                p.kept.push((key.clone(), value.clone()));
            }
            ("_sort", _) => {
                let sort_key = if t == "Slot" { "start" } else { "_id" };
                p.direction = match value.as_str() {
                    v if v == sort_key => Direction::Ascending,
                    v if v.strip_prefix('-') == Some(sort_key) => Direction::Descending,
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "_sort={value} is not supported on {t}: use {sort_key} or -{sort_key}"
                        )));
                    }
                };
                p.kept.push((key.clone(), value.clone()));
            }
            ("_lastUpdated", _) if t != "Slot" => {
                if modifier.is_some() {
                    return Err(bad_modifier());
                }
                let bound =
                    date_bound(value, Utc::now()).map_err(|m| ApiError::BadRequest(format!("_lastUpdated: {m}")))?;
                p.resource.updated.push(bound);
                p.kept.push((key.clone(), value.clone()));
            }
            ("_include", _) => {
                let iterate = match modifier {
                    None => false,
                    Some("iterate") => true,
                    _ => return Err(bad_modifier()),
                };
                match value.split(':').collect::<Vec<_>>().as_slice() {
                    [source, param] if INCLUDES.iter().any(|(s, p, _)| s == source && p == param) => {
                        p.includes.push((source.to_string(), param.to_string(), iterate));
                        p.kept.push((key.clone(), value.clone()));
                    }
                    _ if strict => return Err(ApiError::BadRequest(format!("_include={value} is not supported"))),
                    _ => {}
                }
            }
            ("_revinclude", _) => match value.split(':').collect::<Vec<_>>().as_slice() {
                [source, param]
                    if REVINCLUDES.iter().any(|(s, p, target)| s == source && p == param && *target == t) =>
                {
                    p.revincludes.push((source.to_string(), param.to_string()));
                    p.kept.push((key.clone(), value.clone()));
                }
                _ if strict => {
                    return Err(ApiError::BadRequest(format!("_revinclude={value} is not supported on {t}")));
                }
                _ => {}
            },
            ("_summary", _) if value == "count" => {
                p.summary_count = true;
                p.kept.push((key.clone(), value.clone()));
            }
            ("_id", _) => {
                let negate = match modifier {
                    None => false,
                    Some("not") => true,
                    _ => return Err(bad_modifier()),
                };
                let v = AnyOf { values: split(value), negate };
                p.resource.ids.push(v.clone());
                p.slot.ids.push(v);
                p.kept.push((key.clone(), value.clone()));
            }
            ("schedule", "Slot") => {
                if modifier.is_some_and(|m| m != "Schedule") {
                    return Err(bad_modifier());
                }
                let values = split(value).iter().map(|v| reference("Schedule", v)).collect::<Result<_, _>>()?;
                p.slot.schedules.push(AnyOf { values, negate: false });
                p.kept.push((key.clone(), value.clone()));
            }
            ("status", "Slot") => {
                let negate = match modifier {
                    None => false,
                    Some("not") => true,
                    _ => return Err(bad_modifier()),
                };
                let values = split(value).iter().map(|v| v.rsplit('|').next().unwrap_or(v).to_string()).collect();
                p.slot.statuses.push(AnyOf { values, negate });
                p.kept.push((key.clone(), value.clone()));
            }
            ("start" | "end", "Slot") => {
                if modifier.is_some() {
                    return Err(bad_modifier());
                }
                let bound = date_bound(value, Utc::now()).map_err(|m| ApiError::BadRequest(format!("{name}: {m}")))?;
                if name == "start" {
                    p.slot.start.push(bound)
                } else {
                    p.slot.end.push(bound)
                }
                p.kept.push((key.clone(), value.clone()));
            }
            (name, t) if fhir_index::param(t, name).is_some() => {
                let def = fhir_index::param(t, name).expect("checked");
                let f = index_filter(def, modifier, value)?;
                p.resource.index.push(f.clone());
                p.slot.index.push(f);
                p.kept.push((key.clone(), value.clone()));
            }
            _ if strict => {
                return Err(ApiError::BadRequest(format!("search parameter {key:?} is not supported on {t}")));
            }
            _ => {}
        }
    }
    Ok(p)
}

/// A token, reference or string parameter as an index filter.
fn index_filter(def: &fhir_index::ParamDef, modifier: Option<&str>, value: &str) -> Result<IndexFilter, ApiError> {
    let name = def.name;
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => return Err(ApiError::BadRequest(format!("{name}:missing takes true or false"))),
        };
        return Ok(IndexFilter::Missing { param: name.to_string(), missing });
    }
    let bad_modifier =
        || ApiError::BadRequest(format!("modifier :{} is not supported on {name}", modifier.unwrap_or("")));
    let values = split(value);
    if values.is_empty() {
        return Err(ApiError::BadRequest(format!("{name} needs a value")));
    }
    let (terms, negate) = match def.kind {
        ParamKind::Token => {
            let negate = match modifier {
                None => false,
                Some("not") => true,
                _ => return Err(bad_modifier()),
            };
            let terms = values
                .iter()
                .map(|v| match v.split_once('|') {
                    Some((system, code)) => IndexTerm {
                        system: Some(system.to_string()),
                        value: (!code.is_empty()).then(|| code.to_string()),
                        how: Match::Exact,
                    },
                    None => IndexTerm { system: None, value: Some(v.clone()), how: Match::Exact },
                })
                .collect();
            (terms, negate)
        }
        ParamKind::Reference => {
            let terms = values
                .iter()
                .map(|v| {
                    let key = match (fhir_index::reference_key(v), modifier, def.target) {
                        (Some(k), None, _) => k,
                        (None, Some(t), _) | (None, None, Some(t)) => format!("{t}/{v}"),
                        (Some(k), Some(t), _) if k.starts_with(&format!("{t}/")) => k,
                        _ => {
                            return Err(ApiError::BadRequest(format!(
                                "{name}={v}: give a reference as Type/id (or use {name}:Type=id)"
                            )));
                        }
                    };
                    Ok(IndexTerm { system: None, value: Some(key), how: Match::Exact })
                })
                .collect::<Result<_, _>>()?;
            (terms, false)
        }
        ParamKind::Text => {
            let how = match modifier {
                None => Match::Prefix,
                Some("exact") => Match::Written,
                Some("contains") => Match::Contains,
                _ => return Err(bad_modifier()),
            };
            let terms = values
                .iter()
                .map(|v| IndexTerm {
                    system: None,
                    value: Some(if how == Match::Written { v.clone() } else { fhir_index::normalize(v) }),
                    how,
                })
                .collect();
            (terms, false)
        }
    };
    Ok(IndexFilter::Matches { param: name.to_string(), terms, negate })
}

fn split(value: &str) -> Vec<String> {
    value.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect()
}

/// `Schedule/1`, `1` or `http://host/fhir/Schedule/1` → `Schedule/1`.
fn reference(kind: &str, v: &str) -> Result<String, ApiError> {
    let parts: Vec<&str> = v.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        [id] => Ok(format!("{kind}/{id}")),
        [.., k, id] if *k == kind => Ok(format!("{kind}/{id}")),
        _ => Err(ApiError::BadRequest(format!("{v:?} is not a reference to a {kind}"))),
    }
}

/// A date search value, with its prefix, as a range of UTC milliseconds over Slot times.
/// The value stands for the whole range of its precision (a year, month, day, minute, second).
pub fn date_bound(value: &str, now: DateTime<Utc>) -> Result<Bound, String> {
    let (prefix, rest) = match value.get(..2) {
        Some(p @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le" | "sa" | "eb" | "ap")) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let (lo, hi) = precision_range(rest).ok_or_else(|| format!("{value:?} is not a FHIR date, dateTime or instant"))?;
    let (lo, hi) = (lo.timestamp_millis(), hi.timestamp_millis());
    Ok(match prefix {
        "eq" => Bound { lo: Some(lo), hi: Some(hi), negate: false },
        "ne" => Bound { lo: Some(lo), hi: Some(hi), negate: true },
        "gt" | "sa" => Bound { lo: Some(hi), hi: None, negate: false },
        "lt" | "eb" => Bound { lo: None, hi: Some(lo), negate: false },
        "ge" => Bound { lo: Some(lo), hi: None, negate: false },
        "le" => Bound { lo: None, hi: Some(hi), negate: false },
        _ => {
            // ap: within 10% of the distance to now (at least the value's own precision).
            let slack = ((now.timestamp_millis() - lo).abs() / 10).max(hi - lo);
            Bound { lo: Some(lo - slack), hi: Some(hi + slack), negate: false }
        }
    })
}

fn precision_range(v: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d);
    match v.len() {
        4 => {
            let y: i32 = v.parse().ok()?;
            Some((
                day(y, 1, 1)?.and_time(Default::default()).and_utc(),
                day(y + 1, 1, 1)?.and_time(Default::default()).and_utc(),
            ))
        }
        7 => {
            let d = NaiveDate::parse_from_str(&format!("{v}-01"), "%Y-%m-%d").ok()?;
            let next = d.checked_add_months(chrono::Months::new(1))?;
            Some((d.and_time(Default::default()).and_utc(), next.and_time(Default::default()).and_utc()))
        }
        10 => {
            let d = NaiveDate::parse_from_str(v, "%Y-%m-%d").ok()?;
            Some((d.and_time(Default::default()).and_utc(), d.succ_opt()?.and_time(Default::default()).and_utc()))
        }
        _ => {
            // A dateTime: with a zone it is an instant at its precision; without, read as UTC.
            let (start, precision) = if let Ok(t) = DateTime::parse_from_rfc3339(v) {
                let p = if v.contains('.') { TimeDelta::milliseconds(1) } else { TimeDelta::seconds(1) };
                (t.to_utc(), p)
            } else if let Ok(t) = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S") {
                (t.and_utc(), TimeDelta::seconds(1))
            } else if let Ok(t) = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M") {
                (t.and_utc(), TimeDelta::minutes(1))
            } else {
                let with_minutes = DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M%:z").ok()?;
                (with_minutes.to_utc(), TimeDelta::minutes(1))
            };
            Some((start, start + precision))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ms(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().timestamp_millis()
    }

    #[test]
    fn prefixes_over_precision_ranges() {
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
        let day = (Some(ms(2026, 12, 7, 0, 0)), Some(ms(2026, 12, 8, 0, 0)));
        let b = |v| date_bound(v, now).unwrap();
        assert_eq!((b("2026-12-07").lo, b("2026-12-07").hi), day);
        assert!(b("ne2026-12-07").negate);
        assert_eq!(b("gt2026-12-07"), Bound { lo: day.1, hi: None, negate: false });
        assert_eq!(b("sa2026-12-07"), b("gt2026-12-07"));
        assert_eq!(b("lt2026-12-07"), Bound { lo: None, hi: day.0, negate: false });
        assert_eq!(b("eb2026-12-07"), b("lt2026-12-07"));
        assert_eq!(b("ge2026-12-07"), Bound { lo: day.0, hi: None, negate: false });
        assert_eq!(b("le2026-12-07"), Bound { lo: None, hi: day.1, negate: false });
        assert_eq!((b("2026").lo, b("2026").hi), (Some(ms(2026, 1, 1, 0, 0)), Some(ms(2027, 1, 1, 0, 0))));
        assert_eq!((b("2026-02").lo, b("2026-02").hi), (Some(ms(2026, 2, 1, 0, 0)), Some(ms(2026, 3, 1, 0, 0))));
        assert_eq!(
            (b("2026-12-07T09:30").lo, b("2026-12-07T09:30").hi),
            (Some(ms(2026, 12, 7, 9, 30)), Some(ms(2026, 12, 7, 9, 31)))
        );
        assert_eq!(b("ge2026-12-07T10:30:00+01:00").lo, Some(ms(2026, 12, 7, 9, 30)));
        let ap = b("ap2026-12-07");
        assert!(ap.lo.unwrap() < day.0.unwrap() && ap.hi.unwrap() > day.1.unwrap());
        for bad in ["tomorrow", "2026-13-01", "ge", "2026-12-07T25:00", "xx2026"] {
            assert!(date_bound(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn references_in_three_forms() {
        assert_eq!(reference("Schedule", "Schedule/1").unwrap(), "Schedule/1");
        assert_eq!(reference("Schedule", "1").unwrap(), "Schedule/1");
        assert_eq!(reference("Schedule", "http://example.org/fhir/Schedule/1").unwrap(), "Schedule/1");
        assert!(reference("Schedule", "Location/1").is_err());
    }

    #[test]
    fn cursors_round_trip_and_forgeries_are_refused() {
        for c in [Cursor::Slot(1_790_000_000_000, "a-1".into()), Cursor::Id("x.y".into())] {
            assert_eq!(parse_cursor(&cursor_token(&c)).unwrap(), c);
        }
        for bad in ["zz", "7", "78", &"00".repeat(300)] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }
}

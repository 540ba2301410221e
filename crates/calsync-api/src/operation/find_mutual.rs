//! `Appointment/$find-mutual`: times when a provider Slot is free and every participant is.
//! Reads the parameters into a [`FindQuery`], runs the `find` use case, and renders its answer
//! with `calsync_fhir::find_bundle`. Parameters and answer: `docs/api.md`.

use actix_web::HttpResponse;
use calsync_core::Preference;
use calsync_usecase::find::{DEFAULT_COUNT, Edge, FindQuery, Found, Providers, Token, Window};
use calsync_usecase::search::date_value;
use calsync_usecase::typed_reference;
use chrono::{TimeDelta, Utc};

use super::inputs::{Call, Inputs};
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn handle(call: Call) -> Result<HttpResponse, ApiError> {
    let mut query = read(&call.inputs, true, call.cx.now)?;
    query.explain = call.inputs.flag("explain")?;
    let found = call.cases.find(&call.cx, &query).await?;
    Ok(respond(&call, &found, query.explain))
}

/// Reads the parameters both operations share; `mutual` adds participants and preferences.
pub fn read(inputs: &Inputs, mutual: bool, now: chrono::DateTime<Utc>) -> Result<FindQuery, ApiError> {
    // A date (or a month, a year) is whole days, read in the search's zone by the use case; a
    // time is an instant.
    let edge = |name: &str| -> Result<Edge, ApiError> {
        let v = inputs.one(name)?.ok_or_else(|| ApiError::bad_request(format!("{name} is required")))?;
        let (_, lo, hi) = date_value(&v, now).map_err(|m| ApiError::bad_request(format!("{name}: {m}")))?;
        let at = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| ApiError::bad_request(format!("{name} out of range")))
        };
        if v.contains('T') {
            return Ok(Edge::Instant(at(lo)?));
        }
        // The days from `lo` (a UTC midnight) up to `hi` (the midnight after the last).
        let (first, after) = (at(lo)?.date_naive(), at(hi)?.date_naive());
        Ok(Edge::Days(first, after.pred_opt().unwrap_or(first)))
    };
    let mut query = FindQuery::new(Window { start: edge("start")?, end: edge("end")? });
    query.duration = match inputs.one("duration")? {
        None => None,
        Some(v) => {
            let minutes: i64 = v
                .trim_end_matches("min")
                .parse()
                .map_err(|_| ApiError::bad_request(format!("duration {v:?} is not a number of minutes")))?;
            // Out of range: the use case says which range.
            Some(TimeDelta::try_minutes(minutes).unwrap_or(TimeDelta::MAX))
        }
    };
    let types = ["Patient", "RelatedPerson"];
    for (name, required) in [("participant", true), ("optional-participant", false), ("patient-reference", true)] {
        if !mutual && name != "patient-reference" {
            continue;
        }
        for v in inputs.all(name) {
            let (t, id) = typed_reference(&v, &types, name)?;
            query.participants.push((format!("{t}/{id}"), required));
        }
    }
    let references = |name: &str, types: &[&str]| -> Result<Vec<String>, ApiError> {
        inputs
            .all(name)
            .iter()
            .map(|v| Ok(typed_reference(v, types, name).map(|(t, id)| format!("{t}/{id}"))?))
            .collect()
    };
    let tokens = |name: &str| inputs.all(name).iter().map(|v| Token::parse(v)).collect::<Vec<_>>();
    let mut service_types = tokens("visit-type");
    service_types.extend(tokens("service-type"));
    query.providers = Providers {
        practitioners: references("practitioner", &["Practitioner", "PractitionerRole"])?,
        locations: references("location-reference", &["Location"])?,
        specialties: tokens("specialty"),
        service_types,
        organizations: references("organization", &["Organization"])?,
        places: inputs.all("location-string"),
        schedules: inputs.all("schedule").iter().map(|v| v.rsplit('/').next().unwrap_or(v).to_string()).collect(),
    };
    if mutual {
        query.preferences = inputs
            .all("preference")
            .iter()
            .map(|p| p.parse::<Preference>().map_err(|e| ApiError::bad_request(e.to_string())))
            .collect::<Result<_, _>>()?;
        query.spread = inputs.flag("spread")?;
    }
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        match inputs.one(name)? {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| ApiError::bad_request(format!("{name} {v:?} is not a number"))),
        }
    };
    query.limit = number("_count", DEFAULT_COUNT)?;
    query.offset = number("_offset", 0)?;
    query.zone = match inputs.one("timezone")? {
        None => None,
        Some(z) => Some(z.parse().map_err(|_| ApiError::bad_request(format!("timezone {z:?} is not an IANA zone")))?),
    };
    Ok(query)
}

/// The answer Bundle of a search: `total` only when this page ends the options, a `next` link
/// (the same parameters, from the query string or a Parameters body, and `_offset`) when it does
/// not.
pub(super) fn respond(call: &Call, found: &Found, explain: bool) -> HttpResponse {
    let (req, cx) = (&call.req, &call.cx);
    let self_url = format!("{}{}", cx.base, req.uri());
    let shown = found.outcome.slots.len();
    let next_url = found.more.then(|| {
        let mut params: Vec<String> = call
            .inputs
            .values
            .iter()
            .filter(|(k, _)| k != "_offset")
            .map(|(k, v)| format!("{}={}", media::encode(k), media::encode(v)))
            .collect();
        params.push(format!("_offset={}", found.offset + shown));
        format!("{}{}?{}", cx.base, req.path(), params.join("&"))
    });
    let answer = calsync_fhir::FindAnswer {
        outcome: &found.outcome,
        people: &found.people,
        providers: &found.providers,
        explain,
        zone: found.zone,
        total: found.total.or((!found.more).then_some(found.offset + shown)),
        self_url: &self_url,
        next_url: next_url.as_deref(),
        ids: &found.ids,
    };
    let text = calsync_fhir::find_bundle(&answer);
    let body = if media::pretty(req) {
        serde_json::from_str::<serde_json::Value>(&text).map(|v| media::body(req, &v)).unwrap_or(text)
    } else {
        text
    };
    HttpResponse::Ok().content_type(FHIR_JSON).body(body)
}

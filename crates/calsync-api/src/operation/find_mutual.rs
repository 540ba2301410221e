//! `Appointment/$find-mutual`: times when a provider Slot is free and every participant is.
//! Reads the parameters into a [`FindQuery`], runs the `find` use case, and renders its answer
//! with `calsync_fhir::find_bundle`. Parameters and answer: `docs/api.md`.

use actix_web::{HttpRequest, HttpResponse};
use calsync_core::{Interval, Preference};
use calsync_usecase::find::{DEFAULT_COUNT, FindQuery, Found, Providers, Token};
use calsync_usecase::search::date_value;
use calsync_usecase::typed_reference;
use chrono::{TimeDelta, Utc};

use super::inputs::{Call, Inputs};
use crate::context::RequestContext;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

pub async fn handle(call: Call) -> Result<HttpResponse, ApiError> {
    let mut query = read(&call.inputs, true, call.cx.now)?;
    query.explain = call.inputs.flag("explain")?;
    let found = call.cases.find(&call.cx, &query).await?;
    Ok(respond(&call.req, &call.cx, &found, query.explain))
}

/// Reads the parameters both operations share; `mutual` adds participants and preferences.
pub(super) fn read(inputs: &Inputs, mutual: bool, now: chrono::DateTime<Utc>) -> Result<FindQuery, ApiError> {
    let instant = |name: &str| -> Result<chrono::DateTime<Utc>, ApiError> {
        let v = inputs.one(name)?.ok_or_else(|| ApiError::bad_request(format!("{name} is required")))?;
        let (_, lo, hi) = date_value(&v, now).map_err(|m| ApiError::bad_request(format!("{name}: {m}")))?;
        let ms = if name == "end" && !v.contains('T') { hi } else { lo };
        chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| ApiError::bad_request(format!("{name} out of range")))
    };
    let mut query = FindQuery::new(Interval::new(instant("start")?, instant("end")?));
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
    query.limit = match inputs.one("_count")? {
        None => DEFAULT_COUNT,
        Some(v) => v.parse::<usize>().map_err(|_| ApiError::bad_request(format!("_count {v:?} is not a number")))?,
    };
    query.zone = match inputs.one("timezone")? {
        None => None,
        Some(z) => Some(z.parse().map_err(|_| ApiError::bad_request(format!("timezone {z:?} is not an IANA zone")))?),
    };
    Ok(query)
}

/// The answer Bundle of a search.
pub(super) fn respond(req: &HttpRequest, cx: &RequestContext, found: &Found, explain: bool) -> HttpResponse {
    let self_url = format!("{}{}", cx.base, req.uri());
    let answer = calsync_fhir::FindAnswer {
        outcome: &found.outcome,
        people: &found.people,
        providers: &found.providers,
        explain,
        self_url: &self_url,
    };
    let text = calsync_fhir::find_bundle(&answer);
    let body = if media::pretty(req) {
        serde_json::from_str::<serde_json::Value>(&text).map(|v| media::body(req, &v)).unwrap_or(text)
    } else {
        text
    };
    HttpResponse::Ok().content_type(FHIR_JSON).body(body)
}

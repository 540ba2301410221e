//! `Appointment/$find-mutual`: times when a provider Slot is free and every participant is.
//! Parameters and answer: `docs/operations.md`.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_core::{Attendance, Interval, MutualQuery, Preference, ProviderSlot, SlotBook, SlotStatus, find_mutual};
use calsync_fhir::availability::is_participant_schedule;
use calsync_fhir::{AppointmentParticipant, ProviderData, ScheduleInfo};
use calsync_store::Store;
use calsync_store::search::{Cursor, Direction, IndexFilter, IndexTerm, Match, ResourceSearch, SortBy};
use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};

use super::{Inputs, participant, typed_reference};
use crate::context::RequestContext;
use crate::interaction::search::date_value;
use crate::media::{self, FHIR_JSON};
use crate::outcome::ApiError;

/// Largest search window.
const MAX_WINDOW_DAYS: i64 = 92;
/// Largest number of options.
const MAX_COUNT: usize = 100;
/// Marks alternatives offered when nothing fits.
pub const ALTERNATIVE_EXTENSION: &str = "https://calsync.example.org/fhir/StructureDefinition/alternative";

pub async fn handle(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let inputs = Inputs::read(&req, &body)?;
    let mut request = Request::read(&inputs, true, cx.now)?;
    request.explain = inputs.flag("explain")?;
    respond(&req, &cx, &store, &request).await
}

/// A parsed `$find` / `$find-mutual` request.
pub(crate) struct Request {
    pub window: Interval,
    pub duration: Option<TimeDelta>,
    /// (reference, required).
    pub participants: Vec<(String, bool)>,
    /// Index filters on provider Schedules (actor, service-type, specialty).
    pub schedule_filters: Vec<IndexFilter>,
    /// `schedule` ids, if named.
    pub schedule_ids: Vec<String>,
    /// `organization`: Schedules of its Locations, PractitionerRoles and HealthcareServices.
    pub organizations: Vec<String>,
    /// `location-string`: Schedules of Locations whose name or address contains each text.
    pub places: Vec<String>,
    pub preferences: Vec<Preference>,
    pub spread: bool,
    pub explain: bool,
    pub limit: usize,
    pub zone: Option<chrono_tz::Tz>,
}

fn tokens(param: &str, values: Vec<String>) -> IndexFilter {
    let terms = values
        .into_iter()
        .map(|v| match v.split_once('|') {
            Some((s, c)) => IndexTerm { system: Some(s.into()), value: Some(c.into()), how: Match::Exact },
            None => IndexTerm { system: None, value: Some(v), how: Match::Exact },
        })
        .collect();
    IndexFilter::Matches { param: param.into(), terms, negate: false }
}

impl Request {
    /// Reads the parameters both operations share; `mutual` adds participants and preferences.
    pub fn read(inputs: &Inputs, mutual: bool, now: chrono::DateTime<Utc>) -> Result<Self, ApiError> {
        let instant = |name: &str| -> Result<chrono::DateTime<Utc>, ApiError> {
            let v = inputs.one(name)?.ok_or_else(|| ApiError::BadRequest(format!("{name} is required")))?;
            let (_, lo, hi) = date_value(&v, now).map_err(|m| ApiError::BadRequest(format!("{name}: {m}")))?;
            let ms = if name == "end" && !v.contains('T') { hi } else { lo };
            chrono::DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| ApiError::BadRequest(format!("{name} out of range")))
        };
        let window = Interval::new(instant("start")?, instant("end")?);
        if window.is_empty() {
            return Err(ApiError::BadRequest("end must be after start".into()));
        }
        if window.end - window.start > TimeDelta::days(MAX_WINDOW_DAYS) {
            return Err(ApiError::BadRequest(format!("the window may span at most {MAX_WINDOW_DAYS} days")));
        }
        let duration = match inputs.one("duration")? {
            None => None,
            Some(v) => {
                let minutes: i64 = v
                    .trim_end_matches("min")
                    .parse()
                    .map_err(|_| ApiError::BadRequest(format!("duration {v:?} is not a number of minutes")))?;
                if !(5..=480).contains(&minutes) {
                    return Err(ApiError::BadRequest("duration must be 5 to 480 minutes".into()));
                }
                Some(TimeDelta::minutes(minutes))
            }
        };
        let mut participants = Vec::new();
        let types = ["Patient", "RelatedPerson"];
        for (name, required) in [("participant", true), ("optional-participant", false), ("patient-reference", true)] {
            if !mutual && name != "patient-reference" {
                continue;
            }
            for v in inputs.all(name) {
                let (t, id) = typed_reference(&v, &types, name)?;
                let r = format!("{t}/{id}");
                if participants.iter().any(|(p, _)| p == &r) {
                    return Err(ApiError::BadRequest(format!("{r} is named twice")));
                }
                participants.push((r, required));
            }
        }
        let mut schedule_filters = Vec::new();
        for (name, t) in [("practitioner", "Practitioner"), ("location-reference", "Location")] {
            let refs = inputs
                .all(name)
                .iter()
                .map(|v| typed_reference(v, &[t, if t == "Practitioner" { "PractitionerRole" } else { t }], name))
                .map(|r| r.map(|(t, id)| format!("{t}/{id}")))
                .collect::<Result<Vec<_>, _>>()?;
            if !refs.is_empty() {
                schedule_filters.push(IndexFilter::any_exact("actor", refs));
            }
        }
        for (name, param) in
            [("specialty", "specialty"), ("visit-type", "service-type"), ("service-type", "service-type")]
        {
            let v = inputs.all(name);
            if !v.is_empty() {
                schedule_filters.push(tokens(param, v));
            }
        }
        let organizations = inputs
            .all("organization")
            .iter()
            .map(|v| typed_reference(v, &["Organization"], "organization").map(|(t, id)| format!("{t}/{id}")))
            .collect::<Result<Vec<_>, _>>()?;
        let places = inputs.all("location-string");
        if places.iter().any(|p| p.trim().is_empty()) {
            return Err(ApiError::BadRequest("location-string is empty".into()));
        }
        let schedule_ids =
            inputs.all("schedule").iter().map(|v| v.rsplit('/').next().unwrap_or(v).to_string()).collect::<Vec<_>>();
        let preferences = if mutual {
            inputs
                .all("preference")
                .iter()
                .map(|p| p.parse::<Preference>().map_err(|e| ApiError::BadRequest(e.to_string())))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        let limit = match inputs.one("_count")? {
            None => 10,
            Some(v) => v.parse::<usize>().map_err(|_| ApiError::BadRequest(format!("_count {v:?} is not a number")))?,
        }
        .clamp(1, MAX_COUNT);
        let zone = match inputs.one("timezone")? {
            None => None,
            Some(z) => {
                Some(z.parse().map_err(|_| ApiError::BadRequest(format!("timezone {z:?} is not an IANA zone")))?)
            }
        };
        Ok(Request {
            window,
            duration,
            participants,
            schedule_filters,
            schedule_ids,
            organizations,
            places,
            preferences,
            spread: mutual && inputs.flag("spread")?,
            explain: false,
            limit,
            zone,
        })
    }
}

/// Provider Schedules the request may use, with their actors.
async fn provider_schedules(store: &Store, request: &Request) -> Result<ProviderData, ApiError> {
    let mut search = ResourceSearch { index: request.schedule_filters.clone(), ..Default::default() };
    // organization and location-string name actors; each given one narrows the Schedules.
    if !request.organizations.is_empty() {
        let mut actors = Vec::new();
        for t in ["Location", "PractitionerRole", "HealthcareService"] {
            let by = IndexFilter::any_exact("organization", request.organizations.clone());
            actors.extend(references_of(store, t, vec![by]).await?);
        }
        search.index.push(IndexFilter::any_exact("actor", actors));
    }
    for place in &request.places {
        let mut actors = Vec::new();
        for param in ["name", "address"] {
            let text = calsync_fhir::index::normalize(place.trim());
            let term = IndexTerm { system: None, value: Some(text), how: Match::Contains };
            let by = IndexFilter::Matches { param: param.into(), terms: vec![term], negate: false };
            actors.extend(references_of(store, "Location", vec![by]).await?);
        }
        search.index.push(IndexFilter::any_exact("actor", actors));
    }
    if search.index.iter().any(|f| matches!(f, IndexFilter::Matches { terms, .. } if terms.is_empty())) {
        return Ok(ProviderData::default());
    }
    if !request.schedule_ids.is_empty() {
        search.ids.push(calsync_store::search::AnyOf { values: request.schedule_ids.clone(), negate: false });
    }
    let mut data = ProviderData::default();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store
            .search_resources("Schedule", &search, (SortBy::Id, Direction::Ascending), cursor.as_ref(), 500)
            .await?;
        for s in page.resources.iter().filter(|s| !is_participant_schedule(&s.content)) {
            let actors = s.content["actor"]
                .as_array()
                .map(|a| a.iter().filter_map(|r| r["reference"].as_str()).map(String::from).collect())
                .unwrap_or_default();
            data.schedules.insert(format!("Schedule/{}", s.id), ScheduleInfo { actors });
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let locations: BTreeSet<String> =
        data.schedules.values().flat_map(|i| i.actors.iter().filter(|a| a.starts_with("Location/")).cloned()).collect();
    // Read 500 at a time, not one by one: naming no provider, every published Location is here.
    let ids: Vec<String> = locations.iter().map(|l| l["Location/".len()..].to_string()).collect();
    for chunk in ids.chunks(500) {
        let search = ResourceSearch {
            ids: vec![calsync_store::search::AnyOf { values: chunk.to_vec(), negate: false }],
            ..Default::default()
        };
        let page = store.search_resources("Location", &search, (SortBy::Id, Direction::Ascending), None, 500).await?;
        for found in page.resources {
            if let Some(name) = found.content["name"].as_str() {
                data.locations.insert(format!("Location/{}", found.id), name.to_string());
            }
        }
    }
    Ok(data)
}

/// References (`Location/x`) of every live resource of type `t` matching `filters`.
async fn references_of(store: &Store, t: &str, filters: Vec<IndexFilter>) -> Result<Vec<String>, ApiError> {
    let search = ResourceSearch { index: filters, ..Default::default() };
    let mut found = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = store.search_resources(t, &search, (SortBy::Id, Direction::Ascending), cursor.as_ref(), 500).await?;
        found.extend(page.resources.iter().map(|r| format!("{t}/{}", r.id)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(found),
        }
    }
}

/// Runs the search and writes the answer Bundle.
pub(crate) async fn respond(
    req: &HttpRequest,
    cx: &RequestContext,
    store: &Store,
    request: &Request,
) -> Result<HttpResponse, ApiError> {
    let now = cx.now;
    let providers = provider_schedules(store, request).await?;
    let lookahead = TimeDelta::days(14);
    // Only the chosen Schedules' free Slots are read, unless the request names no provider.
    let narrowed = !request.schedule_filters.is_empty()
        || !request.schedule_ids.is_empty()
        || !request.organizations.is_empty()
        || !request.places.is_empty();
    let chosen: Vec<String> = providers.schedules.keys().cloned().collect();
    let chosen = narrowed.then_some(chosen.as_slice());
    let provider_slots = |rows: Vec<calsync_store::SlotRow>| -> Vec<ProviderSlot> {
        rows.into_iter()
            .filter(|r| providers.schedules.contains_key(&r.schedule))
            .map(|r| ProviderSlot {
                id: format!("Slot/{}", r.id),
                schedule: r.schedule,
                interval: Interval::new(r.start, r.end),
                status: SlotStatus::Free,
                capacity: None,
            })
            .collect()
    };
    // The window's Slots first; the 14 days after it only when nothing in it fits (they serve
    // the `after-window` alternatives alone). Over a million Slots that is 24,000 rows read
    // instead of 424,000 (docs/benchmarks.md, "`Appointment/$find` naming no provider").
    let slots = provider_slots(store.free_slots(chosen, request.window.start, request.window.end).await?);
    // Without a duration asked for: the shortest free Slot in the window (or, with none there,
    // in the days after it, for the alternatives).
    let shortest = |slots: &[ProviderSlot]| slots.iter().map(|s| s.interval.end - s.interval.start).min();
    let duration = request.duration.or_else(|| shortest(&slots));
    let horizon = Interval::new(request.window.start, request.window.end + lookahead);
    let wanted: Vec<(String, Attendance)> = request
        .participants
        .iter()
        .map(|(r, required)| (r.clone(), if *required { Attendance::Required } else { Attendance::Optional }))
        .collect();
    let participants = participant::load_all(store, &wanted, horizon, request.zone.unwrap_or(chrono_tz::UTC)).await?;
    let mut query = MutualQuery::new(request.window, duration.unwrap_or(TimeDelta::minutes(30)), now);
    query.limit = request.limit;
    query.spread = request.spread;
    query.preferences = request.preferences.clone();
    query.explain = request.explain;
    query.lookahead = TimeDelta::zero();
    query.zone = request.zone.or_else(|| participants.first().map(|p| p.zone)).unwrap_or(chrono_tz::UTC);
    let searched = |slots: Vec<ProviderSlot>, query: &MutualQuery| {
        find_mutual(&SlotBook::new(slots), &participants, query).map_err(|e| ApiError::BadRequest(e.to_string()))
    };
    let mut outcome = searched(slots, &query)?;
    if outcome.slots.is_empty() {
        // Nothing fits in the window: the nearest times in the days after it, searched as a
        // window of their own (what the matching core's `lookahead` does over one book).
        let after = Interval::new(request.window.end, request.window.end + lookahead);
        let later = provider_slots(store.free_slots(chosen, after.start, after.end).await?);
        let duration = duration.or_else(|| shortest(&later)).unwrap_or(query.duration);
        let after_query = MutualQuery { window: after, duration, explain: false, ..query.clone() };
        outcome.explanation.alternatives.after_window = searched(later, &after_query)?.slots;
    }
    let people: Vec<AppointmentParticipant> = request
        .participants
        .iter()
        .map(|(r, required)| AppointmentParticipant { reference: r.clone(), display: r.clone(), required: *required })
        .collect();
    let text =
        calsync_fhir::appointments_bundle(&outcome.slots, &people, &providers, outcome.explanation.no_fit.as_ref());
    let mut bundle: Value = serde_json::from_str(&text).map_err(|e| ApiError::Internal(e.to_string()))?;
    let entries = bundle["entry"].as_array_mut().expect("a searchset has entries");
    for (kind, found) in [
        ("without-optional", &outcome.explanation.alternatives.without_optional),
        ("after-window", &outcome.explanation.alternatives.after_window),
    ] {
        if found.is_empty() {
            continue;
        }
        let text = calsync_fhir::appointments_bundle(found, &people, &providers, None);
        let alt: Value = serde_json::from_str(&text).map_err(|e| ApiError::Internal(e.to_string()))?;
        for mut e in alt["entry"].as_array().cloned().unwrap_or_default() {
            e["resource"]["extension"] = json!([{"url": ALTERNATIVE_EXTENSION, "valueCode": kind}]);
            e["search"]["mode"] = json!("include");
            entries.push(e);
        }
    }
    if request.explain && !outcome.explanation.rejected.is_empty() {
        let issues: Vec<Value> = outcome
            .explanation
            .rejected
            .iter()
            .take(50)
            .map(|r| {
                let who: BTreeMap<&str, Vec<String>> = r
                    .blocked_by
                    .iter()
                    .map(|b| (b.participant.as_str(), b.blockers.iter().map(|x| format!("{x:?}")).collect()))
                    .collect();
                let names: Vec<&str> = who.keys().copied().collect();
                json!({"severity": "information", "code": "business-rule",
                    "diagnostics": format!("{} at {} is blocked by {}", r.slot, r.interval.start.to_rfc3339(), names.join(", ")),
                    "expression": names})
            })
            .collect();
        entries.push(
            json!({"resource": {"resourceType": "OperationOutcome", "issue": issues}, "search": {"mode": "outcome"}}),
        );
    }
    for e in entries.iter_mut() {
        if e["resource"]["resourceType"] == "Appointment" && e.get("fullUrl").is_none() {
            e["fullUrl"] = json!(format!("urn:uuid:{}", uuid_like(&e["resource"])));
        }
    }
    bundle["link"] = json!([{"relation": "self", "url": format!("{}{}", cx.base, req.uri())}]);
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(req, &bundle)))
}

/// A stable urn:uuid for a proposed Appointment (from its slot and start), so the same option
/// has the same fullUrl in every answer.
fn uuid_like(appointment: &Value) -> String {
    let key = format!("{}|{}", appointment["slot"][0]["reference"], appointment["start"]);
    let hex = calsync_fhir::index::fnv(&key) + &calsync_fhir::index::fnv(&format!("{key}|2"));
    format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

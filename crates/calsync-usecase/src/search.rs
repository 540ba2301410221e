//! FHIR search: a searchset's matches with keyset paging, `_include` and `_revinclude`.
//!
//! Supported: `_id`, `_lastUpdated` on every type; `schedule`, `status`, `start` and the custom
//! `end` on Slot; the token, reference, string and date parameters of the search index
//! (`calsync_fhir::index`) on each type; `_count`, `_sort`, `_elements`, `_summary=count`. Comma
//! is OR, a repeated parameter is AND.

use calsync_fhir::index::{self as fhir_index, ParamKind};
use calsync_store::search::{
    AnyOf, Bound, Cursor, DateFilter, DatePrefix, Direction, IndexFilter, IndexTerm, Match, Page, Participants,
    ResourceSearch, SlotSearch, SortBy,
};
use calsync_store::{Store, StoredResource, StoredText};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use calsync_fhir::audit::Action;

use crate::access::Interaction;
use crate::compartment::{Compartment, Narrowing, Reach, ScheduleActors};
use crate::{Context, Outcome, UseCaseError, UseCases};

/// One resource of an answer, as the JSON text the store holds (or made of it, for `_elements`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its type.
    pub resource_type: String,
    /// Its id.
    pub id: String,
    /// The resource, as JSON text.
    pub json: String,
}

/// A page of a search.
#[derive(Debug, Clone)]
pub struct Searched {
    /// How many match in all.
    pub total: u64,
    /// This page's matches (none for `_summary=count`).
    pub matches: Vec<Entry>,
    /// What `_include` and `_revinclude` add.
    pub included: Vec<Entry>,
    /// The `_cursor` of the next page, if there is one.
    pub next: Option<String>,
    /// What the page leaves out (an `_include` or `_revinclude` cut at its bound).
    pub warnings: Vec<String>,
}

impl UseCases {
    /// Runs a search.
    pub async fn search(&self, cx: &Context, request: &SearchRequest) -> Outcome<Searched> {
        let reach = self.authorize(cx, &request.resource_type, Interaction::Search).await?;
        let narrowed;
        let request = match &reach {
            Reach::Person(c) => {
                narrowed = narrow(request, c)?;
                &narrowed
            }
            Reach::Everything => request,
        };
        let store = &self.store;
        let mut page = run(store, &request.resource_type, request).await?;
        if request.summary_count {
            page.resources.clear();
            page.next = None;
        }
        // Matches stay the text the store holds unless something must look inside them: a
        // person's matches are checked again, one by one, after the narrowed search.
        let person = matches!(reach, Reach::Person(_));
        let needs_content = request.elements.is_some() || !request.includes.is_empty() || person;
        let mut schedules = ScheduleActors::new();
        let mut matches = Vec::with_capacity(page.resources.len());
        let mut parsed_matches = Vec::new();
        for m in page.resources {
            if needs_content {
                let mut r = m.parse()?;
                if let Reach::Person(c) = &reach
                    && !self.may_read(c, &r.resource_type, &r.content, &mut schedules).await?
                {
                    tracing::error!(resource_type = %r.resource_type, "a narrowed search matched outside the compartment");
                    continue;
                }
                if let Some(keep) = &request.elements {
                    subset(&mut r.content, keep);
                }
                matches.push(Entry {
                    resource_type: r.resource_type.clone(),
                    id: r.id.clone(),
                    json: r.content.to_string(),
                });
                parsed_matches.push(r);
            } else {
                matches.push(Entry { resource_type: m.resource_type, id: m.id, json: m.json });
            }
        }
        let ids: Vec<(String, String)> = matches.iter().map(|m| (m.resource_type.clone(), m.id.clone())).collect();
        let (included, mut warnings) = includes(store, request, &ids, &parsed_matches).await?;
        // What the token may not read is left out, and the answer says so.
        let before = included.len();
        let mut kept = Vec::with_capacity(included.len());
        for r in included {
            let readable = match &reach {
                _ if self.permit(cx, &r.resource_type, Interaction::Read).is_err() => false,
                Reach::Person(c) => self.may_read(c, &r.resource_type, &r.content, &mut schedules).await?,
                Reach::Everything => true,
            };
            if readable {
                kept.push(r);
            }
        }
        let included = kept;
        if included.len() < before {
            warnings.push(format!(
                "{} included resources are left out: this token may not read them",
                before - included.len()
            ));
        }
        let included: Vec<Entry> = included
            .into_iter()
            .map(|r| Entry { json: r.content.to_string(), resource_type: r.resource_type, id: r.id })
            .collect();
        // What a participant's data the page holds goes on the audit trail (a Slot only when it
        // is busy: a provider's free time is nobody's).
        let audited: Vec<(&str, Value)> = matches
            .iter()
            .chain(&included)
            .filter(|e| match e.resource_type.as_str() {
                "Slot" => e.json.contains("\"status\":\"busy"),
                t => PARTICIPANT_DATA.contains(&t),
            })
            .filter_map(|e| Some((e.resource_type.as_str(), serde_json::from_str(&e.json).ok()?)))
            .collect();
        let audited = audited.iter().map(|(t, v)| (*t, v));
        self.audit_resources_with(cx, Action::Read, "search-type", audited, &mut schedules).await?;
        Ok(Searched { total: page.total, matches, included, next: page.next.as_ref().map(cursor_token), warnings })
    }

    /// Resources of type `t` matching `criteria` (a query string such as `If-None-Exist`
    /// carries), at most `limit`, and how many match in all.
    pub(crate) async fn matching(
        &self,
        cx: &Context,
        t: &str,
        criteria: &str,
        limit: u64,
    ) -> Outcome<(Vec<StoredResource>, u64)> {
        // A person's criteria match only in their compartment: a conditional create must not
        // hand them someone else's resource.
        let within = match self.reach(cx).await? {
            Reach::Person(c) => Some(c),
            Reach::Everything => None,
        };
        let page = matching(&self.store, t, criteria, limit, cx.now, within.as_ref()).await?;
        Ok((page.resources, page.total))
    }
}

/// Types whose resources can be a participant's data (Schedules when derived).
const PARTICIPANT_DATA: [&str; 6] = ["Patient", "RelatedPerson", "Appointment", "Consent", "Task", "Schedule"];

/// Default and largest page size.
pub const DEFAULT_COUNT: u64 = 50;
/// `_count` above this is cut to it (or refused under strict handling).
pub const MAX_COUNT: u64 = 500;
/// Search parameters in one search at most (each `name=value`, however often a name repeats):
/// each is a condition of the statement, and thousands of them overflowed the stack that builds
/// it.
pub const MAX_PARAMETERS: usize = 100;
/// Values of one parameter at most (comma-separated: any of them).
pub const MAX_VALUES: usize = 100;
/// `:contains` terms in one search at most: each reads every value of its parameter.
pub const MAX_CONTAINS: usize = 10;

/// Search parameters by resource type, for the CapabilityStatement: (name, type, documentation).
pub const SEARCH_PARAMS: &[(&str, &str, &str, &str)] = &[
    ("Slot", "schedule", "reference", "The Schedule the Slot belongs to"),
    ("Slot", "status", "token", "busy | free | busy-unavailable | busy-tentative | entered-in-error"),
    ("Slot", "start", "date", "Slot start"),
    ("Slot", "end", "date", "Slot end (calsync extension: with start, allows overlap queries start=lt..&end=gt..)"),
];

/// `Slot:schedule` lives in the Slot range columns, not the search index; every other reference
/// parameter of the index can be followed by `_include` and `_revinclude`.
const SLOT_SCHEDULE: (&str, &str) = ("Slot", "schedule");

/// Reference parameters `_include` can follow from resources of type `source`.
pub fn includes_from(source: &str) -> Vec<&'static str> {
    let slot = (source == SLOT_SCHEDULE.0).then_some(SLOT_SCHEDULE.1);
    slot.into_iter()
        .chain(
            fhir_index::PARAMS
                .iter()
                .filter(|p| p.resource_type == source && p.kind == ParamKind::Reference)
                .map(|p| p.name),
        )
        .collect()
}

/// (source type, parameter) pairs `_revinclude` can add to results of type `target`.
pub fn revincludes_onto(target: &str) -> Vec<(&'static str, &'static str)> {
    let slot = (target == "Schedule").then_some(SLOT_SCHEDULE);
    slot.into_iter()
        .chain(
            fhir_index::PARAMS
                .iter()
                .filter(|p| p.kind == ParamKind::Reference && p.target.is_none_or(|t| t == target))
                .map(|p| (p.resource_type, p.name)),
        )
        .collect()
}

/// `Type/id` keys a resource of type `source` refers to through `param`.
fn referenced(source: &str, param: &str, content: &Value) -> Vec<String> {
    if (source, param) == SLOT_SCHEDULE {
        return content["schedule"]["reference"].as_str().and_then(fhir_index::reference_key).into_iter().collect();
    }
    fhir_index::param(source, param).map(|def| fhir_index::references(def, content)).unwrap_or_default()
}

/// Largest number of resources a single `_revinclude` adds to a page.
const MAX_REVINCLUDED: u64 = 1000;

/// Largest number of resources `_include` adds to a page, over every round of `:iterate`.
const MAX_INCLUDED: usize = 1000;

/// Canonical URL of the custom `end` SearchParameter.
pub const END_SEARCH_PARAMETER: &str = "https://calsync.example.org/fhir/SearchParameter/Slot-end";

/// A parsed search: the recognised parameters (kept for links) and what they ask.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The resource type searched.
    resource_type: String,
    kept: Vec<(String, String)>,
    /// `_elements`: top-level elements to keep in matches.
    elements: Option<Vec<String>>,
    sort: SortBy,
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

async fn run(store: &Store, t: &str, parsed: &SearchRequest) -> Result<Page<StoredText>, UseCaseError> {
    Ok(if t == "Slot" {
        store.search_slot_texts(&parsed.slot, parsed.direction, parsed.cursor.as_ref(), parsed.count).await?
    } else {
        let order = (parsed.sort, parsed.direction);
        let page = store.search_resources(t, &parsed.resource, order, parsed.cursor.as_ref(), parsed.count).await?;
        let resources = page.resources.into_iter().map(StoredText::from).collect();
        Page { resources, total: page.total, next: page.next }
    })
}

/// `Type/id` of the live resources of type `t` matching every one of `filters`, in id order, at
/// most `at_most` (read 500 a page).
pub(crate) async fn references_of(
    store: &Store,
    t: &str,
    filters: Vec<IndexFilter>,
    at_most: usize,
) -> Outcome<Vec<String>> {
    let search = ResourceSearch { index: filters, ..Default::default() };
    let mut found = Vec::new();
    let mut cursor: Option<Cursor> = None;
    loop {
        let page = at_most.saturating_sub(found.len()).min(MAX_COUNT as usize) as u64;
        let read =
            store.search_resources(t, &search, (SortBy::Id, Direction::Ascending), cursor.as_ref(), page).await?;
        found.extend(read.resources.iter().map(|r| format!("{t}/{}", r.id)));
        match read.next {
            Some(next) if found.len() < at_most => cursor = Some(next),
            _ => return Ok(found),
        }
    }
}

/// `request` narrowed to what the person of `c` may read, or refused when nothing of its type is
/// theirs to search.
fn narrow(request: &SearchRequest, c: &Compartment) -> Outcome<SearchRequest> {
    let t = request.resource_type.as_str();
    let mut narrowed = request.clone();
    match UseCases::narrowing(c, t) {
        None => return Err(UseCaseError::Forbidden(format!("a person's token may not search {t}"))),
        Some(Narrowing::None) => {}
        Some(Narrowing::Ids(ids)) => narrowed.resource.ids.push(ids),
        Some(Narrowing::Index(filter)) => narrowed.resource.index.push(filter),
        Some(Narrowing::Participants(people)) => {
            narrowed.slot.participants = Some(Participants(people.clone()));
            narrowed.resource.participants = Some(Participants(people));
        }
    }
    Ok(narrowed)
}

/// Resources of type `t` matching `criteria` (a query string such as `If-None-Exist` carries),
/// at most `limit`. Criteria are read strictly: ignoring one would match too much.
pub(crate) async fn matching(
    store: &Store,
    t: &str,
    criteria: &str,
    limit: u64,
    now: DateTime<Utc>,
    within: Option<&Compartment>,
) -> Outcome<Page> {
    let pairs = query_pairs(criteria, false)?;
    if pairs.is_empty() {
        return Err(UseCaseError::Invalid("conditional criteria are empty".into()));
    }
    let mut parsed = parse(t, &pairs, true, now)?;
    if let Some(c) = within {
        parsed = narrow(&parsed, c)?;
    }
    parsed.count = limit;
    let page = run(store, t, &parsed).await?;
    let resources = page.resources.into_iter().map(StoredText::parse).collect::<Result<_, _>>()?;
    Ok(Page { resources, total: page.total, next: page.next })
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

/// Resources named by `_include` (following `:iterate` through what was included, three rounds
/// at most, [`MAX_INCLUDED`] in all, read with one query per type and round) and `_revinclude`,
/// each once, none of the matches repeated; and what was left out at a bound.
/// `ids` are the matches' (type, id); `matches` their content, needed only for `_include`.
async fn includes(
    store: &Store,
    parsed: &SearchRequest,
    ids: &[(String, String)],
    matches: &[StoredResource],
) -> Result<(Vec<StoredResource>, Vec<String>), UseCaseError> {
    let mut warnings = Vec::new();
    if parsed.includes.is_empty() && parsed.revincludes.is_empty() {
        return Ok((Vec::new(), warnings));
    }
    let mut seen: std::collections::HashSet<(String, String)> = ids.iter().cloned().collect();
    let mut out: Vec<StoredResource> = Vec::new();
    let mut frontier: Vec<StoredResource> = matches.to_vec();
    let (mut included, mut cut) = (0, false);
    for round in 0..3 {
        // What this round names, by type, each once.
        let mut named: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for (source, param, iterate) in &parsed.includes {
            if round > 0 && !iterate {
                continue;
            }
            for r in frontier.iter().filter(|r| &r.resource_type == source) {
                for key in referenced(source, param, &r.content) {
                    let Some((t, id)) = key.split_once('/') else { continue };
                    if !crate::resources::is_kept(t) || !calsync_store::is_valid_id(id) {
                        continue;
                    }
                    if seen.insert((t.to_string(), id.to_string())) {
                        if included == MAX_INCLUDED {
                            cut = true;
                            continue;
                        }
                        included += 1;
                        named.entry(t.to_string()).or_default().push(id.to_string());
                    }
                }
            }
        }
        let mut next = Vec::new();
        for (t, ids) in named {
            next.extend(read_all(store, &t, ids).await?);
        }
        if next.is_empty() {
            break;
        }
        out.extend(next.iter().cloned());
        frontier = next;
    }
    if cut {
        warnings.push(format!("_include stopped at {MAX_INCLUDED} resources, the most a page includes"));
    }
    for (source, param) in &parsed.revincludes {
        let targets: Vec<String> = ids.iter().map(|(t, id)| format!("{t}/{id}")).collect();
        if targets.is_empty() {
            continue;
        }
        let found = if (source.as_str(), param.as_str()) == SLOT_SCHEDULE {
            let search = SlotSearch { schedules: vec![AnyOf { values: targets, negate: false }], ..Default::default() };
            store.search_slots(&search, Direction::Ascending, None, MAX_REVINCLUDED).await?
        } else {
            let search = ResourceSearch { index: vec![IndexFilter::any_exact(param, targets)], ..Default::default() };
            let order = (SortBy::Id, Direction::Ascending);
            store.search_resources(source, &search, order, None, MAX_REVINCLUDED).await?
        };
        if found.next.is_some() {
            warnings.push(format!(
                "_revinclude={source}:{param} stopped at {MAX_REVINCLUDED} resources, the most one adds to a page"
            ));
        }
        for r in found.resources {
            if seen.insert((r.resource_type.clone(), r.id.clone())) {
                out.push(r);
            }
        }
    }
    Ok((out, warnings))
}

/// The resources of type `t` with `ids` that exist, in one query.
async fn read_all(store: &Store, t: &str, ids: Vec<String>) -> Result<Vec<StoredResource>, UseCaseError> {
    let n = ids.len() as u64;
    let ids = vec![AnyOf { values: ids, negate: false }];
    let page = if t == "Slot" {
        store.search_slots(&SlotSearch { ids, ..Default::default() }, Direction::Ascending, None, n).await?
    } else {
        let order = (SortBy::Id, Direction::Ascending);
        store.search_resources(t, &ResourceSearch { ids, ..Default::default() }, order, None, n).await?
    };
    Ok(page.resources)
}

/// The opaque `_cursor` of a page: hex of its sort key.
fn cursor_token(c: &Cursor) -> String {
    let raw = match c {
        Cursor::Slot(start, id) => format!("s{start}|{id}"),
        Cursor::Id(id) => format!("i{id}"),
        Cursor::Updated(at, id) => format!("u{at}|{id}"),
    };
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn parse_cursor(token: &str) -> Result<Cursor, UseCaseError> {
    let bad = || UseCaseError::Invalid("_cursor is not one this server issued".into());
    if !token.len().is_multiple_of(2) || token.len() > 512 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
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
        Some(("u", rest)) => {
            let (at, id) = rest.split_once('|').ok_or_else(bad)?;
            Ok(Cursor::Updated(at.parse().map_err(|_| bad())?, id.to_string()))
        }
        _ => Err(bad()),
    }
}

impl SearchRequest {
    /// Reads a search of resources of type `t` from its parameters (`name`, `value`, decoded),
    /// with the caller's `now` for `ap` (approximately) dates. Parameters calsync does not know
    /// are ignored and left out of [`SearchRequest::kept`], or refused when `strict` (`Prefer:
    /// handling=strict`): a search never silently answers zero because of a parameter it did not
    /// understand.
    pub fn parse(t: &str, pairs: &[(String, String)], strict: bool, now: DateTime<Utc>) -> Outcome<SearchRequest> {
        let t = crate::resources::kept_type(t)?;
        parse(t, pairs, strict, now)
    }

    /// The resource type searched.
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The parameters understood, as given: what links to other pages repeat.
    pub fn kept(&self) -> &[(String, String)] {
        &self.kept
    }

    /// The page size.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `_cursor` of the page asked for, if not the first.
    pub fn cursor(&self) -> Option<String> {
        self.cursor.as_ref().map(cursor_token)
    }
}

fn parse(t: &str, pairs: &[(String, String)], strict: bool, now: DateTime<Utc>) -> Outcome<SearchRequest> {
    let mut p = SearchRequest {
        resource_type: t.to_string(),
        kept: Vec::new(),
        elements: None,
        sort: SortBy::Id,
        direction: Direction::Ascending,
        summary_count: false,
        includes: Vec::new(),
        revincludes: Vec::new(),
        slot: SlotSearch::default(),
        resource: ResourceSearch::default(),
        count: DEFAULT_COUNT,
        cursor: None,
    };
    if pairs.len() > MAX_PARAMETERS {
        return Err(UseCaseError::Invalid(format!(
            "{} search parameters: a search takes at most {MAX_PARAMETERS}",
            pairs.len()
        )));
    }
    let contains: usize =
        pairs.iter().filter(|(k, _)| k.ends_with(":contains")).map(|(_, v)| v.matches(',').count() + 1).sum();
    if contains > MAX_CONTAINS {
        return Err(UseCaseError::Invalid(format!(
            "{contains} :contains terms: a search takes at most {MAX_CONTAINS} (each reads every value of its parameter)"
        )));
    }
    for (key, value) in pairs {
        if value.matches(',').count() >= MAX_VALUES {
            return Err(UseCaseError::Invalid(format!("{key} takes at most {MAX_VALUES} values")));
        }
        if key.contains('\0') || value.contains('\0') {
            return Err(UseCaseError::Invalid(format!("search parameter {key:?} contains a NUL character")));
        }
        let (name, modifier) = match key.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (key.as_str(), None),
        };
        let bad_modifier =
            || UseCaseError::Invalid(format!("modifier :{} is not supported on {name}", modifier.unwrap_or("")));
        match (name, t) {
            ("_count", _) => {
                let n: u64 =
                    value.parse().map_err(|_| UseCaseError::Invalid(format!("_count {value:?} is not a number")))?;
                if n > MAX_COUNT && strict {
                    return Err(UseCaseError::Invalid(format!("_count {n} is above the maximum of {MAX_COUNT}")));
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
                let (descending, key) = match value.strip_prefix('-') {
                    Some(k) => (true, k),
                    None => (false, value.as_str()),
                };
                p.sort = match (key, t) {
                    ("start", "Slot") => SortBy::Id,
                    ("_id", t) if t != "Slot" => SortBy::Id,
                    ("_lastUpdated", t) if t != "Slot" => SortBy::LastUpdated,
                    _ => {
                        let keys = if t == "Slot" { "start" } else { "_id or _lastUpdated" };
                        return Err(UseCaseError::Invalid(format!(
                            "_sort={value} is not supported on {t}: use {keys}, with - for descending"
                        )));
                    }
                };
                p.direction = if descending { Direction::Descending } else { Direction::Ascending };
                p.kept.push(("_sort".into(), value.clone()));
            }
            ("_lastUpdated", _) => {
                if modifier.is_some() {
                    return Err(bad_modifier());
                }
                let bound = date_bound(value, now).map_err(|m| UseCaseError::Invalid(format!("_lastUpdated: {m}")))?;
                p.resource.updated.push(bound);
                p.slot.updated.push(bound);
                p.kept.push((key.clone(), value.clone()));
            }
            ("_include", _) => {
                let iterate = match modifier {
                    None => false,
                    Some("iterate") => true,
                    _ => return Err(bad_modifier()),
                };
                match value.split(':').collect::<Vec<_>>().as_slice() {
                    [source, param] if includes_from(source).contains(param) => {
                        if !once(&mut p.includes, (source.to_string(), param.to_string(), iterate)) {
                            continue;
                        }
                        p.kept.push((key.clone(), value.clone()));
                    }
                    _ if strict => return Err(UseCaseError::Invalid(format!("_include={value} is not supported"))),
                    _ => {}
                }
            }
            ("_revinclude", _) => match value.split(':').collect::<Vec<_>>().as_slice() {
                [source, param] if revincludes_onto(t).contains(&(*source, *param)) => {
                    if !once(&mut p.revincludes, (source.to_string(), param.to_string())) {
                        continue;
                    }
                    p.kept.push((key.clone(), value.clone()));
                }
                _ if strict => {
                    return Err(UseCaseError::Invalid(format!("_revinclude={value} is not supported on {t}")));
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
                let bound = date_bound(value, now).map_err(|m| UseCaseError::Invalid(format!("{name}: {m}")))?;
                if name == "start" {
                    p.slot.start.push(bound)
                } else {
                    p.slot.end.push(bound)
                }
                p.kept.push((key.clone(), value.clone()));
            }
            (name, t) if fhir_index::param(t, name).is_some_and(|d| d.kind == ParamKind::Date) => {
                if modifier.is_some() {
                    return Err(bad_modifier());
                }
                let any = split(value)
                    .iter()
                    .map(|v| date_value(v, now).map_err(|m| UseCaseError::Invalid(format!("{name}: {m}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                if any.is_empty() {
                    return Err(UseCaseError::Invalid(format!("{name} needs a value")));
                }
                p.resource.dates.push(DateFilter { param: name.to_string(), any });
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
                return Err(UseCaseError::Invalid(format!("search parameter {key:?} is not supported on {t}")));
            }
            _ => {}
        }
    }
    Ok(p)
}

/// A token, reference or string parameter as an index filter.
fn index_filter(def: &fhir_index::ParamDef, modifier: Option<&str>, value: &str) -> Result<IndexFilter, UseCaseError> {
    let name = def.name;
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => return Err(UseCaseError::Invalid(format!("{name}:missing takes true or false"))),
        };
        return Ok(IndexFilter::Missing { param: name.to_string(), missing });
    }
    let bad_modifier =
        || UseCaseError::Invalid(format!("modifier :{} is not supported on {name}", modifier.unwrap_or("")));
    let values = split(value);
    if values.is_empty() {
        return Err(UseCaseError::Invalid(format!("{name} needs a value")));
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
                            return Err(UseCaseError::Invalid(format!(
                                "{name}={v}: give a reference as Type/id (or use {name}:Type=id)"
                            )));
                        }
                    };
                    Ok(IndexTerm { system: None, value: Some(key), how: Match::Exact })
                })
                .collect::<Result<_, _>>()?;
            (terms, false)
        }
        ParamKind::Date => unreachable!("date parameters are parsed as DateFilter"),
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

/// Adds `item` to `list` unless it is there already (a repeated `_include` adds nothing, and no
/// work); true when it was added.
fn once<T: PartialEq>(list: &mut Vec<T>, item: T) -> bool {
    let new = !list.contains(&item);
    if new {
        list.push(item);
    }
    new
}

fn split(value: &str) -> Vec<String> {
    value.split(',').map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect()
}

/// `Schedule/1`, `1` or `http://host/fhir/Schedule/1` → `Schedule/1`.
fn reference(kind: &str, v: &str) -> Result<String, UseCaseError> {
    let parts: Vec<&str> = v.trim_end_matches('/').split('/').collect();
    match parts.as_slice() {
        [id] => Ok(format!("{kind}/{id}")),
        [.., k, id] if *k == kind => Ok(format!("{kind}/{id}")),
        _ => Err(UseCaseError::Invalid(format!("{v:?} is not a reference to a {kind}"))),
    }
}

/// A date search value: its prefix and the range of time it stands for (the whole range of its
/// precision: a year, month, day, minute, second), as UTC milliseconds `[lo, hi)`. For `ap` the
/// range is widened by 10% of its distance to now (at least its own length).
pub fn date_value(value: &str, now: DateTime<Utc>) -> Result<(DatePrefix, i64, i64), String> {
    let (prefix, rest) = match value.get(..2) {
        Some("eq") => (DatePrefix::Eq, &value[2..]),
        Some("ne") => (DatePrefix::Ne, &value[2..]),
        Some("gt") => (DatePrefix::Gt, &value[2..]),
        Some("lt") => (DatePrefix::Lt, &value[2..]),
        Some("ge") => (DatePrefix::Ge, &value[2..]),
        Some("le") => (DatePrefix::Le, &value[2..]),
        Some("sa") => (DatePrefix::Sa, &value[2..]),
        Some("eb") => (DatePrefix::Eb, &value[2..]),
        Some("ap") => (DatePrefix::Ap, &value[2..]),
        _ => (DatePrefix::Eq, value),
    };
    let (lo, hi) = fhir_index::precision_range(rest)
        .ok_or_else(|| format!("{value:?} is not a FHIR date, dateTime or instant"))?;
    let (lo, hi) = (lo.timestamp_millis(), hi.timestamp_millis());
    if prefix == DatePrefix::Ap {
        let slack = ((now.timestamp_millis() - lo).abs() / 10).max(hi - lo);
        return Ok((prefix, lo - slack, hi + slack));
    }
    Ok((prefix, lo, hi))
}

/// A date search value as a range of UTC milliseconds over a point in time (a Slot's start or
/// end, a last update).
pub fn date_bound(value: &str, now: DateTime<Utc>) -> Result<Bound, String> {
    let (prefix, lo, hi) = date_value(value, now)?;
    let (lo, hi, negate) = match prefix {
        DatePrefix::Eq | DatePrefix::Ap => (Some(lo), Some(hi), false),
        DatePrefix::Ne => (Some(lo), Some(hi), true),
        DatePrefix::Gt | DatePrefix::Sa => (Some(hi), None, false),
        DatePrefix::Lt | DatePrefix::Eb => (None, Some(lo), false),
        DatePrefix::Ge => (Some(lo), None, false),
        DatePrefix::Le => (None, Some(hi), false),
    };
    Ok(Bound { lo, hi, negate })
}

/// Splits a query string into percent-decoded name/value pairs. In a URL's query a `+` is a
/// plus sign (as in a `+01:00` zone offset); in a form body (`form`) it stands for a space.
pub fn query_pairs(query: &str, form: bool) -> Result<Vec<(String, String)>, UseCaseError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k, form)?, decode(v, form)?))
        })
        .collect()
}

fn decode(s: &str, form: bool) -> Result<String, UseCaseError> {
    let bad = || UseCaseError::Invalid(format!("{s:?} is not valid percent-encoded UTF-8"));
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

#[cfg(test)]
mod tests;

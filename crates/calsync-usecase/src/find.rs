//! `$find` (IHE ITI-115 Find Potential Appointments) and `$find-mutual`: times when a provider
//! Slot is free and every participant is, from the store, through the matching core.
//!
//! The window's free Slots are read first; the 14 days after it only when nothing in it fits
//! (they serve the `after-window` alternatives alone). Participants' busy time comes from their
//! derived Schedules, three queries for any number of them.

use std::collections::BTreeSet;

use calsync_core::{
    Attendance, Interval, MutualQuery, Preference, ProviderSlot, SearchOutcome, SlotBook, SlotStatus, find_mutual,
};
use calsync_fhir::availability::is_participant_schedule;
use calsync_fhir::{AppointmentParticipant, ProviderData, ScheduleInfo};
use calsync_store::Store;
use calsync_store::search::{Cursor, Direction, IndexFilter, IndexTerm, Match, ResourceSearch, SortBy};
use chrono::TimeDelta;
use chrono::{DateTime, NaiveDate, Utc};

use calsync_fhir::audit::Action;

use crate::access::Interaction;
use crate::audit::Done;
use crate::compartment::Reach;
use crate::search::references_of;
use crate::{Context, Outcome, UseCaseError, UseCases, participants};

/// Largest search window.
pub const MAX_WINDOW_DAYS: i64 = 92;
/// Largest number of options; more asked for are cut to it.
pub const MAX_COUNT: usize = 100;
/// Options when the caller names no number.
pub const DEFAULT_COUNT: usize = 10;
/// The options a search ranks at most, over all its pages (`offset` + `limit`).
pub const MAX_OPTIONS: usize = 500;
/// Participants of one search at most.
pub const MAX_PARTICIPANTS: usize = 20;
/// Shortest and longest appointment, in minutes.
pub const DURATION_MINUTES: std::ops::RangeInclusive<i64> = 5..=480;
/// How far after the window the `after-window` alternatives are looked for.
const LOOKAHEAD: TimeDelta = TimeDelta::days(14);

/// A token as FHIR search writes it: `system|code`, or a code in any system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The code system, if named.
    pub system: Option<String>,
    /// The code.
    pub code: String,
}

impl Token {
    /// `system|code` or `code`.
    pub fn parse(text: &str) -> Token {
        match text.split_once('|') {
            Some((s, c)) => Token { system: Some(s.into()), code: c.into() },
            None => Token { system: None, code: text.into() },
        }
    }
}

/// Which provider Schedules a search may use: each list given narrows them (none: every
/// provider Schedule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Providers {
    /// `Practitioner/…` or `PractitionerRole/…` among a Schedule's actors.
    pub practitioners: Vec<String>,
    /// `Location/…` among a Schedule's actors.
    pub locations: Vec<String>,
    /// A Schedule's specialty.
    pub specialties: Vec<Token>,
    /// A Schedule's service type (IHE's `visit-type` too).
    pub service_types: Vec<Token>,
    /// `Organization/…` managing a Schedule's Location, PractitionerRole or HealthcareService.
    pub organizations: Vec<String>,
    /// Texts each found in the name or address of a Schedule's Location.
    pub places: Vec<String>,
    /// Only these Schedules (ids).
    pub schedules: Vec<String>,
}

impl Providers {
    /// True when the search names no provider: every provider Schedule counts.
    fn is_any(&self) -> bool {
        self == &Providers::default()
    }

    /// The index filters on Schedules that the actors and tokens make.
    fn schedule_filters(&self) -> Vec<IndexFilter> {
        let mut filters = Vec::new();
        if !self.locations.is_empty() {
            filters.push(IndexFilter::any_exact("actor", self.locations.clone()));
        }
        for (param, tokens) in [("specialty", &self.specialties), ("service-type", &self.service_types)] {
            if tokens.is_empty() {
                continue;
            }
            let terms = tokens
                .iter()
                .map(|t| IndexTerm { system: t.system.clone(), value: Some(t.code.clone()), how: Match::Exact })
                .collect();
            filters.push(IndexFilter::Matches { param: param.into(), terms, negate: false });
        }
        filters
    }
}

/// One end of a search window: an instant, or whole days read in the search's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// An instant.
    Instant(DateTime<Utc>),
    /// From the first of these days through the last, in the search's zone: a date is that day,
    /// a month (`2027-03`) its days.
    Days(NaiveDate, NaiveDate),
}

/// When an appointment may be: from `start` to `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// From (days: from the first one's start).
    pub start: Edge,
    /// To (days: through the last one's end).
    pub end: Edge,
}

impl Window {
    /// The instants the window spans when its days are read in `zone`: each day from its local
    /// midnight to the next (23 or 25 hours across a DST change).
    pub fn in_zone(&self, zone: chrono_tz::Tz) -> Interval {
        let start = match self.start {
            Edge::Instant(t) => t,
            Edge::Days(first, _) => calsync_core::zone::local_day(zone, first).start,
        };
        let end = match self.end {
            Edge::Instant(t) => t,
            Edge::Days(_, last) => calsync_core::zone::local_day(zone, last).end,
        };
        Interval::new(start, end)
    }
}

impl From<Interval> for Window {
    fn from(i: Interval) -> Self {
        Window { start: Edge::Instant(i.start), end: Edge::Instant(i.end) }
    }
}

/// A search for times: `$find` names at most the patient, `$find-mutual` every participant.
#[derive(Debug, Clone, PartialEq)]
pub struct FindQuery {
    /// When the appointment may be.
    pub window: Window,
    /// How long it is (none: the length of the shortest free Slot).
    pub duration: Option<TimeDelta>,
    /// Patients and RelatedPersons (`Patient/1`), each required or not, in the order asked.
    pub participants: Vec<(String, bool)>,
    /// Which providers.
    pub providers: Providers,
    /// Ranking preferences (mornings, weekdays, …).
    pub preferences: Vec<Preference>,
    /// Options on distinct days.
    pub spread: bool,
    /// Say who blocks each rejected time.
    pub explain: bool,
    /// How many options (cut to 1 to [`MAX_COUNT`]).
    pub limit: usize,
    /// How many of the best options to pass over: the page after the first (at most
    /// [`MAX_OPTIONS`] with `limit`).
    pub offset: usize,
    /// The zone of the window's days, of preferences, and of the times shown (none: days and
    /// preferences in the first participant's zone, times in UTC).
    pub zone: Option<chrono_tz::Tz>,
    /// Give each option of the page an id and keep it for a hold's time, so that `$hold` and
    /// `$book` take it back by reference (IHE `$find`: ITI-116 and ITI-117 name a proposed
    /// Appointment by its id).
    pub remember: bool,
    /// Count every option (up to [`MAX_OPTIONS`]) so that each page says how many there are (IHE
    /// `$find`: its Bundle has a `total`), not only the page that ends them.
    pub count_all: bool,
}

impl FindQuery {
    /// A search over `window` with the defaults: any provider, no participant, ten options.
    pub fn new(window: impl Into<Window>) -> Self {
        FindQuery {
            window: window.into(),
            duration: None,
            participants: Vec::new(),
            providers: Providers::default(),
            preferences: Vec::new(),
            spread: false,
            explain: false,
            limit: DEFAULT_COUNT,
            offset: 0,
            zone: None,
            remember: false,
            count_all: false,
        }
    }

    /// What no search may ask: an empty or too long window (read in `zone`), a duration out
    /// of range, too many participants or one named twice, too many options.
    fn check(&self, zone: chrono_tz::Tz) -> Outcome<Interval> {
        let window = self.window.in_zone(zone);
        if window.is_empty() {
            return Err(UseCaseError::Invalid("end must be after start".into()));
        }
        if window.end - window.start > TimeDelta::days(MAX_WINDOW_DAYS) {
            return Err(UseCaseError::Invalid(format!("the window may span at most {MAX_WINDOW_DAYS} days")));
        }
        if self.participants.len() > MAX_PARTICIPANTS {
            return Err(UseCaseError::Invalid(format!("a search takes at most {MAX_PARTICIPANTS} participants")));
        }
        if self.offset + self.limit.clamp(1, MAX_COUNT) > MAX_OPTIONS {
            return Err(UseCaseError::Invalid(format!(
                "the options of a search stop at the {MAX_OPTIONS}th: ask for an earlier page"
            )));
        }
        if let Some(d) = self.duration
            && !DURATION_MINUTES.contains(&d.num_minutes())
        {
            return Err(UseCaseError::Invalid(format!(
                "duration must be {} to {} minutes",
                DURATION_MINUTES.start(),
                DURATION_MINUTES.end()
            )));
        }
        for (n, (reference, _)) in self.participants.iter().enumerate() {
            if self.participants[..n].iter().any(|(r, _)| r == reference) {
                return Err(UseCaseError::Invalid(format!("{reference} is named twice")));
            }
        }
        if self.providers.places.iter().any(|p| p.trim().is_empty()) {
            return Err(UseCaseError::Invalid("location-string is empty".into()));
        }
        Ok(window)
    }
}

/// The answer to a [`FindQuery`]: the matching core's outcome (options, explanations,
/// alternatives) and what it takes to show them.
#[derive(Debug, Clone)]
pub struct Found {
    /// Options, rejections, why nothing fits, alternatives.
    pub outcome: SearchOutcome,
    /// The provider Schedules searched, their actors and Locations' names.
    pub providers: ProviderData,
    /// The participants as each option names them.
    pub people: Vec<AppointmentParticipant>,
    /// The zone the caller named: times are shown in it.
    pub zone: Option<chrono_tz::Tz>,
    /// How many better options this page passed over.
    pub offset: usize,
    /// True when there are options after this page.
    pub more: bool,
    /// The ids of this page's options when the query asked to remember them, in order.
    pub ids: Vec<String>,
    /// How many options there are in all (at most [`MAX_OPTIONS`]), when the query asked to
    /// count them.
    pub total: Option<usize>,
}

impl Found {
    /// Option `n` (from 0, best first) as the proposed Appointment that [`UseCases::hold`] and
    /// [`UseCases::book`] take.
    pub fn proposal(&self, n: usize) -> Option<serde_json::Value> {
        let m = self.outcome.slots.get(n)?;
        let mut proposal: serde_json::Value =
            serde_json::from_str(&calsync_fhir::proposed_appointment(m, &self.people, &self.providers, self.zone))
                .ok()?;
        if let Some(id) = self.ids.get(n) {
            proposal["id"] = serde_json::json!(id);
        }
        Some(proposal)
    }
}

impl UseCases {
    /// Finds times when a provider Slot is free and every required participant is. The window's
    /// days are read in the named zone, else in the first participant's, else in UTC.
    pub async fn find(&self, cx: &Context, query: &FindQuery) -> Outcome<Found> {
        let reach = self.authorize(cx, "Slot", Interaction::Search).await?;
        Self::permit_participants(&reach, query.participants.iter().map(|(r, _)| r.as_str()))?;
        let store = &self.store;
        // The window as far as it can be known before the participants' zone: a zone moves it
        // by at most 14 hours, inside the day their busy time is read beyond it.
        let provisional = query.check(query.zone.unwrap_or(chrono_tz::UTC))?;
        let wanted: Vec<(String, Attendance)> = query
            .participants
            .iter()
            .map(|(r, required)| (r.clone(), if *required { Attendance::Required } else { Attendance::Optional }))
            .collect();
        let default_zone = query.zone.unwrap_or(chrono_tz::UTC);
        let horizon =
            Interval::new(provisional.start - TimeDelta::days(1), provisional.end + LOOKAHEAD + TimeDelta::days(1));
        let participants = participants::load_all(store, &wanted, horizon, default_zone).await?;
        let zone = query.zone.or_else(|| participants.first().map(|p| p.zone)).unwrap_or(chrono_tz::UTC);
        let window = query.check(zone)?;
        let providers = provider_schedules(store, query).await?;
        // Only the chosen Schedules' free Slots are read, unless the request names no provider.
        let chosen: Vec<String> = providers.schedules.keys().cloned().collect();
        let chosen = (!query.providers.is_any()).then_some(chosen.as_slice());
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
        // The window's Slots first; the 14 days after it only when nothing in it fits (they
        // serve the `after-window` alternatives alone). Over a million Slots that is 24,000 rows
        // read instead of 424,000 (docs/benchmarks-log.md, "`Appointment/$find` naming no provider").
        let slots = provider_slots(store.free_slots(chosen, window.start, window.end).await?);
        // Without a duration asked for: the shortest free Slot in the window (or, with none
        // there, in the days after it, for the alternatives).
        let shortest = |slots: &[ProviderSlot]| slots.iter().map(|s| s.interval.end - s.interval.start).min();
        let duration = query.duration.or_else(|| shortest(&slots));
        let count = query.limit.clamp(1, MAX_COUNT);
        let mut mutual = MutualQuery::new(window, duration.unwrap_or(TimeDelta::minutes(30)), cx.now);
        // One more than this page: whether there is a next one (or all, to count them).
        mutual.limit = if query.count_all { MAX_OPTIONS } else { query.offset + count + 1 };
        mutual.spread = query.spread;
        mutual.preferences = query.preferences.clone();
        mutual.explain = query.explain;
        mutual.lookahead = TimeDelta::zero();
        mutual.zone = zone;
        let searched = |slots: Vec<ProviderSlot>, mutual: &MutualQuery| {
            find_mutual(&SlotBook::new(slots), &participants, mutual).map_err(|e| UseCaseError::Invalid(e.to_string()))
        };
        let mut outcome = searched(slots, &mutual)?;
        if let Reach::Person(c) = &reach {
            // Who cannot come is said; when and why only to themselves (or whoever acts for them).
            for rejection in &mut outcome.explanation.rejected {
                for blocked in rejection.blocked_by.iter_mut().filter(|b| !c.acts_for(&b.participant)) {
                    blocked.blockers.clear();
                }
            }
        }
        let more = outcome.slots.len() > query.offset + count;
        let total = query.count_all.then_some(outcome.slots.len());
        outcome.slots = outcome.slots.into_iter().skip(query.offset).take(count).collect();
        outcome.explanation.alternatives.without_optional.truncate(count);
        if outcome.slots.is_empty() && query.offset == 0 {
            // Nothing fits in the window: the nearest times in the days after it, searched as a
            // window of their own (what the matching core's `lookahead` does over one book).
            let after = Interval::new(window.end, window.end + LOOKAHEAD);
            let later = provider_slots(store.free_slots(chosen, after.start, after.end).await?);
            let duration = duration.or_else(|| shortest(&later)).unwrap_or(mutual.duration);
            let after_query = MutualQuery { window: after, duration, explain: false, limit: count, ..mutual.clone() };
            outcome.explanation.alternatives.after_window = searched(later, &after_query)?.slots;
        }
        let people = query
            .participants
            .iter()
            .map(|(r, required)| AppointmentParticipant {
                reference: r.clone(),
                display: r.clone(),
                required: *required,
            })
            .collect();
        let (zone, offset) = (query.zone, query.offset);
        let mut found = Found { outcome, providers, people, zone, offset, more, ids: Vec::new(), total };
        if query.remember {
            found.ids = (0..found.outcome.slots.len()).map(|_| uuid::Uuid::new_v4().to_string()).collect();
            let kept: Vec<(String, serde_json::Value)> =
                (0..found.ids.len()).filter_map(|n| Some((found.ids[n].clone(), found.proposal(n)?))).collect();
            store.remember_proposals(&kept, cx.now + self.hold, cx.now).await?;
        }
        if !query.participants.is_empty() {
            let patients = query.participants.iter().map(|(r, _)| r.clone()).collect();
            let subtype = if query.remember { "$find" } else { "$find-mutual" };
            self.audit(cx, Done { action: Action::Execute, subtype, patients, what: Vec::new() });
        }
        Ok(found)
    }
}

/// Provider Schedules the request may use, with their actors.
async fn provider_schedules(store: &Store, request: &FindQuery) -> Outcome<ProviderData> {
    let mut search = ResourceSearch { index: request.providers.schedule_filters(), ..Default::default() };
    // A practitioner is a Schedule's actor as themselves or through a role of theirs (IHE's
    // `practitioner` names the Practitioner; Schedules often name the PractitionerRole).
    if !request.providers.practitioners.is_empty() {
        let mut actors = request.providers.practitioners.clone();
        let people: Vec<String> = actors.iter().filter(|r| r.starts_with("Practitioner/")).cloned().collect();
        if !people.is_empty() {
            let by = IndexFilter::any_exact("practitioner", people);
            actors.extend(references_of(store, "PractitionerRole", vec![by], usize::MAX).await?);
        }
        search.index.push(IndexFilter::any_exact("actor", actors));
    }
    // organization and location-string name actors; each given one narrows the Schedules.
    if !request.providers.organizations.is_empty() {
        let mut actors = Vec::new();
        for t in ["Location", "PractitionerRole", "HealthcareService"] {
            let by = IndexFilter::any_exact("organization", request.providers.organizations.clone());
            actors.extend(references_of(store, t, vec![by], usize::MAX).await?);
        }
        search.index.push(IndexFilter::any_exact("actor", actors));
    }
    for place in &request.providers.places {
        let mut actors = Vec::new();
        for param in ["name", "address"] {
            let text = calsync_fhir::index::normalize(place.trim());
            let term = IndexTerm { system: None, value: Some(text), how: Match::Contains };
            let by = IndexFilter::Matches { param: param.into(), terms: vec![term], negate: false };
            actors.extend(references_of(store, "Location", vec![by], usize::MAX).await?);
        }
        search.index.push(IndexFilter::any_exact("actor", actors));
    }
    if search.index.iter().any(|f| matches!(f, IndexFilter::Matches { terms, .. } if terms.is_empty())) {
        return Ok(ProviderData::default());
    }
    if !request.providers.schedules.is_empty() {
        search.ids.push(calsync_store::search::AnyOf { values: request.providers.schedules.clone(), negate: false });
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

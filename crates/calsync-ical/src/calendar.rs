//! Parsed calendars (time properties only) and their expansion into occurrences.

use std::collections::{HashMap, HashSet};

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use chrono_tz::Tz;

use calsync_core::{BusyInterval, BusyStatus, Instant, Interval};

use crate::budget::{Budget, MAX_BUSY_WINDOWS};
use crate::lexer::{self, Component, Property};
use crate::recur;
use crate::tz::{Zone, ZoneResolver};
use crate::value::{self, Clock, Duration, Moment, PeriodEnd};
use crate::{ParseError, Warning};

/// STATUS of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Confirmed, or no status.
    Confirmed,
    /// STATUS:TENTATIVE.
    Tentative,
    /// STATUS:CANCELLED: takes no time.
    Cancelled,
}

/// One occurrence of an event: its time and how it blocks, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Occurrence {
    /// Start instant.
    pub start: Instant,
    /// End instant (equal to start for an instant event).
    pub end: Instant,
    /// Its status.
    pub status: EventStatus,
    /// TRANSP:TRANSPARENT: shown as free.
    pub transparent: bool,
}

impl Occurrence {
    /// The busy window it causes, if any: cancelled, transparent and zero-length ones cause none.
    pub fn busy(&self) -> Option<BusyInterval> {
        let interval = Interval::new(self.start, self.end);
        if self.transparent || self.status == EventStatus::Cancelled || interval.is_empty() {
            return None;
        }
        let status = if self.status == EventStatus::Tentative { BusyStatus::BusyTentative } else { BusyStatus::Busy };
        Some(BusyInterval { interval, status })
    }
}

/// The end of an event as written.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    None,
    At(Moment),
    After(Duration),
}

/// A VEVENT reduced to what decides busy time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    line: usize,
    start_line: usize,
    uid: Option<String>,
    start: Moment,
    end: End,
    rrules: Vec<Property>,
    rdates: Vec<(Moment, Option<PeriodEnd>, usize)>,
    exdates: Vec<(Moment, usize)>,
    recurrence_id: Option<(Moment, bool)>,
    sequence: i64,
    status: EventStatus,
    transparent: bool,
}

/// A busy period from a VFREEBUSY.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FreeBusy {
    line: usize,
    start: Moment,
    end: PeriodEnd,
    status: BusyStatus,
}

/// A parsed iCalendar stream: events, free/busy periods and zone definitions, times only.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    events: Vec<Event>,
    freebusy: Vec<FreeBusy>,
    vtimezones: Vec<Component>,
    calendar_zone: Option<String>,
}

/// Occurrences over a horizon, and what could not be read exactly.
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    /// Every occurrence overlapping the horizon (free ones too), sorted.
    pub occurrences: Vec<Occurrence>,
    /// Busy periods from VFREEBUSY components overlapping the horizon.
    pub freebusy: Vec<BusyInterval>,
    /// Non-fatal problems, each with its line.
    pub warnings: Vec<Warning>,
}

impl Expansion {
    /// The expansion, if its busy windows over `horizon`, merged as they are stored
    /// ([`BusyInterval::merged`]), are no more than [`MAX_BUSY_WINDOWS`].
    pub(crate) fn within_limits(self, horizon: Interval) -> Result<Self, ParseError> {
        if BusyInterval::merged(&self.busy()).len() > MAX_BUSY_WINDOWS {
            return Err(ParseError::new(
                1,
                format!(
                    "the calendar has more than {MAX_BUSY_WINDOWS} busy windows over the next {} days, after \
                     merging overlapping ones (the limit per calendar)",
                    (horizon.end - horizon.start).num_days()
                ),
            ));
        }
        Ok(self)
    }

    /// The busy windows: event occurrences that block, and VFREEBUSY busy periods, sorted.
    pub fn busy(&self) -> Vec<BusyInterval> {
        let mut out: Vec<BusyInterval> =
            self.occurrences.iter().filter_map(Occurrence::busy).chain(self.freebusy.iter().copied()).collect();
        out.sort();
        out.dedup();
        out
    }
}

impl Calendar {
    /// Parses an iCalendar stream. Fails with the line of the first malformed construct.
    pub fn parse(input: &str) -> Result<Calendar, ParseError> {
        let mut cal = Calendar::default();
        for root in lexer::components(input)? {
            if root.name != "VCALENDAR" {
                return Err(ParseError::new(root.line, format!("expected BEGIN:VCALENDAR, found BEGIN:{}", root.name)));
            }
            if let Some(z) = root.property("X-WR-TIMEZONE") {
                cal.calendar_zone = Some(z.value.trim().to_string());
            }
            for c in root.children {
                match c.name.as_str() {
                    "VEVENT" => cal.events.push(event(&c)?),
                    "VFREEBUSY" => cal.freebusy.extend(freebusy(&c)?),
                    "VTIMEZONE" => cal.vtimezones.push(c),
                    _ => {}
                }
            }
        }
        Ok(cal)
    }

    /// Every occurrence overlapping `horizon`. Dates and floating times are read in `zone`
    /// (floating ones in the calendar's X-WR-TIMEZONE when it names a zone). The work is bounded
    /// by a fresh [`Budget`], and so are the busy windows ([`MAX_BUSY_WINDOWS`]).
    pub fn expand(&self, horizon: Interval, zone: Tz) -> Result<Expansion, ParseError> {
        self.expand_within(horizon, zone, &mut Budget::default())
    }

    /// [`Calendar::expand`], paying from `budget`: several calendars of one person (the objects
    /// of a CalDAV collection) share one.
    pub fn expand_within(&self, horizon: Interval, zone: Tz, budget: &mut Budget) -> Result<Expansion, ParseError> {
        let until = horizon.end.naive_utc() + TimeDelta::days(400);
        let refs: Vec<&Component> = self.vtimezones.iter().collect();
        let mut resolver = ZoneResolver::new(&refs, until, budget)?;
        let mut warnings = Vec::new();
        let floating = match &self.calendar_zone {
            Some(name) => resolver.resolve(name).unwrap_or(Zone::Iana(zone)),
            None => Zone::Iana(zone),
        };
        let mut clocks = Clocks { resolver, floating, all_day: Zone::Iana(zone), warnings: &mut warnings };

        let current = self.current_versions();
        let mut masters: HashMap<&str, usize> = HashMap::new();
        for &i in &current {
            let e = &self.events[i];
            if let (None, Some(uid)) = (&e.recurrence_id, &e.uid) {
                masters.insert(uid.as_str(), i);
            }
        }
        let mut overrides: HashMap<usize, Vec<&Event>> = HashMap::new();
        let mut standalone: Vec<&Event> = Vec::new();
        for &i in &current {
            let e = &self.events[i];
            match (&e.recurrence_id, e.uid.as_deref().and_then(|u| masters.get(u))) {
                (Some(_), Some(&m)) => overrides.entry(m).or_default().push(e),
                (Some(_), None) => standalone.push(e),
                (None, _) => {}
            }
        }

        let mut occurrences = Vec::new();
        for &i in &current {
            let e = &self.events[i];
            if e.recurrence_id.is_some() {
                continue;
            }
            let ovr = overrides.get(&i).map(Vec::as_slice).unwrap_or_default();
            occurrences.extend(instances(e, ovr, horizon, &mut clocks, budget)?);
        }
        for e in standalone {
            let (start, end) = clocks.span(e, &e.start);
            occurrences.push(Occurrence { start, end, status: e.status, transparent: e.transparent });
        }
        occurrences.retain(|o| touches(o.start, o.end, horizon));
        occurrences.sort_by_key(|o| (o.start, o.end));

        let mut fb = Vec::new();
        for f in &self.freebusy {
            let start = clocks.instant(&f.start, f.line);
            let end = match &f.end {
                PeriodEnd::At(m) => clocks.instant(m, f.line),
                PeriodEnd::After(d) => start + TimeDelta::days(d.days) + TimeDelta::seconds(d.seconds),
            };
            let interval = Interval::new(start, end);
            if interval.overlaps(&horizon) {
                fb.push(BusyInterval { interval, status: f.status });
            }
        }
        Expansion { occurrences, freebusy: fb, warnings }.within_limits(horizon)
    }
}

impl Calendar {
    /// Indices of the events that count: of several VEVENTs with one UID (and RECURRENCE-ID),
    /// the one with the highest SEQUENCE, the last one on a tie, as an update replaces its
    /// predecessor. Events without a UID all count.
    fn current_versions(&self) -> Vec<usize> {
        let mut latest: HashMap<(&str, Option<&Moment>), usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, e) in self.events.iter().enumerate() {
            let Some(uid) = e.uid.as_deref() else {
                out.push(i);
                continue;
            };
            let key = (uid, e.recurrence_id.as_ref().map(|(m, _)| m));
            match latest.get(&key) {
                Some(&j) if self.events[j].sequence > e.sequence => {}
                _ => {
                    latest.insert(key, i);
                }
            }
        }
        out.extend(latest.into_values());
        out.sort_unstable();
        out
    }
}

fn touches(start: Instant, end: Instant, horizon: Interval) -> bool {
    if start == end { horizon.contains_instant(start) } else { start < horizon.end && end > horizon.start }
}

/// Places written times on zones, remembering what it had to guess.
struct Clocks<'w> {
    resolver: ZoneResolver,
    floating: Zone,
    all_day: Zone,
    warnings: &'w mut Vec<Warning>,
}

impl Clocks<'_> {
    fn zone(&mut self, m: &Moment, line: usize) -> Zone {
        match m {
            Moment::Date(_) => self.all_day.clone(),
            Moment::DateTime(_, Clock::Utc) => Zone::Iana(chrono_tz::UTC),
            Moment::DateTime(_, Clock::Floating) => self.floating.clone(),
            Moment::DateTime(_, Clock::Zone(id)) => self.resolver.resolve(id).unwrap_or_else(|| {
                self.warnings
                    .push(Warning { line, message: format!("unknown TZID {id:?}: read in the participant's zone") });
                self.floating.clone()
            }),
        }
    }

    fn instant(&mut self, m: &Moment, line: usize) -> Instant {
        self.zone(m, line).to_utc(m.local())
    }

    /// Start and end instants of an event placed at its own DTSTART.
    fn span(&mut self, e: &Event, start: &Moment) -> (Instant, Instant) {
        let zone = self.zone(start, e.start_line);
        self.length(e).start_and_end(&zone, start.local())
    }

    fn length(&mut self, e: &Event) -> Length {
        match &e.end {
            End::At(end) => {
                let same_clock = match (&e.start, end) {
                    (Moment::Date(_), Moment::Date(_)) => true,
                    (Moment::DateTime(_, a), Moment::DateTime(_, b)) => a == b,
                    _ => false,
                };
                if same_clock {
                    Length::Wall(end.local() - e.start.local())
                } else {
                    Length::Exact(self.instant(end, e.line) - self.instant(&e.start, e.start_line))
                }
            }
            End::After(d) => Length::Duration(*d),
            End::None if e.start.is_date() => Length::Wall(TimeDelta::days(1)),
            End::None => Length::Wall(TimeDelta::zero()),
        }
    }
}

/// How long each occurrence lasts.
#[derive(Debug, Clone, Copy)]
enum Length {
    /// The same wall-clock span every time (DTEND on the same clock as DTSTART).
    Wall(TimeDelta),
    /// The same elapsed time every time (DTEND on another clock).
    Exact(TimeDelta),
    /// Days on the wall clock, then hours, minutes, seconds elapsed (DURATION).
    Duration(Duration),
}

impl Length {
    fn end(self, zone: &Zone, local_start: NaiveDateTime) -> Instant {
        let start = zone.to_utc(local_start);
        let end = match self {
            Length::Wall(d) => zone.to_utc(local_start + d),
            Length::Exact(d) => start + d,
            Length::Duration(d) => zone.to_utc(local_start + TimeDelta::days(d.days)) + TimeDelta::seconds(d.seconds),
        };
        end.max(start)
    }

    /// A DTEND written before DTSTART is read as swapped: the event covers the span between them.
    fn start_and_end(self, zone: &Zone, local_start: NaiveDateTime) -> (Instant, Instant) {
        let start = zone.to_utc(local_start);
        match self {
            Length::Wall(d) if d < TimeDelta::zero() => (zone.to_utc(local_start + d), start),
            Length::Exact(d) if d < TimeDelta::zero() => (start + d, start),
            _ => (start, self.end(zone, local_start)),
        }
    }
}

/// An occurrence before overrides: where the rule put it, and where it is now.
struct Instance {
    local: NaiveDateTime,
    original: Instant,
    occurrence: Occurrence,
}

/// How far past the horizon a series is expanded to find the instance an override names: an
/// override of an instance later than this is dropped, as one naming no instance is.
const OVERRIDE_REACH: TimeDelta = TimeDelta::days(366);

fn instances(
    e: &Event,
    overrides: &[&Event],
    horizon: Interval,
    clocks: &mut Clocks<'_>,
    budget: &mut Budget,
) -> Result<Vec<Occurrence>, ParseError> {
    let zone = clocks.zone(&e.start, e.start_line);
    let length = clocks.length(e);
    let start_local = e.start.local();
    // Expand far enough to see every instance an override names, so unmatched overrides can be told apart.
    let latest_override = overrides.iter().filter_map(|o| o.recurrence_id.as_ref()).map(|(rid, _)| rid.local()).max();
    let horizon_end = zone.to_local(horizon.end) + TimeDelta::days(2);
    let horizon_end = horizon_end.max(latest_override.unwrap_or(start_local).min(horizon_end + OVERRIDE_REACH));

    let mut starts: Vec<(NaiveDateTime, Option<Instant>)> =
        if e.rrules.is_empty() { vec![(start_local, None)] } else { Vec::new() };
    for rule in &e.rrules {
        let zone_for_until = zone.clone();
        let expanded = recur::expand(
            rule,
            e.rrules.len() == 1,
            start_local,
            horizon_end,
            move |u| zone_for_until.to_local(u.and_utc()),
            budget,
        )?;
        starts.extend(expanded.into_iter().map(|t| (t, None)));
    }
    for (m, period_end, line) in &e.rdates {
        budget.spend(1, *line)?;
        let local = match m {
            Moment::DateTime(_, Clock::Zone(_) | Clock::Utc) => zone.to_local(clocks.instant(m, *line)),
            _ => m.local(),
        };
        let end = match period_end {
            Some(PeriodEnd::At(end)) => Some(clocks.instant(end, *line)),
            Some(PeriodEnd::After(d)) => Some(Length::Duration(*d).end(&zone, local)),
            None => None,
        };
        starts.push((local, end));
    }
    starts.sort_by_key(|(t, _)| *t);
    starts.dedup_by_key(|(t, _)| *t);

    let all_day = e.start.is_date();
    // EXDATEs as `same_instance` reads them: a day, or an instant.
    let (mut excluded_days, mut excluded_instants) = (HashSet::new(), HashSet::new());
    for (m, line) in &e.exdates {
        match instance_key(m, clocks.instant(m, *line), all_day) {
            InstanceKey::Day(d) => excluded_days.insert(d),
            InstanceKey::At(at) => excluded_instants.insert(at),
        };
    }
    let mut list: Vec<Instance> = starts
        .into_iter()
        .filter(|(local, _)| {
            !excluded_days.contains(&local.date()) && !excluded_instants.contains(&zone.to_utc(*local))
        })
        .map(|(local, explicit_end)| {
            let (start, end) = match explicit_end {
                Some(end) => (zone.to_utc(local), end.max(zone.to_utc(local))),
                None => length.start_and_end(&zone, local),
            };
            Instance {
                local,
                original: zone.to_utc(local),
                occurrence: Occurrence { start, end, status: e.status, transparent: e.transparent },
            }
        })
        .collect();

    // Overrides: THISANDFUTURE ones in order of their RECURRENCE-ID, then single instances.
    let mut ordered: Vec<(&Event, Moment, Instant, bool)> = overrides
        .iter()
        .filter_map(|o| o.recurrence_id.as_ref().map(|(rid, range)| (*o, rid.clone(), *range)))
        .map(|(o, rid, range)| {
            let at = clocks.instant(&rid, o.line);
            (o, rid, at, range)
        })
        .collect();
    ordered.sort_by_key(|(_, _, at, range)| (!*range, *at));
    // The first instance of each local day and at each original instant, for single overrides.
    let (mut by_day, mut by_instant) = (HashMap::new(), HashMap::new());
    for (k, inst) in list.iter().enumerate() {
        by_day.entry(inst.local.date()).or_insert(k);
        by_instant.entry(inst.original).or_insert(k);
    }
    for (o, rid, at, this_and_future) in ordered {
        let (new_start, new_end) = clocks.span(o, &o.start);
        if this_and_future {
            budget.spend(list.len(), o.line)?;
            let shift = new_start - at;
            let length = new_end - new_start;
            for inst in list.iter_mut().filter(|i| i.original >= at || same_instance(&rid, at, i.local, &zone, all_day))
            {
                let start = inst.original + shift;
                inst.occurrence =
                    Occurrence { start, end: start + length, status: o.status, transparent: o.transparent };
            }
        } else {
            let replaced = Occurrence { start: new_start, end: new_end, status: o.status, transparent: o.transparent };
            // An override naming no instance of its series (one deleted or cut off since) is dropped.
            let named = match instance_key(&rid, at, all_day) {
                InstanceKey::Day(d) => by_day.get(&d),
                InstanceKey::At(at) => by_instant.get(&at),
            };
            if let Some(&k) = named {
                list[k].occurrence = replaced;
            }
        }
    }
    Ok(list.into_iter().map(|i| i.occurrence).collect())
}

/// What an EXDATE or RECURRENCE-ID written as `m` (at instant `at`) names: every instance on a
/// local day (a DATE, and any value naming an instance of an all-day series, as Outlook writes
/// them with a TZID), or the one the rule put at an instant.
enum InstanceKey {
    Day(NaiveDate),
    At(Instant),
}

fn instance_key(m: &Moment, at: Instant, all_day: bool) -> InstanceKey {
    match m {
        Moment::Date(d) => InstanceKey::Day(*d),
        Moment::DateTime(written, _) if all_day => InstanceKey::Day(written.date()),
        Moment::DateTime(..) => InstanceKey::At(at),
    }
}

/// True when an EXDATE or RECURRENCE-ID written as `m` (at instant `at`) names the occurrence
/// that the rule put at wall-clock `local` on `zone`.
fn same_instance(m: &Moment, at: Instant, local: NaiveDateTime, zone: &Zone, all_day: bool) -> bool {
    match instance_key(m, at, all_day) {
        InstanceKey::Day(d) => d == local.date(),
        InstanceKey::At(at) => zone.to_utc(local) == at,
    }
}

fn event(c: &Component) -> Result<Event, ParseError> {
    let dtstart = c.property("DTSTART").ok_or_else(|| ParseError::new(c.line, "VEVENT without DTSTART"))?;
    let start = value::moment(dtstart, &dtstart.value)?;
    let end = match (c.property("DTEND"), c.property("DURATION")) {
        (Some(p), _) => End::At(value::moment(p, &p.value)?),
        (None, Some(p)) => End::After(value::duration(p.line, &p.value)?),
        (None, None) => End::None,
    };
    let mut rdates = Vec::new();
    for p in c.all("RDATE") {
        let is_period = p.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("PERIOD"));
        for v in p.value.split(',').filter(|v| !v.trim().is_empty()) {
            if is_period || v.contains('/') {
                let (s, e) = value::period(p, v)?;
                rdates.push((s, Some(e), p.line));
            } else {
                rdates.push((value::moment(p, v)?, None, p.line));
            }
        }
    }
    let mut exdates = Vec::new();
    for p in c.all("EXDATE") {
        for v in p.value.split(',').filter(|v| !v.trim().is_empty()) {
            exdates.push((value::moment(p, v)?, p.line));
        }
    }
    let recurrence_id = match c.property("RECURRENCE-ID") {
        Some(p) => Some((
            value::moment(p, &p.value)?,
            p.param("RANGE").is_some_and(|r| r.eq_ignore_ascii_case("THISANDFUTURE")),
        )),
        None => None,
    };
    let status = match c.property("STATUS").map(|p| p.value.trim().to_ascii_uppercase()) {
        Some(s) if s == "CANCELLED" => EventStatus::Cancelled,
        Some(s) if s == "TENTATIVE" => EventStatus::Tentative,
        _ => EventStatus::Confirmed,
    };
    let transparent = c.property("TRANSP").is_some_and(|p| p.value.trim().eq_ignore_ascii_case("TRANSPARENT"));
    Ok(Event {
        line: c.line,
        start_line: dtstart.line,
        uid: c.property("UID").map(|p| p.value.trim().to_string()),
        start,
        end,
        rrules: c.all("RRULE").cloned().collect(),
        rdates,
        exdates,
        recurrence_id,
        sequence: c.property("SEQUENCE").and_then(|p| p.value.trim().parse().ok()).unwrap_or(0),
        status,
        transparent,
    })
}

fn freebusy(c: &Component) -> Result<Vec<FreeBusy>, ParseError> {
    let mut out = Vec::new();
    for p in c.all("FREEBUSY") {
        let status = match p.param("FBTYPE").map(str::to_ascii_uppercase).as_deref() {
            None | Some("BUSY") => BusyStatus::Busy,
            Some("BUSY-TENTATIVE") => BusyStatus::BusyTentative,
            Some("BUSY-UNAVAILABLE") => BusyStatus::BusyUnavailable,
            Some("FREE") => continue,
            // RFC 5545: unknown FBTYPE values are treated as BUSY.
            Some(_) => BusyStatus::Busy,
        };
        for v in p.value.split(',').filter(|v| !v.trim().is_empty()) {
            let (start, end) = value::period(p, v)?;
            out.push(FreeBusy { line: p.line, start, end, status });
        }
    }
    Ok(out)
}

//! Mutual search: the times at which a provider Slot is open and every participant is free.
//!
//! The search is a sorted merge. Each participant's free time is an [`IntervalSet`]
//! over the horizon; the group's common free time is their intersection; the
//! provider Slots, indexed once in a [`SlotBook`] and visited in start order, are
//! walked against that set with one forward cursor. Candidate start times inside a Slot sit on a grid of `step`
//! from the Slot's start, so a Slot that fits the duration always offers at
//! least its first start. Cost: O(P log P + B log B + candidates) for P Slots and
//! B busy windows, with an early exit when the earliest-first answer is complete.

use std::cmp::Ordering;

use chrono::TimeDelta;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::explain::{Alternatives, Explanation, NoFit, ParticipantBlockers, Rejection};
use crate::interval::{Instant, Interval, IntervalSet};
use crate::participant::Participant;
use crate::preference::Preference;
pub use crate::provider::MutualSlot;
use crate::provider::ProviderSlot;
use crate::zone;

/// What is being looked for.
#[derive(Debug, Clone, PartialEq)]
pub struct MutualQuery {
    /// The appointment must lie inside this window.
    pub window: Interval,
    /// Length of the appointment.
    pub duration: TimeDelta,
    /// Distance between candidate start times inside a long Slot.
    pub step: TimeDelta,
    /// The present instant, for minimum notice.
    pub now: Instant,
    /// How many options to return.
    pub limit: usize,
    /// Return options on distinct days (in `zone`).
    pub spread: bool,
    /// Zone of the person asking: defines days for `spread` and reads `preferences`.
    pub zone: Tz,
    /// Preferences of the person asking, read in `zone`.
    pub preferences: Vec<Preference>,
    /// List rejected candidates and who blocks them.
    pub explain: bool,
    /// How far past the window to look for alternatives when nothing fits.
    pub lookahead: TimeDelta,
}

impl MutualQuery {
    /// A query for `duration` inside `window` with the defaults: 15-minute step, 10 options,
    /// earliest first, UTC, two weeks of look-ahead.
    pub fn new(window: Interval, duration: TimeDelta, now: Instant) -> Self {
        Self {
            window,
            duration,
            step: TimeDelta::minutes(15),
            now,
            limit: 10,
            spread: false,
            zone: chrono_tz::UTC,
            preferences: Vec::new(),
            explain: false,
            lookahead: TimeDelta::days(14),
        }
    }

    fn validate(&self) -> Result<(), QueryError> {
        if self.window.is_empty() {
            return Err(QueryError::EmptyWindow);
        }
        if self.duration <= TimeDelta::zero() {
            return Err(QueryError::NonPositive("duration"));
        }
        if self.step <= TimeDelta::zero() {
            return Err(QueryError::NonPositive("step"));
        }
        if self.limit == 0 {
            return Err(QueryError::NonPositive("limit"));
        }
        if self.lookahead < TimeDelta::zero() {
            return Err(QueryError::NonPositive("lookahead"));
        }
        Ok(())
    }
}

/// A query that cannot be answered as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The window ends before it starts.
    #[error("the search window is empty: its end must be after its start")]
    EmptyWindow,
    /// A length or count that must be positive is not.
    #[error("{0} must be positive")]
    NonPositive(&'static str),
}

/// The answer to a [`MutualQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchOutcome {
    /// Times that suit the provider and every participant, best first.
    pub slots: Vec<MutualSlot>,
    /// Why other times do not work and what would.
    pub explanation: Explanation,
}

/// Provider Slots indexed for search: sorted by start, with their bounds and bookability in
/// flat arrays of UTC milliseconds so a scan over a million Slots touches ~17 MB, not the Slots.
///
/// Build it once per set of Slots and run any number of searches on it.
#[derive(Debug, Clone, Default)]
pub struct SlotBook {
    slots: Vec<ProviderSlot>,
    start: Vec<i64>,
    end: Vec<i64>,
    bookable: Vec<bool>,
    longest: i64,
}

impl SlotBook {
    /// Indexes the Slots (any order).
    pub fn new(mut slots: Vec<ProviderSlot>) -> Self {
        if !slots.is_sorted_by_key(|s| s.interval.start) {
            slots.sort_by_key(|s| s.interval.start);
        }
        let start: Vec<i64> = slots.iter().map(|s| s.interval.start.timestamp_millis()).collect();
        let end: Vec<i64> = slots.iter().map(|s| s.interval.end.timestamp_millis()).collect();
        let longest = start.iter().zip(&end).map(|(s, e)| e - s).max().unwrap_or(0);
        let bookable = slots.iter().map(ProviderSlot::is_bookable).collect();
        Self { slots, start, end, bookable, longest }
    }

    /// The Slots, in start order.
    pub fn slots(&self) -> &[ProviderSlot] {
        &self.slots
    }

    /// Number of Slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are no Slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Finds the times at which a provider Slot is bookable and every participant is free.
///
/// Ranking: preference score, then earliest start, then Schedule and Slot id, so ties are
/// deterministic.
pub fn find_mutual(
    book: &SlotBook,
    participants: &[Participant],
    query: &MutualQuery,
) -> Result<SearchOutcome, QueryError> {
    query.validate()?;
    let everyone: Vec<&Participant> = participants.iter().collect();
    let found = run(book, &everyone, participants, query, query.window);

    let mut explanation = Explanation::default();
    if query.explain {
        explanation.rejected = rejections(book, &everyone, query);
    }
    if found.is_empty() {
        explanation.no_fit = Some(no_fit(book, &everyone, query));
        let required: Vec<&Participant> = participants.iter().filter(|p| p.is_required()).collect();
        let mut alternatives = Alternatives::default();
        if required.len() < participants.len() {
            alternatives.without_optional = run(book, &required, participants, query, query.window);
            annotate_absent(&mut alternatives.without_optional, participants, query);
        }
        if query.lookahead > TimeDelta::zero() {
            let after = Interval::new(query.window.end, query.window.end + query.lookahead);
            alternatives.after_window = run(book, &everyone, participants, query, after);
        }
        explanation.alternatives = alternatives;
    }
    Ok(SearchOutcome { slots: found, explanation })
}

/// An interval set as `[start, end)` pairs of UTC milliseconds, for the scan's inner loop.
struct Millis(Vec<(i64, i64)>);

impl Millis {
    fn of(set: &IntervalSet) -> Self {
        Millis(set.intervals().iter().map(|i| (i.start.timestamp_millis(), i.end.timestamp_millis())).collect())
    }

    fn contains(&self, t: i64) -> bool {
        let k = self.0.partition_point(|i| i.1 <= t);
        self.0.get(k).is_some_and(|i| i.0 <= t)
    }
}

fn to_instant(ms: i64) -> Instant {
    chrono::DateTime::from_timestamp_millis(ms).expect("instant built from a valid instant")
}

/// The instants of `horizon` at which every one of `group` is free.
fn common_free(group: &[&Participant], horizon: Interval, now: Instant) -> IntervalSet {
    let mut free = IntervalSet::single(horizon);
    for p in group {
        free = free.intersection(&p.free_time(horizon, now));
        if free.is_empty() {
            break;
        }
    }
    free
}

/// Visits every candidate start (UTC ms) inside bookable Slots that fits `duration` in `free`,
/// in Slot start order. The visitor returns `false` to stop.
fn scan(
    book: &SlotBook,
    free: &IntervalSet,
    window: Interval,
    query: &MutualQuery,
    mut visit: impl FnMut(u32, i64) -> bool,
) {
    let free = Millis::of(free).0;
    let (w_start, w_end) = (window.start.timestamp_millis(), window.end.timestamp_millis());
    let d = query.duration.num_milliseconds();
    let step = query.step.num_milliseconds().max(1);
    // Slots starting before this cannot reach into the window.
    let first = book.start.partition_point(|&s| s < w_start - book.longest);
    let mut cursor = 0usize;
    for i in first..book.len() {
        let (s, e) = (book.start[i], book.end[i]);
        if s > w_end - d {
            break;
        }
        if !book.bookable[i] {
            continue;
        }
        let (lo, hi) = (s.max(w_start), e.min(w_end));
        if hi - lo < d {
            continue;
        }
        // Slot starts never decrease, so the first free interval ending after a start only moves forward.
        while cursor < free.len() && free[cursor].1 <= s {
            cursor += 1;
        }
        if cursor == free.len() {
            return;
        }
        let align = |x: i64| s + (x - s + step - 1).div_euclid(step) * step;
        let mut t = align(lo);
        let mut k = cursor;
        while t + d <= hi {
            // The only free interval that can hold [t, t+d) is the first one ending at or after t+d.
            while k < free.len() && free[k].1 < t + d {
                k += 1;
            }
            let Some(&(f_start, _)) = free.get(k) else { break };
            if f_start <= t {
                if !visit(i as u32, t) {
                    return;
                }
                t += step;
            } else {
                t = align(f_start);
            }
        }
    }
}

/// A candidate being ranked.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: u32,
    start: i64,
    slot: u32,
}

/// Ranks candidates: best score, then earliest, then Schedule and Slot id, then input order.
struct Ranker<'a> {
    slots: &'a [ProviderSlot],
    preferences: Vec<Millis>,
    /// Local midnights of the query zone over the horizon, for `spread`.
    day_starts: Option<Vec<i64>>,
}

impl Ranker<'_> {
    fn score(&self, t: i64) -> u32 {
        self.preferences.iter().filter(|p| p.contains(t)).count() as u32
    }

    fn cmp(&self, a: &Candidate, b: &Candidate) -> Ordering {
        let (sa, sb) = (&self.slots[a.slot as usize], &self.slots[b.slot as usize]);
        b.score
            .cmp(&a.score)
            .then(a.start.cmp(&b.start))
            .then_with(|| sa.schedule.cmp(&sb.schedule))
            .then_with(|| sa.id.cmp(&sb.id))
            .then(a.slot.cmp(&b.slot))
    }

    fn day(&self, t: i64) -> usize {
        self.day_starts.as_ref().map_or(0, |d| d.partition_point(|s| *s <= t))
    }
}

/// Keeps the best `k` candidates, best first.
struct TopK {
    k: usize,
    items: Vec<Candidate>,
}

impl TopK {
    fn offer(&mut self, c: Candidate, ranker: &Ranker<'_>) {
        if self.items.len() == self.k {
            match self.items.last() {
                Some(worst) if ranker.cmp(&c, worst) != Ordering::Less => return,
                _ => {}
            }
            self.items.pop();
        }
        let at = self.items.partition_point(|x| ranker.cmp(x, &c) == Ordering::Less);
        self.items.insert(at, c);
    }

    fn is_full(&self) -> bool {
        self.items.len() == self.k
    }
}

/// The best `query.limit` candidates for `group` inside `window` (from `now` on: the past is never offered).
fn run(
    book: &SlotBook,
    group: &[&Participant],
    all: &[Participant],
    query: &MutualQuery,
    window: Interval,
) -> Vec<MutualSlot> {
    let window = Interval::new(window.start.max(query.now), window.end);
    if window.is_empty() {
        return Vec::new();
    }
    let free = common_free(group, window, query.now);
    let mut preferences: Vec<Millis> =
        query.preferences.iter().map(|p| Millis::of(&p.instants(query.zone, window))).collect();
    for p in all {
        preferences.extend(p.preferences.iter().map(|pref| Millis::of(&pref.instants(p.zone, window))));
    }
    let max_score = preferences.len() as u32;
    let day_starts = query.spread.then(|| {
        zone::local_dates(query.zone, window).map(|d| zone::local_day(query.zone, d).start.timestamp_millis()).collect()
    });
    let ranker = Ranker { slots: &book.slots, preferences, day_starts };

    let chosen: Vec<Candidate> = if query.spread {
        // The best candidate of each local day, then the best `limit` days.
        let days = ranker.day_starts.as_ref().map_or(1, |d| d.len() + 1);
        let mut best: Vec<Option<Candidate>> = vec![None; days];
        scan(book, &free, window, query, |slot, start| {
            let c = Candidate { score: ranker.score(start), start, slot };
            let day = &mut best[ranker.day(start)];
            if day.is_none_or(|d| ranker.cmp(&c, &d) == Ordering::Less) {
                *day = Some(c);
            }
            true
        });
        let mut top = TopK { k: query.limit, items: Vec::new() };
        for c in best.into_iter().flatten() {
            top.offer(c, &ranker);
        }
        top.items
    } else {
        let mut top = TopK { k: query.limit, items: Vec::with_capacity(query.limit + 1) };
        scan(book, &free, window, query, |slot, start| {
            // Every later candidate starts at or after this Slot's start: once the list is full of
            // top-score candidates that start earlier, nothing can improve it.
            if top.is_full()
                && top.items.last().is_some_and(|w| w.score == max_score && w.start < book.start[slot as usize])
            {
                return false;
            }
            top.offer(Candidate { score: ranker.score(start), start, slot }, &ranker);
            true
        });
        top.items
    };
    chosen
        .into_iter()
        .map(|c| {
            let s = &book.slots[c.slot as usize];
            MutualSlot {
                slot: s.id.clone(),
                schedule: s.schedule.clone(),
                interval: Interval::starting_at(to_instant(c.start), query.duration),
                score: c.score,
                absent: Vec::new(),
            }
        })
        .collect()
}

fn annotate_absent(found: &mut [MutualSlot], participants: &[Participant], query: &MutualQuery) {
    for m in found {
        m.absent = participants
            .iter()
            .filter(|p| !p.is_required() && !p.blockers(m.interval, query.now).is_empty())
            .map(|p| p.id.clone())
            .collect();
    }
}

/// The first `query.limit` provider candidates in the window that the group cannot attend,
/// one per Slot, with what blocks each.
fn rejections(book: &SlotBook, group: &[&Participant], query: &MutualQuery) -> Vec<Rejection> {
    let provider_only = IntervalSet::single(query.window);
    let free = common_free(group, query.window, query.now);
    let mut out: Vec<Rejection> = Vec::new();
    let mut last_slot = None;
    scan(book, &provider_only, query.window, query, |slot, start| {
        let interval = Interval::starting_at(to_instant(start), query.duration);
        if last_slot != Some(slot) && !free.contains_interval(&interval) {
            last_slot = Some(slot);
            let s = &book.slots[slot as usize];
            out.push(Rejection {
                slot: s.id.clone(),
                schedule: s.schedule.clone(),
                interval,
                blocked_by: group
                    .iter()
                    .map(|p| ParticipantBlockers {
                        participant: p.id.clone(),
                        blockers: p.blockers(interval, query.now),
                    })
                    .filter(|b| !b.blockers.is_empty())
                    .collect(),
            });
        }
        out.len() < query.limit
    });
    out
}

/// Why nothing fits: no provider time at all, some participants never free when the provider is,
/// or no time at which all are free together.
fn no_fit(book: &SlotBook, group: &[&Participant], query: &MutualQuery) -> NoFit {
    // What is left of the window from now on: the past is never offered.
    let window = Interval::new(query.window.start.max(query.now), query.window.end);
    if window.is_empty() {
        return NoFit::WindowPassed { from: query.now };
    }
    let fits = |free: &IntervalSet| {
        let mut any = false;
        scan(book, free, window, query, |_, _| {
            any = true;
            false
        });
        any
    };
    if !fits(&IntervalSet::single(window)) {
        return NoFit::NoProviderAvailability;
    }
    let unavailable: Vec<String> =
        group.iter().filter(|p| !fits(&p.free_time(window, query.now))).map(|p| p.id.clone()).collect();
    if unavailable.is_empty() {
        NoFit::NoCommonTime
    } else {
        NoFit::ParticipantsUnavailable { participants: unavailable }
    }
}

#[cfg(test)]
mod tests;

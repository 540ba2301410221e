//! Half-open UTC intervals and normalized interval sets.
//!
//! Every time range inside calsync is an [`Interval`] `[start, end)` of UTC
//! instants. An [`IntervalSet`] keeps its intervals sorted, non-empty, disjoint
//! and non-adjacent, so set operations are linear merges.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// A UTC instant: the one time type inside calsync.
pub type Instant = DateTime<Utc>;

/// A half-open range of UTC instants `[start, end)`.
///
/// An interval with `end <= start` is empty; [`IntervalSet`] drops empty ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Interval {
    /// First instant inside the interval.
    pub start: Instant,
    /// First instant after the interval.
    pub end: Instant,
}

impl Interval {
    /// The interval `[start, end)`.
    pub const fn new(start: Instant, end: Instant) -> Self {
        Self { start, end }
    }

    /// The interval that starts at `start` and lasts `duration`.
    pub fn starting_at(start: Instant, duration: TimeDelta) -> Self {
        Self { start, end: start + duration }
    }

    /// True when the interval holds no instant.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Its length (zero for an empty interval).
    pub fn duration(&self) -> TimeDelta {
        if self.is_empty() { TimeDelta::zero() } else { self.end - self.start }
    }

    /// True when the two share at least one instant.
    pub fn overlaps(&self, other: &Interval) -> bool {
        self.start < other.end && other.start < self.end && !self.is_empty() && !other.is_empty()
    }

    /// True when `other` lies entirely inside `self` (an empty `other` is inside anything).
    pub fn contains(&self, other: &Interval) -> bool {
        other.is_empty() || (self.start <= other.start && other.end <= self.end)
    }

    /// True when the instant lies inside.
    pub fn contains_instant(&self, t: Instant) -> bool {
        self.start <= t && t < self.end
    }

    /// The common part, if any.
    pub fn intersection(&self, other: &Interval) -> Option<Interval> {
        let i = Interval::new(self.start.max(other.start), self.end.min(other.end));
        (!i.is_empty()).then_some(i)
    }

    /// The interval widened by `before` at the start and `after` at the end.
    pub fn widened(&self, before: TimeDelta, after: TimeDelta) -> Interval {
        Interval::new(self.start - before, self.end + after)
    }
}

/// A normalized set of instants: sorted, non-empty, disjoint, non-adjacent intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalSet {
    intervals: Vec<Interval>,
}

impl IntervalSet {
    /// The empty set.
    pub const fn new() -> Self {
        Self { intervals: Vec::new() }
    }

    /// Builds a set from intervals in any order, merging overlapping and touching ones.
    pub fn from_intervals(intervals: impl IntoIterator<Item = Interval>) -> Self {
        let mut v: Vec<Interval> = intervals.into_iter().filter(|i| !i.is_empty()).collect();
        // Sorting an already sorted vector is linear; inputs are usually sorted.
        v.sort_unstable_by_key(|i| i.start);
        Self { intervals: merge_sorted(v) }
    }

    /// The set holding one interval (or nothing, if it is empty).
    pub fn single(interval: Interval) -> Self {
        Self::from_intervals([interval])
    }

    /// The normalized intervals, in order.
    pub fn intervals(&self) -> &[Interval] {
        &self.intervals
    }

    /// Number of maximal intervals.
    pub fn len(&self) -> usize {
        self.intervals.len()
    }

    /// True when no instant is in the set.
    pub fn is_empty(&self) -> bool {
        self.intervals.is_empty()
    }

    /// Total length of the set.
    pub fn total_duration(&self) -> TimeDelta {
        self.intervals.iter().map(Interval::duration).sum()
    }

    /// Instants in either set.
    pub fn union(&self, other: &IntervalSet) -> IntervalSet {
        let mut out = Vec::with_capacity(self.len() + other.len());
        let (mut a, mut b) = (self.intervals.iter().peekable(), other.intervals.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => {
                    if x.start <= y.start {
                        a.next()
                    } else {
                        b.next()
                    }
                }
                (Some(_), None) => a.next(),
                (None, Some(_)) => b.next(),
                (None, None) => break,
            };
            push_merging(&mut out, *next.expect("peeked"));
        }
        IntervalSet { intervals: out }
    }

    /// Instants in both sets.
    pub fn intersection(&self, other: &IntervalSet) -> IntervalSet {
        let (a, b) = (&self.intervals, &other.intervals);
        let mut out = Vec::with_capacity(a.len().min(b.len()));
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if let Some(x) = a[i].intersection(&b[j]) {
                out.push(x);
            }
            if a[i].end <= b[j].end {
                i += 1;
            } else {
                j += 1;
            }
        }
        IntervalSet { intervals: out }
    }

    /// Instants in `self` but not in `other`.
    pub fn difference(&self, other: &IntervalSet) -> IntervalSet {
        let b = &other.intervals;
        let mut out = Vec::with_capacity(self.len());
        let mut j = 0;
        for &x in &self.intervals {
            let mut cur = x.start;
            while j < b.len() && b[j].end <= cur {
                j += 1;
            }
            let mut k = j;
            while k < b.len() && b[k].start < x.end {
                if b[k].start > cur {
                    out.push(Interval::new(cur, b[k].start));
                }
                cur = cur.max(b[k].end);
                if b[k].end > x.end {
                    break;
                }
                k += 1;
            }
            if cur < x.end {
                out.push(Interval::new(cur, x.end));
            }
        }
        IntervalSet { intervals: out }
    }

    /// Instants of `horizon` that are not in the set.
    pub fn complement_within(&self, horizon: Interval) -> IntervalSet {
        IntervalSet::single(horizon).difference(self)
    }

    /// The part of the set inside `horizon`.
    pub fn clipped_to(&self, horizon: Interval) -> IntervalSet {
        self.intersection(&IntervalSet::single(horizon))
    }

    /// True when the whole of `interval` lies in the set.
    pub fn contains_interval(&self, interval: &Interval) -> bool {
        if interval.is_empty() {
            return true;
        }
        self.covering(interval.start).is_some_and(|c| c.end >= interval.end)
    }

    /// True when the instant is in the set.
    pub fn contains_instant(&self, t: Instant) -> bool {
        self.covering(t).is_some()
    }

    /// The maximal interval that holds `t`, if any.
    pub fn covering(&self, t: Instant) -> Option<&Interval> {
        let idx = self.intervals.partition_point(|i| i.end <= t);
        self.intervals.get(idx).filter(|i| i.start <= t)
    }
}

impl FromIterator<Interval> for IntervalSet {
    fn from_iter<T: IntoIterator<Item = Interval>>(iter: T) -> Self {
        Self::from_intervals(iter)
    }
}

fn push_merging(out: &mut Vec<Interval>, next: Interval) {
    match out.last_mut() {
        Some(last) if next.start <= last.end => last.end = last.end.max(next.end),
        _ => out.push(next),
    }
}

fn merge_sorted(sorted: Vec<Interval>) -> Vec<Interval> {
    let mut out = Vec::with_capacity(sorted.len());
    for i in sorted {
        push_merging(&mut out, i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t(minute: i64) -> Instant {
        Utc.timestamp_opt(1_790_000_000 + minute * 60, 0).unwrap()
    }

    fn iv(a: i64, b: i64) -> Interval {
        Interval::new(t(a), t(b))
    }

    #[test]
    fn merges_overlapping_and_touching_intervals() {
        let s = IntervalSet::from_intervals([iv(10, 20), iv(0, 5), iv(5, 7), iv(15, 30), iv(40, 40)]);
        assert_eq!(s.intervals(), &[iv(0, 7), iv(10, 30)]);
    }

    #[test]
    fn difference_cuts_holes() {
        let a = IntervalSet::from_intervals([iv(0, 100)]);
        let b = IntervalSet::from_intervals([iv(10, 20), iv(30, 40), iv(90, 120)]);
        assert_eq!(a.difference(&b).intervals(), &[iv(0, 10), iv(20, 30), iv(40, 90)]);
    }

    #[test]
    fn complement_within_horizon() {
        let s = IntervalSet::from_intervals([iv(-10, 5), iv(50, 60)]);
        assert_eq!(s.complement_within(iv(0, 100)).intervals(), &[iv(5, 50), iv(60, 100)]);
    }

    #[test]
    fn half_open_membership() {
        let s = IntervalSet::from_intervals([iv(0, 10)]);
        assert!(s.contains_instant(t(0)));
        assert!(!s.contains_instant(t(10)));
        assert!(s.contains_interval(&iv(0, 10)));
        assert!(!s.contains_interval(&iv(5, 11)));
    }

    fn arb_set() -> impl Strategy<Value = IntervalSet> {
        prop::collection::vec((0i64..200, 0i64..30), 0..12)
            .prop_map(|v| IntervalSet::from_intervals(v.into_iter().map(|(s, l)| iv(s, s + l))))
    }

    fn is_normalized(s: &IntervalSet) -> bool {
        s.intervals().iter().all(|i| !i.is_empty()) && s.intervals().windows(2).all(|w| w[0].end < w[1].start)
    }

    /// Membership of every minute in the range, as the reference semantics.
    fn points(s: &IntervalSet) -> Vec<bool> {
        (-10..260).map(|m| s.contains_instant(t(m))).collect()
    }

    const HORIZON: (i64, i64) = (-10, 260);

    proptest! {
        #[test]
        fn operations_stay_normalized(a in arb_set(), b in arb_set()) {
            prop_assert!(is_normalized(&a.union(&b)));
            prop_assert!(is_normalized(&a.intersection(&b)));
            prop_assert!(is_normalized(&a.difference(&b)));
            prop_assert!(is_normalized(&a.complement_within(iv(HORIZON.0, HORIZON.1))));
        }

        #[test]
        fn operations_match_pointwise_semantics(a in arb_set(), b in arb_set()) {
            let (pa, pb) = (points(&a), points(&b));
            let zip = |f: fn(bool, bool) -> bool| pa.iter().zip(&pb).map(|(x, y)| f(*x, *y)).collect::<Vec<_>>();
            prop_assert_eq!(points(&a.union(&b)), zip(|x, y| x || y));
            prop_assert_eq!(points(&a.intersection(&b)), zip(|x, y| x && y));
            prop_assert_eq!(points(&a.difference(&b)), zip(|x, y| x && !y));
        }

        #[test]
        fn union_and_intersection_commute_and_associate(a in arb_set(), b in arb_set(), c in arb_set()) {
            prop_assert_eq!(a.union(&b), b.union(&a));
            prop_assert_eq!(a.intersection(&b), b.intersection(&a));
            prop_assert_eq!(a.union(&b).union(&c), a.union(&b.union(&c)));
            prop_assert_eq!(a.intersection(&b).intersection(&c), a.intersection(&b.intersection(&c)));
        }

        #[test]
        fn intersection_distributes_over_union(a in arb_set(), b in arb_set(), c in arb_set()) {
            prop_assert_eq!(a.intersection(&b.union(&c)), a.intersection(&b).union(&a.intersection(&c)));
        }

        #[test]
        fn de_morgan_within_horizon(a in arb_set(), b in arb_set()) {
            let h = iv(HORIZON.0, HORIZON.1);
            prop_assert_eq!(a.union(&b).complement_within(h), a.complement_within(h).intersection(&b.complement_within(h)));
            prop_assert_eq!(a.intersection(&b).complement_within(h), a.complement_within(h).union(&b.complement_within(h)));
        }

        #[test]
        fn difference_is_intersection_with_complement(a in arb_set(), b in arb_set()) {
            let h = iv(HORIZON.0, HORIZON.1);
            prop_assert_eq!(a.difference(&b), a.intersection(&b.complement_within(h)));
        }

        #[test]
        fn complement_twice_is_identity_inside_horizon(a in arb_set()) {
            let h = iv(HORIZON.0, HORIZON.1);
            prop_assert_eq!(a.complement_within(h).complement_within(h), a.clipped_to(h));
        }

        #[test]
        fn contains_interval_matches_points(a in arb_set(), s in 0i64..200, l in 1i64..40) {
            let probe = iv(s, s + l);
            let expected = (s..s + l).all(|m| a.contains_instant(t(m)));
            prop_assert_eq!(a.contains_interval(&probe), expected);
        }
    }
}

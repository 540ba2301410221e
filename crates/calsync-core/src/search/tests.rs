use super::*;
use crate::participant::{Attendance, Blocker, BusyInterval, BusyStatus};
use crate::provider::SlotStatus;
use chrono::NaiveDate;
use proptest::prelude::*;

fn utc(m: u32, d: u32, h: u32, min: u32) -> Instant {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap().and_hms_opt(h, min, 0).unwrap().and_utc()
}

fn slot(id: &str, schedule: &str, start: Instant, end: Instant) -> ProviderSlot {
    ProviderSlot {
        id: id.into(),
        schedule: schedule.into(),
        interval: Interval::new(start, end),
        status: SlotStatus::Free,
        capacity: None,
    }
}

fn busy(start: Instant, end: Instant) -> BusyInterval {
    BusyInterval { interval: Interval::new(start, end), status: BusyStatus::Busy }
}

fn query(window: Interval, minutes: i64) -> MutualQuery {
    MutualQuery::new(window, TimeDelta::minutes(minutes), utc(1, 1, 0, 0))
}

fn starts(outcome: &SearchOutcome) -> Vec<Instant> {
    outcome.slots.iter().map(|m| m.interval.start).collect()
}

#[test]
fn whole_day_slot_offers_starts_on_the_step_grid() {
    let slots = vec![slot("s1", "sch", utc(12, 1, 9, 0), utc(12, 1, 17, 0))];
    let patient = Participant::new("patient", chrono_tz::UTC, vec![busy(utc(12, 1, 9, 10), utc(12, 1, 10, 20))]);
    let mut q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 30);
    q.limit = 3;
    let out = find_mutual(&SlotBook::new(slots), &[patient], &q).unwrap();
    // 09:00 collides; the grid from 09:00 in 15-minute steps resumes at 10:30.
    assert_eq!(starts(&out), vec![utc(12, 1, 10, 30), utc(12, 1, 10, 45), utc(12, 1, 11, 0)]);
}

#[test]
fn a_slot_exactly_as_long_as_the_appointment_is_kept() {
    let slots = vec![slot("s1", "sch", utc(12, 1, 9, 0), utc(12, 1, 9, 20))];
    let mut q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 20);
    q.step = TimeDelta::minutes(30);
    let out = find_mutual(&SlotBook::new(slots), &[], &q).unwrap();
    assert_eq!(starts(&out), vec![utc(12, 1, 9, 0)]);
}

#[test]
fn busy_unavailable_and_zero_capacity_slots_are_not_offered() {
    let mut taken = slot("taken", "sch", utc(12, 1, 9, 0), utc(12, 1, 9, 30));
    taken.status = SlotStatus::Busy;
    let mut full = slot("full", "sch", utc(12, 1, 10, 0), utc(12, 1, 10, 30));
    full.capacity = Some(0);
    let open = slot("open", "sch", utc(12, 1, 11, 0), utc(12, 1, 11, 30));
    let q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 30);
    let out = find_mutual(&SlotBook::new(vec![taken, full, open]), &[], &q).unwrap();
    assert_eq!(out.slots.iter().map(|m| m.slot.as_str()).collect::<Vec<_>>(), vec!["open"]);
}

#[test]
fn appointment_must_lie_inside_the_window() {
    let slots = vec![slot("s1", "sch", utc(12, 1, 8, 0), utc(12, 1, 12, 0))];
    let q = query(Interval::new(utc(12, 1, 8, 10), utc(12, 1, 9, 0)), 30);
    let out = find_mutual(&SlotBook::new(slots), &[], &q).unwrap();
    // The grid is anchored at the Slot start: 08:15 and 08:30 fit, 08:45 would end after 09:00.
    assert_eq!(starts(&out), vec![utc(12, 1, 8, 15), utc(12, 1, 8, 30)]);
}

#[test]
fn unsorted_slots_give_the_same_answer() {
    let a = slot("a", "sch", utc(12, 1, 9, 0), utc(12, 1, 9, 30));
    let b = slot("b", "sch", utc(12, 1, 8, 0), utc(12, 1, 8, 30));
    let q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 30);
    let sorted = find_mutual(&SlotBook::new(vec![b.clone(), a.clone()]), &[], &q).unwrap();
    let unsorted = find_mutual(&SlotBook::new(vec![a, b]), &[], &q).unwrap();
    assert_eq!(sorted.slots, unsorted.slots);
    assert_eq!(starts(&sorted), vec![utc(12, 1, 8, 0), utc(12, 1, 9, 0)]);
}

#[test]
fn ties_are_broken_by_schedule_then_slot() {
    let slots = vec![
        slot("z", "Schedule/b", utc(12, 1, 9, 0), utc(12, 1, 9, 30)),
        slot("y", "Schedule/a", utc(12, 1, 9, 0), utc(12, 1, 9, 30)),
        slot("x", "Schedule/b", utc(12, 1, 9, 0), utc(12, 1, 9, 30)),
    ];
    let q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 30);
    let out = find_mutual(&SlotBook::new(slots), &[], &q).unwrap();
    assert_eq!(out.slots.iter().map(|m| m.slot.as_str()).collect::<Vec<_>>(), vec!["y", "x", "z"]);
}

#[test]
fn preferences_rank_mornings_first_in_the_askers_zone() {
    // 08:00 New York = 13:00Z (morning); 14:00 New York = 19:00Z (afternoon).
    let slots = vec![
        slot("early-afternoon", "sch", utc(12, 1, 19, 0), utc(12, 1, 19, 30)),
        slot("next-morning", "sch", utc(12, 2, 13, 0), utc(12, 2, 13, 30)),
    ];
    let mut q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 3, 0, 0)), 30);
    q.zone = chrono_tz::America::New_York;
    q.preferences = vec!["mornings".parse().unwrap()];
    let out = find_mutual(&SlotBook::new(slots), &[], &q).unwrap();
    assert_eq!(out.slots[0].slot, "next-morning");
    assert_eq!(out.slots[0].score, 1);
    assert_eq!(out.slots[1].score, 0);
}

#[test]
fn participant_preferences_are_read_in_their_own_zone() {
    // 04:00Z is 05:00 in Berlin (before morning); 07:00Z is 08:00 (a morning).
    let slots = vec![
        slot("a", "sch", utc(12, 1, 4, 0), utc(12, 1, 4, 30)),
        slot("b", "sch", utc(12, 1, 7, 0), utc(12, 1, 7, 30)),
    ];
    let mut caregiver = Participant::new("caregiver", chrono_tz::Europe::Berlin, vec![]);
    caregiver.preferences = vec!["mornings".parse().unwrap()];
    let q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 30);
    let out = find_mutual(&SlotBook::new(slots), &[caregiver], &q).unwrap();
    assert_eq!(out.slots[0].slot, "b");
}

#[test]
fn spread_returns_options_on_distinct_local_days() {
    let mut slots = Vec::new();
    for d in 1..=4 {
        for h in [14, 15, 16] {
            slots.push(slot(&format!("d{d}h{h}"), "sch", utc(12, d, h, 0), utc(12, d, h, 30)));
        }
    }
    let mut q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 5, 0, 0)), 30);
    q.spread = true;
    q.limit = 3;
    q.zone = chrono_tz::America::Los_Angeles;
    let out = find_mutual(&SlotBook::new(slots), &[], &q).unwrap();
    assert_eq!(starts(&out), vec![utc(12, 1, 14, 0), utc(12, 2, 14, 0), utc(12, 3, 14, 0)]);
}

#[test]
fn a_participant_working_hours_follow_dst() {
    // New York switches on 2026-11-01; 09:00 local is 13:00Z before and 14:00Z after.
    let slots: Vec<ProviderSlot> = [(10, 30), (11, 2)]
        .iter()
        .flat_map(|&(m, d)| {
            (12..16).map(move |h| slot(&format!("{m}-{d}-{h}"), "sch", utc(m, d, h, 0), utc(m, d, h, 30)))
        })
        .collect();
    let mut patient = Participant::new("patient", chrono_tz::America::New_York, vec![]);
    patient.constraints.available = vec!["mon-fri 09:00-17:00".parse().unwrap()];
    let mut q = query(Interval::new(utc(10, 30, 0, 0), utc(11, 3, 0, 0)), 30);
    q.spread = true;
    let out = find_mutual(&SlotBook::new(slots), &[patient], &q).unwrap();
    assert_eq!(starts(&out), vec![utc(10, 30, 13, 0), utc(11, 2, 14, 0)]);
}

#[test]
fn optional_participants_constrain_results_and_can_be_dropped() {
    let slots = vec![slot("s1", "sch", utc(12, 1, 9, 0), utc(12, 1, 9, 30))];
    let patient = Participant::new("patient", chrono_tz::UTC, vec![]);
    let mut cousin = Participant::new("cousin", chrono_tz::UTC, vec![busy(utc(12, 1, 8, 0), utc(12, 1, 12, 0))]);
    cousin.attendance = Attendance::Optional;
    let q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 30);
    let out = find_mutual(&SlotBook::new(slots), &[patient, cousin], &q).unwrap();
    assert!(out.slots.is_empty());
    assert_eq!(out.explanation.no_fit, Some(NoFit::ParticipantsUnavailable { participants: vec!["cousin".into()] }));
    let alt = &out.explanation.alternatives.without_optional;
    assert_eq!(alt.len(), 1);
    assert_eq!(alt[0].absent, vec!["cousin".to_string()]);
}

#[test]
fn no_provider_availability_is_reported() {
    let slots = vec![slot("short", "sch", utc(12, 1, 9, 0), utc(12, 1, 9, 15))];
    let q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 30);
    let out = find_mutual(&SlotBook::new(slots), &[], &q).unwrap();
    assert_eq!(out.explanation.no_fit, Some(NoFit::NoProviderAvailability));
}

#[test]
fn no_common_time_and_nearest_fits_after_the_window() {
    let slots = vec![
        slot("a", "sch", utc(12, 1, 9, 0), utc(12, 1, 9, 30)),
        slot("b", "sch", utc(12, 1, 10, 0), utc(12, 1, 10, 30)),
        slot("later", "sch", utc(12, 3, 10, 0), utc(12, 3, 10, 30)),
    ];
    let patient = Participant::new("patient", chrono_tz::UTC, vec![busy(utc(12, 1, 9, 0), utc(12, 1, 9, 30))]);
    let caregiver = Participant::new("caregiver", chrono_tz::UTC, vec![busy(utc(12, 1, 10, 0), utc(12, 1, 10, 30))]);
    let mut q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 30);
    q.explain = true;
    let out = find_mutual(&SlotBook::new(slots), &[patient, caregiver], &q).unwrap();
    assert!(out.slots.is_empty());
    assert_eq!(out.explanation.no_fit, Some(NoFit::NoCommonTime));
    assert_eq!(
        out.explanation.alternatives.after_window.iter().map(|m| m.slot.as_str()).collect::<Vec<_>>(),
        vec!["later"]
    );
    let rejected = &out.explanation.rejected;
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0].blocked_by.len(), 1);
    assert_eq!(rejected[0].blocked_by[0].participant, "patient");
    assert_eq!(
        rejected[0].blocked_by[0].blockers,
        vec![Blocker::Busy { interval: Interval::new(utc(12, 1, 9, 0), utc(12, 1, 9, 30)), status: BusyStatus::Busy }]
    );
    assert_eq!(rejected[1].blocked_by[0].participant, "caregiver");
}

#[test]
fn the_past_is_never_offered() {
    let slots = vec![
        slot("past", "sch", utc(12, 1, 9, 0), utc(12, 1, 9, 30)),
        slot("running", "sch", utc(12, 1, 9, 30), utc(12, 1, 11, 0)),
    ];
    let mut q = query(Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0)), 30);
    q.now = utc(12, 1, 9, 40);
    let out = find_mutual(&SlotBook::new(slots), &[], &q).unwrap();
    // The grid runs from the Slot start (09:30) in 15-minute steps: 09:45 is the first start after 09:40.
    assert_eq!(starts(&out)[0], utc(12, 1, 9, 45));
}

#[test]
fn invalid_queries_are_refused() {
    let mut q = query(Interval::new(utc(12, 2, 0, 0), utc(12, 1, 0, 0)), 30);
    assert_eq!(find_mutual(&SlotBook::new(vec![]), &[], &q), Err(QueryError::EmptyWindow));
    q.window = Interval::new(utc(12, 1, 0, 0), utc(12, 2, 0, 0));
    q.duration = TimeDelta::zero();
    assert_eq!(find_mutual(&SlotBook::new(vec![]), &[], &q), Err(QueryError::NonPositive("duration")));
}

// ---- The deliberately naive reference: every grid point of every Slot, checked against every
// busy window one by one, sorted at the end. The fast search must agree with it.

fn naive(slots: &[ProviderSlot], participants: &[Participant], q: &MutualQuery) -> Vec<(String, Instant)> {
    let mut all = Vec::new();
    for (i, s) in slots.iter().enumerate() {
        if s.status != SlotStatus::Free || s.capacity == Some(0) {
            continue;
        }
        let mut t = s.interval.start;
        while t + q.duration <= s.interval.end {
            let appt = Interval::starting_at(t, q.duration);
            let in_window = q.window.start.max(q.now) <= t && appt.end <= q.window.end;
            if in_window && participants.iter().all(|p| p.blockers(appt, q.now).is_empty()) {
                let score = q.preferences.iter().filter(|p| p.instants(q.zone, q.window).contains_instant(t)).count();
                all.push((score, t, s.schedule.clone(), s.id.clone(), i));
            }
            t += q.step;
        }
    }
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)).then(a.3.cmp(&b.3)).then(a.4.cmp(&b.4)));
    if q.spread {
        let mut seen = std::collections::HashSet::new();
        all.retain(|c| seen.insert(zone::local_date(q.zone, c.1)));
    }
    all.into_iter().take(q.limit).map(|c| (c.3, c.1)).collect()
}

fn arb_slots() -> impl Strategy<Value = Vec<ProviderSlot>> {
    let one = (0i64..72 * 4, 1i64..40, 0u8..8, 0u8..3, 0u8..3);
    prop::collection::vec(one, 0..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (start_q, len_q, status, sched, cap))| ProviderSlot {
                id: format!("s{i}"),
                schedule: format!("sch{sched}"),
                interval: Interval::starting_at(
                    utc(12, 1, 0, 0) + TimeDelta::minutes(15 * start_q),
                    TimeDelta::minutes(5 * len_q),
                ),
                status: if status == 0 { SlotStatus::Busy } else { SlotStatus::Free },
                capacity: match cap {
                    0 => Some(0),
                    1 => Some(3),
                    _ => None,
                },
            })
            .collect()
    })
}

fn arb_participant(name: &'static str) -> impl Strategy<Value = Participant> {
    let busy = prop::collection::vec((0i64..72 * 6, 1i64..30, 0u8..3), 0..25);
    (busy, 0i64..4, 0i64..4, any::<bool>(), any::<bool>(), 0usize..3).prop_map(
        move |(busy, before, after, tentative, hours, zone)| {
            let zone = [chrono_tz::UTC, chrono_tz::America::New_York, chrono_tz::Asia::Kolkata][zone];
            let mut p = Participant::new(
                name,
                zone,
                busy.into_iter()
                    .map(|(s, l, st)| BusyInterval {
                        interval: Interval::starting_at(
                            utc(11, 30, 20, 0) + TimeDelta::minutes(10 * s),
                            TimeDelta::minutes(10 * l),
                        ),
                        status: [BusyStatus::Busy, BusyStatus::BusyTentative, BusyStatus::BusyUnavailable][st as usize],
                    })
                    .collect(),
            );
            p.constraints.buffer_before = TimeDelta::minutes(10 * before);
            p.constraints.buffer_after = TimeDelta::minutes(10 * after);
            p.constraints.tentative_is_busy = tentative;
            p.constraints.minimum_notice = TimeDelta::hours(6);
            if hours {
                p.constraints.available =
                    vec!["mon-fri 08:00-18:00".parse().unwrap(), "sat 10:00-12:30".parse().unwrap()];
            }
            p
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn fast_search_agrees_with_the_naive_reference(
        slots in arb_slots(),
        a in arb_participant("patient"),
        b in arb_participant("caregiver"),
        duration in prop::sample::select(vec![15i64, 20, 30, 60]),
        step in prop::sample::select(vec![5i64, 15, 30]),
        limit in 1usize..12,
        spread in any::<bool>(),
        prefer_mornings in any::<bool>(),
        window_start in 0i64..24,
    ) {
        let window = Interval::new(utc(12, 1, 0, 0) + TimeDelta::hours(window_start), utc(12, 4, 0, 0));
        let mut q = MutualQuery::new(window, TimeDelta::minutes(duration), utc(12, 1, 3, 0));
        q.step = TimeDelta::minutes(step);
        q.limit = limit;
        q.spread = spread;
        q.zone = chrono_tz::America::Chicago;
        if prefer_mornings {
            q.preferences = vec!["mornings".parse().unwrap()];
        }
        let participants = vec![a, b];
        let fast = find_mutual(&SlotBook::new(slots.clone()), &participants, &q).unwrap();
        let fast: Vec<(String, Instant)> = fast.slots.into_iter().map(|m| (m.slot, m.interval.start)).collect();
        prop_assert_eq!(fast, naive(&slots, &participants, &q));
    }
}

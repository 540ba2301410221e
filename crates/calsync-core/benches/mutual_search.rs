//! Mutual search at scale: 1,000,000 provider Slots x 3 participants x 5,000 busy windows each.
//!
//! Run with `make bench`; figures go to docs/benchmarks-log.md.

use std::hint::black_box;

use calsync_core::{
    BusyInterval, BusyStatus, Interval, MutualQuery, Participant, ProviderSlot, SlotBook, SlotStatus, find_mutual,
};
use chrono::{TimeDelta, TimeZone, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

/// A small deterministic generator, so every run measures the same data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

const DAYS: i64 = 90;
const SCHEDULES: i64 = 700;
const SLOTS_PER_DAY: i64 = 16;

fn data() -> (Vec<ProviderSlot>, Vec<Participant>, Interval) {
    let origin = Utc.with_ymd_and_hms(2027, 1, 4, 0, 0, 0).unwrap();
    let horizon = Interval::new(origin, origin + TimeDelta::days(DAYS));
    let mut rng = XorShift(0x5eed_cafe_f00d_d00d);
    // Clinic days 08:00-16:00 UTC, 30-minute Slots, ~1.0 M in all, sorted by start as a store returns them.
    let mut slots = Vec::with_capacity((DAYS * SCHEDULES * SLOTS_PER_DAY) as usize);
    for day in 0..DAYS {
        for k in 0..SLOTS_PER_DAY {
            for s in 0..SCHEDULES {
                let start = origin + TimeDelta::days(day) + TimeDelta::hours(8) + TimeDelta::minutes(30 * k);
                slots.push(ProviderSlot {
                    id: format!("s{day}-{k}-{s}"),
                    schedule: format!("Schedule/{s}"),
                    interval: Interval::starting_at(start, TimeDelta::minutes(30)),
                    status: if rng.below(10) == 0 { SlotStatus::Busy } else { SlotStatus::Free },
                    capacity: None,
                });
            }
        }
    }
    let zones = [chrono_tz::America::New_York, chrono_tz::Europe::Berlin, chrono_tz::UTC];
    let participants = zones
        .iter()
        .enumerate()
        .map(|(i, zone)| {
            let busy = (0..5_000)
                .map(|_| {
                    let start = origin + TimeDelta::minutes(5 * rng.below((DAYS * 24 * 12) as u64));
                    BusyInterval {
                        interval: Interval::starting_at(start, TimeDelta::minutes(15 * (1 + rng.below(4)))),
                        status: BusyStatus::Busy,
                    }
                })
                .collect();
            Participant::new(format!("participant-{i}"), *zone, busy)
        })
        .collect();
    (slots, participants, horizon)
}

fn bench(c: &mut Criterion) {
    let (slots, participants, horizon) = data();
    let mut index = c.benchmark_group("slot_book");
    index.sample_size(10);
    index.bench_function("index_1M_sorted_slots", |b| {
        b.iter_batched(|| slots.clone(), SlotBook::new, BatchSize::LargeInput)
    });
    index.finish();
    let slots = SlotBook::new(slots);
    let now = horizon.start - TimeDelta::days(1);
    let base = MutualQuery::new(horizon, TimeDelta::minutes(30), now);
    let mut group = c.benchmark_group("mutual_search_1M_slots_3x5000_busy");
    group.sample_size(20);

    group.bench_function("earliest_first_limit_10", |b| {
        b.iter(|| black_box(find_mutual(&slots, &participants, &base).unwrap()))
    });

    let mut spread = base.clone();
    spread.spread = true;
    group.bench_function("spread_10_days_full_scan", |b| {
        b.iter(|| black_box(find_mutual(&slots, &participants, &spread).unwrap()))
    });

    let mut preferred = base.clone();
    preferred.preferences = vec!["mornings".parse().unwrap(), "tue,thu".parse().unwrap()];
    preferred.zone = chrono_tz::America::New_York;
    group.bench_function("preferences_full_scan", |b| {
        b.iter(|| black_box(find_mutual(&slots, &participants, &preferred).unwrap()))
    });

    let mut busy_patient = participants.clone();
    busy_patient[0].busy.push(BusyInterval { interval: horizon, status: BusyStatus::Busy });
    let mut explain = base.clone();
    explain.explain = true;
    explain.lookahead = TimeDelta::zero();
    group.bench_function("nothing_fits_with_explanation", |b| {
        b.iter(|| black_box(find_mutual(&slots, &busy_patient, &explain).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

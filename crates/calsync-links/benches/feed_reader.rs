//! The reading half of an ingest (`make bench-feed-reader`): Slot lines as `calsync generate`
//! writes them, each read and made ready to store ([`Reader::row`]: parsed, checked, namespaced,
//! stamped with its origin), as the poll does while the batch before is written. No database is
//! written. Figures go to docs/benchmarks-log.md.

use std::hint::black_box;

use calsync_links::{Namespace, Options, Reader};
use calsync_store::Store;
use chrono::Utc;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const LOCATIONS: usize = 100;
const LINES: usize = 10_000;

fn reader() -> Reader {
    let manifest = url::Url::parse("http://publisher.example/ssl/$bulk-publish").unwrap();
    let mut r =
        Reader::new(Namespace("ssl-bench".into()), Options::default(), manifest, "2027-01-04T00:00:00.000Z".into());
    for l in 0..LOCATIONS {
        let location = format!(
            r#"{{"resourceType":"Location","id":"loc-{l}","name":"Clinic {l}","telecom":[{{"system":"phone","value":"+1-555-{l:07}"}}],"address":{{"city":"Springfield","state":"MA","postalCode":"01000"}}}}"#
        );
        let schedule = format!(
            r#"{{"resourceType":"Schedule","id":"sched-{l}","active":true,"actor":[{{"reference":"Location/loc-{l}"}}]}}"#
        );
        r.line("Location", &location).unwrap();
        r.line("Schedule", &schedule).unwrap();
    }
    r
}

fn slot_lines() -> Vec<String> {
    (0..LINES)
        .map(|n| {
            let (l, k) = (n % LOCATIONS, n / LOCATIONS);
            let (day, from) = (4 + k / 10, 14 * 60 + 30 * (k % 10));
            format!(
                r#"{{"resourceType":"Slot","id":"s-{l}-{k}","schedule":{{"reference":"Schedule/sched-{l}"}},"status":"{}","start":"2027-01-{day:02}T{:02}:{:02}:00Z","end":"2027-01-{day:02}T{:02}:{:02}:00Z"}}"#,
                if n % 5 == 0 { "busy" } else { "free" },
                from / 60,
                from % 60,
                (from + 30) / 60,
                (from + 30) % 60,
            )
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = runtime.block_on(Store::connect("sqlite::memory:")).unwrap().with_indexer(calsync_system::INDEXER);
    let lines = slot_lines();
    let mut group = c.benchmark_group("feed_reader");
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function("slot_lines_read_and_prepared", |b| {
        let mut r = reader();
        b.iter(|| {
            let now = Utc::now();
            for line in &lines {
                black_box(r.row(&store, "Slot", line, now).unwrap());
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! What every store test shares: a fresh store on its own database, and data to write.

use calsync_store::Store;
use calsync_store::testing::TestDatabase;
use chrono::Utc;
use serde_json::{Value, json};

/// The instant these tests write at: the store takes its writers' clock.
pub(crate) fn now() -> chrono::DateTime<Utc> {
    Utc::now()
}

/// A fresh store on its own database, removed by `finish`.
pub(crate) struct TestDb {
    pub(crate) store: Store,
    pub(crate) database: TestDatabase,
}

pub(crate) async fn fresh() -> TestDb {
    let database = TestDatabase::create().await;
    TestDb { store: Store::connect(&database.url).await.unwrap(), database }
}

impl TestDb {
    pub(crate) async fn finish(self) {
        self.store.clone().close().await;
        self.database.finish().await;
    }
}

pub(crate) fn slot(schedule: &str, start: &str, end: &str, status: &str) -> Value {
    json!({"resourceType": "Slot", "schedule": {"reference": schedule}, "status": status, "start": start, "end": end})
}

/// Patients `p0000`… with families `F0`…, as many as asked.
pub(crate) fn patients(n: usize) -> Vec<calsync_store::Put> {
    let patient = |i: usize| json!({"resourceType": "Patient", "name": [{"family": format!("F{i}")}]});
    (0..n).map(|i| ("Patient".to_string(), format!("p{i:04}"), patient(i))).collect()
}

/// How many rows `table` has.
pub(crate) async fn rows_in(store: &Store, table: &str) -> i64 {
    calsync_store::testing::number(store, &format!("SELECT COUNT(*) FROM {table}")).await
}

/// [`family_index`] under its first definitions ("v1").
pub(crate) fn family_indexer_v1() -> calsync_store::Indexer {
    calsync_store::Indexer { extract: family_index, fingerprint: || "v1".into(), reads: |_| &["name", "birthDate"] }
}

pub(crate) fn by_family(family: &str) -> calsync_store::search::ResourceSearch {
    use calsync_store::search::{IndexFilter, IndexTerm, Match};
    let term = IndexTerm { system: None, value: Some(family.into()), how: Match::Exact };
    calsync_store::search::ResourceSearch {
        index: vec![IndexFilter::Matches { param: "family".into(), terms: vec![term], negate: false }],
        ..Default::default()
    }
}

pub(crate) fn family_index(resource_type: &str, content: &Value) -> calsync_store::Indexed {
    let mut indexed = calsync_store::Indexed::default();
    if resource_type == "Patient"
        && let Some(family) = content["name"][0]["family"].as_str()
    {
        indexed.terms.push(calsync_store::IndexRow {
            param: "family".into(),
            system: String::new(),
            value: family.to_lowercase(),
            raw: family.into(),
        });
    }
    if let Some(day) = content["birthDate"].as_str() {
        let start = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap().and_time(Default::default()).and_utc();
        let low = start.timestamp_millis();
        indexed.dates.push(calsync_store::DateRow { param: "birthdate".into(), low, high: low + 86_400_000 });
    }
    indexed
}

//! The search index, and its rebuild when its definitions change.

use calsync_store::Store;
use serde_json::json;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_rebuilt_when_its_definitions_change() {
    use calsync_store::search::{DateFilter, DatePrefix, Direction, ResourceSearch, SortBy};
    let db = fresh().await;
    // Written before any index existed.
    let silva = json!({"resourceType": "Patient", "name": [{"family": "Silva"}], "birthDate": "1950-03-02"});
    db.store.update("Patient", "silva", silva, None, now()).await.unwrap();
    let order = (SortBy::Id, Direction::Ascending);
    let v1 = family_indexer_v1();
    let store = Store::connect(&db.database.url).await.unwrap().with_indexer(v1);
    assert_eq!(store.search_resources("Patient", &by_family("silva"), order, None, 10).await.unwrap().total, 0);
    assert_eq!(store.reindex_if_stale().await.unwrap(), Some(1));
    assert_eq!(store.reindex_if_stale().await.unwrap(), None, "built with v1 already");
    assert_eq!(store.search_resources("Patient", &by_family("silva"), order, None, 10).await.unwrap().total, 1);
    let born = |prefix, day: &str| {
        let lo = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").unwrap().and_time(Default::default()).and_utc();
        let lo = lo.timestamp_millis();
        ResourceSearch {
            dates: vec![DateFilter { param: "birthdate".into(), any: vec![(prefix, lo, lo + 86_400_000)] }],
            ..Default::default()
        }
    };
    let count = |s: ResourceSearch| {
        let store = store.clone();
        async move { store.search_resources("Patient", &s, order, None, 10).await.unwrap().total }
    };
    assert_eq!(count(born(DatePrefix::Eq, "1950-03-02")).await, 1);
    assert_eq!(count(born(DatePrefix::Gt, "1950-03-02")).await, 0);
    assert_eq!(count(born(DatePrefix::Sa, "1950-03-01")).await, 1);
    assert_eq!(count(born(DatePrefix::Eb, "1950-03-01")).await, 0);
    // Deleted resources leave the index; a new definition rebuilds it.
    store.delete("Patient", "silva", now()).await.unwrap();
    assert_eq!(store.search_resources("Patient", &by_family("silva"), order, None, 10).await.unwrap().total, 0);
    let v2 = calsync_store::Indexer {
        extract: family_index,
        fingerprint: || "v2".into(),
        reads: |_| &["name", "birthDate"],
    };
    let store = Store::connect(&db.database.url).await.unwrap().with_indexer(v2);
    assert_eq!(store.reindex_if_stale().await.unwrap(), Some(0));
    store.clone().close().await;
    db.finish().await;
}

/// Two processes that start together on a stale index (API replicas, a worker): one rebuilds
/// it, the other then finds it current; every value is indexed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_starting_together_rebuild_the_index_once() {
    use calsync_store::search::{Direction, SortBy};
    let db = fresh().await;
    db.store.put_many(patients(1_500), now()).await.unwrap();
    let indexer = family_indexer_v1();
    let one = Store::connect(&db.database.url).await.unwrap().with_indexer(indexer);
    let other = Store::connect(&db.database.url).await.unwrap().with_indexer(indexer);
    let (a, b) = tokio::join!(one.reindex_if_stale(), other.reindex_if_stale());
    let mut rebuilt = [a.unwrap(), b.unwrap()];
    rebuilt.sort();
    assert_eq!(rebuilt, [None, Some(1_500)]);
    let order = (SortBy::Id, Direction::Ascending);
    let found = one.search_resources("Patient", &by_family("f7"), order, None, 10).await.unwrap();
    assert_eq!((found.total, found.resources.len()), (1, 1));
    assert_eq!(rows_in(&one, "search_index").await, 1_500, "each value indexed once");
    for store in [one, other] {
        store.clone().close().await;
    }
    db.finish().await;
}

/// The rebuild reads the resources a page at a time by `(type, id)`: every resource of every
/// type is indexed once, across pages and from one type to the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_is_rebuilt_page_by_page_across_types() {
    use calsync_store::search::{Direction, SortBy};
    let db = fresh().await;
    let mut items = patients(2_500);
    items
        .extend((0..3).map(|i| ("Organization".to_string(), format!("o{i}"), json!({"resourceType": "Organization"}))));
    items.push((
        "RelatedPerson".into(),
        "r0".into(),
        json!({"resourceType": "RelatedPerson", "birthDate": "1990-01-02"}),
    ));
    assert_eq!(db.store.put_many(items, now()).await.unwrap(), 2_504);
    let indexer = family_indexer_v1();
    let store = Store::connect(&db.database.url).await.unwrap().with_indexer(indexer);
    assert_eq!(store.reindex_if_stale().await.unwrap(), Some(2_504));
    let order = (SortBy::Id, Direction::Ascending);
    for i in [0, 999, 1_000, 1_999, 2_000, 2_499] {
        let found = store.search_resources("Patient", &by_family(&format!("f{i}")), order, None, 10).await.unwrap();
        assert_eq!(found.resources.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [format!("p{i:04}")]);
    }
    let born = calsync_store::search::ResourceSearch {
        dates: vec![calsync_store::search::DateFilter {
            param: "birthdate".into(),
            any: vec![(calsync_store::search::DatePrefix::Eq, 631_238_400_000, 631_324_800_000)],
        }],
        ..Default::default()
    };
    assert_eq!(store.search_resources("RelatedPerson", &born, order, None, 10).await.unwrap().total, 1);
    store.clone().close().await;
    db.finish().await;
}

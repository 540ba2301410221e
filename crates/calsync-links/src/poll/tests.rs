use super::*;
use calsync_store::Ingest;
use calsync_store::testing::TestDatabase;

/// Batches under way at once share no id: one that does waits for the other, so the later
/// line of a repeated id is written last; one that does not goes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sharing_an_id_with_one_under_way_waits_for_it() {
    let db = TestDatabase::create().await;
    let store = Store::connect(&db.url).await.unwrap().with_ingest_batching(IngestBatching { rows: 10, concurrent: 3 });
    let p = register(&store, "http://publisher.example/$bulk-publish", crate::Options::default(), Utc::now())
        .await
        .unwrap();
    let row = |id: &str| {
        let item = Ingest {
            resource_type: "Location".into(),
            id: format!("{}.{id}", p.id),
            digest: 1,
            content: serde_json::json!({"resourceType": "Location"}),
        };
        store.prepare_ingest(item, Utc::now()).unwrap()
    };
    let mut in_flight = InFlight::new(&store, PollClock::starting_at(Utc::now()));
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let under_way = tokio::spawn(async move {
        released.await.ok();
        Ok(IngestTally { created: 7, ..IngestTally::default() })
    });
    in_flight.tasks.push_back((under_way, [id_hash(row("a").id())].into_iter().collect()));
    let mut count = TypeCount::default();

    let wait = Duration::from_millis(300);
    let mut other = vec![row("b")];
    let sent = tokio::time::timeout(wait, in_flight.send(&store, &p, &mut other, &mut count)).await;
    assert!(sent.is_ok_and(|r| r.is_ok()), "a batch of other ids goes at once");
    assert_eq!((in_flight.tasks.len(), count.created), (2, 0));

    let mut again = vec![row("c"), row("a")];
    {
        let send = in_flight.send(&store, &p, &mut again, &mut count);
        tokio::pin!(send);
        assert!(tokio::time::timeout(wait, &mut send).await.is_err(), "a batch with a's id waits for a's batch");
        release.send(()).unwrap();
        send.await.unwrap();
    }
    assert!(again.is_empty());
    in_flight.settle_all(&mut count).await.unwrap();
    assert_eq!(count.created, 7 + 1 + 2);
    db.finish().await;
}

/// A batch that failed fails the file, but only once the batches written beside it are done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_reported_once_the_others_under_way_are_done() {
    let batching = IngestBatching { rows: 1, concurrent: 2 };
    let mut in_flight = InFlight { batching, clock: PollClock::starting_at(Utc::now()), tasks: VecDeque::new() };
    let failing: BatchTask = tokio::spawn(async { Err(StoreError::Invalid("the disk is full".into())) });
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = finished.clone();
    let beside: BatchTask = tokio::spawn(async move {
        released.await.ok();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(IngestTally::default())
    });
    in_flight.tasks.extend([(failing, HashSet::new()), (beside, HashSet::new())]);
    let mut count = TypeCount::default();
    let settle = in_flight.settle_all(&mut count);
    tokio::pin!(settle);
    assert!(tokio::time::timeout(Duration::from_millis(300), &mut settle).await.is_err(), "waits for the other");
    release.send(()).unwrap();
    match settle.await {
        Err(StoreError::Invalid(why)) => assert_eq!(why, "the disk is full"),
        other => panic!("expected the batch's error, got {other:?}"),
    }
    assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
}

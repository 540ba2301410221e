//! Participants' calendar connections.

use calsync_store::StoreError;

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_connections_are_saved_read_and_updated() {
    let db = fresh().await;
    let mut c = calsync_store::CalendarConnection {
        id: "c1".into(),
        participant: "Patient/maria".into(),
        schedule: "maria-calendar".into(),
        kind: "ics".into(),
        host: "calendar.example.org".into(),
        secret: Some("v1:sealed".into()),
        validator: None,
        state: "new".into(),
        reason: None,
        last_success_ms: None,
        next_run_ms: Some(1),
        attempts: 0,
    };
    db.store.save_calendar_connection(&c).await.unwrap();
    assert_eq!(db.store.calendar_connection("c1").await.unwrap(), c);
    c.state = "needs-reconnect".into();
    c.secret = None;
    c.reason = Some("the grant was revoked".into());
    c.attempts = 3;
    db.store.save_calendar_connection(&c).await.unwrap();
    assert_eq!(db.store.calendar_connections_of("Patient/maria").await.unwrap(), vec![c]);
    assert!(db.store.calendar_connections_of("Patient/other").await.unwrap().is_empty());
    assert!(matches!(db.store.calendar_connection("nope").await, Err(StoreError::NotFound(..))));
    db.finish().await;
}

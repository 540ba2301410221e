//! The use cases called directly, as the web page and the assistant will call them: no HTTP,
//! the system wired as `calsync serve` wires it, on a fresh database.

use calsync_core::Interval;
use calsync_store::testing::TestDatabase;
use calsync_system::{Settings, System};
use calsync_usecase::access::{Principal, Scopes};
use calsync_usecase::book::Booking;
use calsync_usecase::find::FindQuery;
use calsync_usecase::{Caller, UseCaseError};
use chrono::{DateTime, Utc};
use serde_json::json;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().to_utc()
}

/// The system on a fresh database, its clock at the start of the demo's week.
async fn demo_week() -> (TestDatabase, Settings, System) {
    let database = TestDatabase::create().await;
    let mut settings = Settings::new("127.0.0.1:0", database.url.clone());
    settings.clock_start = Some(at("2026-12-01T12:00:00Z"));
    let system = System::open(&settings).await.expect("the system opens");
    (database, settings, system)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_hold_book_and_cancel_through_the_use_cases_alone() {
    let (database, settings, system) = demo_week().await;
    let cases = system.use_cases();
    // The operator loads the clinic; Maria, signed in as the page will sign her in, does the rest.
    let operator = cases.context(Caller::Operator, "http://calsync.test");
    let maria = Principal {
        issuer: "https://issuer.test".into(),
        subject: "maria".into(),
        client: Some("calsync-page".into()),
        scopes: Scopes::parse("openid fhirUser launch/patient patient/*.cruds user/*.rs"),
        user: Some("Patient/maria".into()),
        patient: Some("maria".into()),
    };
    let cx = cases.context(Caller::Bearer(maria), "http://calsync.test");
    let slot = |id: &str, start: &str, end: &str| {
        (
            "Slot".to_string(),
            id.to_string(),
            json!({"resourceType": "Slot", "id": id,
            "schedule": {"reference": "Schedule/dr"}, "status": "free", "start": start, "end": end}),
        )
    };
    let written = cases
        .put_resources(
            &operator,
            vec![
                (
                    "Schedule".into(),
                    "dr".into(),
                    json!({"resourceType": "Schedule", "id": "dr", "active": true,
                    "actor": [{"reference": "Practitioner/okafor"}]}),
                ),
                slot("a", "2026-12-07T14:00:00Z", "2026-12-07T14:30:00Z"),
                slot("b", "2026-12-07T15:00:00Z", "2026-12-07T15:30:00Z"),
                ("Patient".into(), "maria".into(), json!({"resourceType": "Patient", "id": "maria"})),
            ],
        )
        .await
        .unwrap();
    assert_eq!(written, 4);

    let mut query = FindQuery::new(Interval::new(at("2026-12-07T00:00:00Z"), at("2026-12-08T00:00:00Z")));
    query.participants = vec![("Patient/maria".into(), true)];
    let found = cases.find(&cx, &query).await.unwrap();
    let starts: Vec<DateTime<Utc>> = found.outcome.slots.iter().map(|m| m.interval.start).collect();
    assert_eq!(starts, [at("2026-12-07T14:00:00Z"), at("2026-12-07T15:00:00Z")]);

    let held = cases.hold(&cx, found.proposal(0).expect("a first option")).await.unwrap();
    assert_eq!(held.appointment.content["status"], "pending");
    assert_eq!(held.expires, cx.now + chrono::TimeDelta::seconds(i64::from(settings.hold_seconds)));
    let booked = cases.book(&cx, Booking::Held(held.appointment.id.clone()), None).await.unwrap();
    assert_eq!(
        (booked["status"].as_str(), booked["id"].as_str()),
        (Some("booked"), Some(held.appointment.id.as_str()))
    );

    // Maria is busy at 14:00 now, and the Slot is taken: 15:00 is what is left.
    let again = cases.find(&cx, &query).await.unwrap();
    let left: Vec<DateTime<Utc>> = again.outcome.slots.iter().map(|m| m.interval.start).collect();
    assert_eq!(left, [at("2026-12-07T15:00:00Z")]);
    // A second booking of the same option is refused with the reason.
    match cases.book(&cx, Booking::Proposed(found.proposal(0).unwrap()), None).await {
        Err(UseCaseError::Conflict(why)) => assert!(why.contains("Slot/a"), "{why}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let cancelled = cases.cancel(&cx, &held.appointment.id).await.unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    let after = cases.find(&cx, &query).await.unwrap();
    assert_eq!(after.outcome.slots.len(), 2, "the time is free again");
    cases.store().clone().close().await;
    database.finish().await;
}

/// `_include` reads what a page names one query per type and round, and adds at most 1,000
/// resources to a page, saying so when it stops there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_includes_at_most_a_thousand_resources_and_says_when_it_stops() {
    use calsync_usecase::search::SearchRequest;
    let database = TestDatabase::create().await;
    let system = System::open(&Settings::new("127.0.0.1:0", database.url.clone())).await.expect("the system opens");
    let cases = system.use_cases();
    let cx = cases.context(Caller::Operator, "http://calsync.test");
    let appointment = |id: &str, people: usize| {
        let participant: Vec<_> = (0..people)
            .map(|k| json!({"actor": {"reference": format!("Practitioner/p{k}")}, "status": "accepted"}))
            .collect();
        (
            "Appointment".to_string(),
            id.to_string(),
            json!({"resourceType": "Appointment", "id": id,
            "status": "proposed", "start": "2026-12-07T14:00:00Z", "end": "2026-12-07T14:30:00Z",
            "participant": participant}),
        )
    };
    let mut resources: Vec<(String, String, serde_json::Value)> = (0..1_100)
        .map(|k| {
            ("Practitioner".into(), format!("p{k}"), json!({"resourceType": "Practitioner", "id": format!("p{k}")}))
        })
        .collect();
    resources.push(appointment("many", 1_100));
    resources.push(appointment("some", 999));
    cases.put_resources(&cx, resources).await.unwrap();

    let search = |id: &str| {
        let pairs =
            vec![("_id".to_string(), id.to_string()), ("_include".to_string(), "Appointment:actor".to_string())];
        SearchRequest::parse("Appointment", &pairs, true, cx.now).unwrap()
    };
    let some = cases.search(&cx, &search("some")).await.unwrap();
    assert_eq!((some.included.len(), some.warnings.len()), (999, 0), "{:?}", some.warnings);
    let many = cases.search(&cx, &search("many")).await.unwrap();
    assert_eq!(many.included.len(), 1_000);
    assert_eq!(many.warnings, ["_include stopped at 1000 resources, the most a page includes"]);
    cases.store().clone().close().await;
    database.finish().await;
}

/// `explain` says to Maria that her daughter cannot come at a time, never when or why; to the
/// daughter, and to a system, it says both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_busy_times_only_to_their_owner() {
    use calsync_core::participant::Blocker;
    let (database, _, system) = demo_week().await;
    let cases = system.use_cases();
    let operator = cases.context(Caller::Operator, "http://calsync.test");
    let busy = |id: &str, schedule: &str, start: &str, end: &str| {
        (
            "Slot".to_string(),
            id.to_string(),
            json!({"resourceType": "Slot", "id": id,
            "schedule": {"reference": format!("Schedule/{schedule}")}, "status": "busy", "start": start, "end": end}),
        )
    };
    let schedule = |id: &str, actor: &str| {
        (
            "Schedule".to_string(),
            id.to_string(),
            json!({"resourceType": "Schedule", "id": id, "active": true,
            "actor": [{"reference": actor}]}),
        )
    };
    cases
        .put_resources(
            &operator,
            vec![
                schedule("dr", "Practitioner/okafor"),
                (
                    "Slot".into(),
                    "a".into(),
                    json!({"resourceType": "Slot", "id": "a", "schedule": {"reference": "Schedule/dr"},
                    "status": "free", "start": "2026-12-07T14:00:00Z", "end": "2026-12-07T14:30:00Z"}),
                ),
                ("Patient".into(), "maria".into(), json!({"resourceType": "Patient", "id": "maria"})),
                (
                    "RelatedPerson".into(),
                    "ana".into(),
                    json!({"resourceType": "RelatedPerson", "id": "ana", "patient": {"reference": "Patient/maria"}}),
                ),
                schedule("maria-busy", "Patient/maria"),
                schedule("ana-busy", "RelatedPerson/ana"),
                busy("m1", "maria-busy", "2026-12-07T14:10:00Z", "2026-12-07T14:20:00Z"),
                busy("a1", "ana-busy", "2026-12-07T13:50:00Z", "2026-12-07T14:40:00Z"),
            ],
        )
        .await
        .unwrap();
    let person = |who: &str| {
        Caller::Bearer(Principal {
            issuer: "https://issuer.test".into(),
            subject: who.into(),
            client: None,
            scopes: Scopes::parse("patient/*.cruds user/*.rs"),
            user: Some(who.into()),
            patient: None,
        })
    };
    let mut query = FindQuery::new(Interval::new(at("2026-12-07T00:00:00Z"), at("2026-12-08T00:00:00Z")));
    query.participants = vec![("Patient/maria".into(), true), ("RelatedPerson/ana".into(), true)];
    query.explain = true;
    // (who asks, whose busy windows they see).
    for (caller, sees) in [
        (person("Patient/maria"), vec!["Patient/maria"]),
        (person("RelatedPerson/ana"), vec!["Patient/maria", "RelatedPerson/ana"]),
        (Caller::Operator, vec!["Patient/maria", "RelatedPerson/ana"]),
    ] {
        let cx = cases.context(caller.clone(), "http://calsync.test");
        let found = cases.find(&cx, &query).await.unwrap();
        let rejected = &found.outcome.explanation.rejected;
        assert_eq!(rejected.len(), 1, "{caller:?}");
        for blocked in &rejected[0].blocked_by {
            let shown = blocked.blockers.iter().any(|b| matches!(b, Blocker::Busy { .. }));
            assert_eq!(shown, sees.contains(&blocked.participant.as_str()), "{caller:?} about {}", blocked.participant);
        }
        let named: Vec<&str> = rejected[0].blocked_by.iter().map(|b| b.participant.as_str()).collect();
        assert_eq!(named, ["Patient/maria", "RelatedPerson/ana"], "who cannot come is said to everyone");
    }
    cases.store().clone().close().await;
    database.finish().await;
}

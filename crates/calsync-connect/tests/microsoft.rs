//! The Microsoft Graph connector against the emulator (real HTTP on loopback): paging,
//! `$select`, showAs, rotating refresh tokens and faults.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{App, HttpServer};
use calsync_connect::ConnectorError;
use calsync_connect::microsoft::{Credentials, MicrosoftCalendar, MicrosoftEndpoints, OAuthClient, SELECT};
use calsync_core::{BusyStatus, Interval};
use calsync_emulators::microsoft::{Event, Fault, Shared, State};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

fn at(d: i64, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 1, h, 0, 0).unwrap() + TimeDelta::days(d)
}

fn event(d: i64, show_as: &str) -> Event {
    Event {
        start: at(d, 9),
        end: at(d, 10),
        show_as: show_as.into(),
        all_day: false,
        cancelled: false,
        subject: "Therapy session".into(),
    }
}

async fn emulator() -> (MicrosoftCalendar, Shared) {
    let state = State::new("calsync-app", "app-secret");
    {
        let mut s = state.lock().unwrap();
        // 25 events: days 0..25, every fifth free, every seventh out of office, day 3 tentative,
        // day 4 cancelled, day 6 working elsewhere.
        let events: Vec<Event> = (0..25)
            .map(|d| match d {
                3 => event(d, "tentative"),
                4 => Event { cancelled: true, ..event(d, "busy") },
                6 => event(d, "workingElsewhere"),
                d if d % 5 == 0 => event(d, "free"),
                d if d % 7 == 0 => event(d, "oof"),
                d => event(d, "busy"),
            })
            .collect();
        s.mailboxes.insert("ana@example.com".into(), events);
        s.refresh_tokens.insert("refresh-ana".into(), "ana@example.com".into());
        s.max_page = Some(10);
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
    let routes = state.clone();
    let server = HttpServer::new(move || App::new().configure(calsync_emulators::microsoft::routes(routes.clone())))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    let endpoints = MicrosoftEndpoints {
        graph: base.parse().unwrap(),
        token: format!("{base}common/oauth2/v2.0/token").parse().unwrap(),
    };
    let oauth = OAuthClient { id: "calsync-app".into(), secret: "app-secret".into() };
    (MicrosoftCalendar::new(endpoints, oauth, Duration::from_secs(2)).unwrap(), state)
}

fn ana() -> Credentials {
    Credentials { refresh_token: "refresh-ana".into(), access_token: None }
}

fn horizon() -> Interval {
    Interval::new(at(0, 0), at(30, 0))
}

#[tokio::test]
async fn every_page_is_followed_and_only_blocking_events_count() {
    let (graph, state) = emulator().await;
    let busy = graph.busy(&mut ana(), horizon()).await.unwrap();
    let s = state.lock().unwrap();
    assert_eq!(s.pages, 3, "25 events, 10 per page");
    assert!(s.selects.iter().all(|x| x == SELECT), "never asks for subjects: {:?}", s.selects);
    let days: Vec<(i64, BusyStatus)> =
        busy.iter().map(|b| ((b.interval.start - at(0, 9)).num_days(), b.status)).collect();
    let expected: Vec<(i64, BusyStatus)> = (0..25)
        .filter_map(|d| match d {
            3 => Some((d, BusyStatus::BusyTentative)),
            4 | 6 => None,
            d if d % 5 == 0 => None,
            d if d % 7 == 0 => Some((d, BusyStatus::BusyUnavailable)),
            d => Some((d, BusyStatus::Busy)),
        })
        .collect();
    assert_eq!(days, expected);
}

#[tokio::test]
async fn each_refresh_rotates_the_refresh_token() {
    let (graph, _) = emulator().await;
    let mut credentials = ana();
    graph.busy(&mut credentials, horizon()).await.unwrap();
    assert_ne!(credentials.refresh_token, "refresh-ana", "the rotated token replaced the used one");
    // The used token is dead: whoever kept it can no longer sign in.
    let err = graph.busy(&mut ana(), horizon()).await.unwrap_err();
    assert!(matches!(&err, ConnectorError::Unauthorized(m) if m.contains("reconnect")), "{err:?}");
    // The rotated one works, and rotates again on the next refresh.
    let kept = credentials.refresh_token.clone();
    credentials.access_token = None;
    graph.busy(&mut credentials, horizon()).await.unwrap();
    assert_ne!(credentials.refresh_token, kept);
}

#[tokio::test]
async fn an_expired_access_token_mid_paging_is_refreshed_and_the_page_read_again() {
    let (graph, state) = emulator().await;
    let mut credentials = ana();
    let complete = graph.busy(&mut credentials, horizon()).await.unwrap();
    // Page 1 answers, page 2 finds the access token expired.
    state.lock().unwrap().faults.extend([None, Some(Fault::AccessTokenExpired)]);
    let token = credentials.access_token.clone();
    assert_eq!(graph.busy(&mut credentials, horizon()).await.unwrap(), complete);
    assert_ne!(credentials.access_token, token, "refreshed between the pages");
}

#[tokio::test]
async fn throttling_and_outages_are_transient_and_no_partial_result_escapes() {
    let (graph, state) = emulator().await;
    let mut credentials = ana();
    state.lock().unwrap().faults.push_back(Some(Fault::Throttled { retry_after: 5 }));
    let err = graph.busy(&mut credentials, horizon()).await.unwrap_err();
    assert!(
        matches!(err, ConnectorError::Transient { retry_after: Some(d), .. } if d == Duration::from_secs(5)),
        "{err:?}"
    );
    // An outage on the third page fails the whole call: no partial set of windows escapes.
    state.lock().unwrap().faults.extend([None, None, Some(Fault::Unavailable)]);
    let err = graph.busy(&mut credentials, horizon()).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Transient { .. }), "{err:?}");
    assert_eq!(graph.busy(&mut credentials, horizon()).await.unwrap().len(), 18);
}

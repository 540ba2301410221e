//! The Google connector against the emulator (real HTTP on loopback): chunked freeBusy, token
//! refresh, and the fault matrix.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{App, HttpServer};
use calsync_connect::ConnectorError;
use calsync_connect::google::{Credentials, GoogleCalendar, GoogleEndpoints, OAuthClient};
use calsync_core::Interval;
use calsync_emulators::google::{Account, Fault, Shared, State};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

fn at(d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 1, h, 0, 0).unwrap() + TimeDelta::days(i64::from(d))
}

async fn emulator() -> (GoogleCalendar, Shared) {
    let state = State::new("calsync-client", "client-secret");
    let busy = vec![(at(1, 9), at(1, 10)), (at(89, 23), at(90, 2)), (at(150, 14), at(150, 15))];
    state.lock().unwrap().add_account("maria@example.com", "refresh-maria", Account { busy });
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
    let routes = state.clone();
    let server = HttpServer::new(move || App::new().configure(calsync_emulators::google::routes(routes.clone())))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    let endpoints = GoogleEndpoints { api: base.parse().unwrap(), token: format!("{base}token").parse().unwrap() };
    let oauth = OAuthClient { id: "calsync-client".into(), secret: "client-secret".into() };
    (GoogleCalendar::new(endpoints, oauth, Duration::from_secs(2)).unwrap(), state)
}

fn horizon() -> Interval {
    Interval::new(at(0, 0), at(200, 0))
}

fn maria() -> Credentials {
    Credentials { refresh_token: "refresh-maria".into(), access_token: None }
}

#[tokio::test]
async fn free_busy_is_read_in_chunks_of_at_most_90_days() {
    let (google, state) = emulator().await;
    let mut credentials = maria();
    let busy = google.busy(&mut credentials, horizon()).await.unwrap();
    assert_eq!(state.lock().unwrap().requests, 3, "200 days = 90 + 90 + 20");
    assert!(credentials.access_token.is_some(), "the access token is kept for the next call");
    let ranges: Vec<(DateTime<Utc>, DateTime<Utc>)> = busy.iter().map(|b| (b.interval.start, b.interval.end)).collect();
    // The window across the first chunk boundary (day 90, 00:00) comes back in two parts.
    assert_eq!(
        ranges,
        vec![(at(1, 9), at(1, 10)), (at(89, 23), at(90, 0)), (at(90, 0), at(90, 2)), (at(150, 14), at(150, 15))]
    );
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_once() {
    let (google, state) = emulator().await;
    let mut credentials = maria();
    google.busy(&mut credentials, Interval::new(at(0, 0), at(10, 0))).await.unwrap();
    let first = credentials.access_token.clone();
    state.lock().unwrap().faults.push_back(Fault::AccessTokenExpired);
    let busy = google.busy(&mut credentials, Interval::new(at(0, 0), at(10, 0))).await.unwrap();
    assert_eq!(busy.len(), 1);
    assert_ne!(credentials.access_token, first, "a new access token replaced the refused one");
    // Refused again right after a refresh: the connection needs the participant, not a loop.
    state.lock().unwrap().faults.extend([Fault::AccessTokenExpired, Fault::AccessTokenExpired]);
    let err = google.busy(&mut credentials, Interval::new(at(0, 0), at(10, 0))).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Unauthorized(_)), "{err:?}");
}

#[tokio::test]
async fn a_revoked_grant_needs_reconnecting_and_is_not_retried() {
    let (google, state) = emulator().await;
    state.lock().unwrap().refresh_tokens.clear();
    let err = google.busy(&mut maria(), horizon()).await.unwrap_err();
    assert!(matches!(&err, ConnectorError::Unauthorized(m) if m.contains("reconnect")), "{err:?}");
    assert_eq!(state.lock().unwrap().requests, 0, "no calendar request without a token");
    assert!(!err.to_string().contains("refresh-maria"), "no secret in messages");
}

#[tokio::test]
async fn rate_limits_and_backend_errors_are_transient_with_the_servers_delay() {
    let (google, state) = emulator().await;
    let range = Interval::new(at(0, 0), at(10, 0));
    let mut credentials = maria();
    for (fault, retry_after) in [
        (Fault::RateLimited { retry_after: 7 }, Some(Duration::from_secs(7))),
        (Fault::QuotaExceeded, None),
        (Fault::Backend, None),
    ] {
        state.lock().unwrap().faults.push_back(fault.clone());
        let err = google.busy(&mut credentials, range).await.unwrap_err();
        assert!(
            matches!(&err, ConnectorError::Transient { retry_after: r, .. } if *r == retry_after),
            "{fault:?}: {err:?}"
        );
    }
    assert_eq!(google.busy(&mut credentials, range).await.unwrap().len(), 1, "and then it works again");
}

#[tokio::test]
async fn a_wrong_client_secret_is_not_authorized() {
    let (google, state) = emulator().await;
    state.lock().unwrap().client.1 = "rotated".into();
    let err = google.busy(&mut maria(), horizon()).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Unauthorized(_)), "{err:?}");
}

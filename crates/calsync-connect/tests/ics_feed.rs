//! The ICS feed connector against a real HTTP server on loopback whose answers the test
//! scripts: conditional GET, changes, and every failure class.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use calsync_connect::egress::Egress;
use calsync_connect::ics::IcsFeed;
use calsync_connect::{ConnectorError, Fetched, Validator};
use calsync_core::Interval;
use chrono::{TimeZone, Utc};

/// What the feed server answers next.
#[derive(Clone)]
enum Script {
    Feed { body: String, etag: &'static str },
    Status { code: u16, retry_after: Option<&'static str> },
    Slow,
}

#[derive(Clone)]
struct Feed {
    script: Arc<Mutex<Script>>,
    /// The If-None-Match of the last request.
    seen: Arc<Mutex<Option<String>>>,
}

async fn serve(req: HttpRequest, feed: web::Data<Feed>) -> HttpResponse {
    let inm = req.headers().get("If-None-Match").and_then(|v| v.to_str().ok()).map(String::from);
    *feed.seen.lock().unwrap() = inm.clone();
    let script = feed.script.lock().unwrap().clone();
    match script {
        Script::Feed { body, etag } => {
            if inm.as_deref() == Some(etag) {
                return HttpResponse::NotModified().finish();
            }
            HttpResponse::Ok().content_type("text/calendar").insert_header(("ETag", etag)).body(body)
        }
        Script::Status { code, retry_after } => {
            let mut r = HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap());
            if let Some(after) = retry_after {
                r.insert_header(("Retry-After", after));
            }
            r.finish()
        }
        Script::Slow => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            HttpResponse::Ok().finish()
        }
    }
}

fn calendar(events: &[(&str, &str)]) -> String {
    let mut s = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\n");
    for (n, (start, end)) in events.iter().enumerate() {
        s += &format!(
            "BEGIN:VEVENT\r\nUID:{n}@test\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Oncology with Dr House\r\nLOCATION:Ward 7\r\nDTSTART:{start}\r\nDTEND:{end}\r\nEND:VEVENT\r\n"
        );
    }
    s + "END:VCALENDAR\r\n"
}

async fn start(script: Script) -> (String, Feed) {
    let feed = Feed { script: Arc::new(Mutex::new(script)), seen: Arc::new(Mutex::new(None)) };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let data = web::Data::new(feed.clone());
    let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(serve)))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    (format!("http://127.0.0.1:{port}/private/s3cr3t-token/basic.ics"), feed)
}

fn horizon() -> Interval {
    Interval::new(
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
    )
}

#[tokio::test]
async fn a_feed_is_read_then_asked_for_changes_only() {
    let body = calendar(&[("20261207T140000Z", "20261207T150000Z"), ("20261208T090000Z", "20261208T093000Z")]);
    let (url, feed) = start(Script::Feed { body, etag: "\"v1\"" }).await;
    let reader = IcsFeed::new(Duration::from_secs(2), Egress::unrestricted()).unwrap();
    let Fetched::Busy { busy, validator, warnings } =
        reader.fetch(&url, None, horizon(), chrono_tz::UTC).await.unwrap()
    else {
        panic!("the first fetch reads the feed");
    };
    assert_eq!(busy.len(), 2);
    assert_eq!(busy[0].interval.start, Utc.with_ymd_and_hms(2026, 12, 7, 14, 0, 0).unwrap());
    assert!(warnings.is_empty());
    assert_eq!(validator, Validator { etag: Some("\"v1\"".into()), last_modified: None });
    // Unchanged: the server sees the ETag and says so.
    assert_eq!(reader.fetch(&url, Some(&validator), horizon(), chrono_tz::UTC).await.unwrap(), Fetched::NotModified);
    assert_eq!(feed.seen.lock().unwrap().as_deref(), Some("\"v1\""));
    // Changed: new windows and a new validator.
    *feed.script.lock().unwrap() =
        Script::Feed { body: calendar(&[("20261209T100000Z", "20261209T110000Z")]), etag: "\"v2\"" };
    let Fetched::Busy { busy, validator, .. } =
        reader.fetch(&url, Some(&validator), horizon(), chrono_tz::UTC).await.unwrap()
    else {
        panic!("a changed feed is read again");
    };
    assert_eq!(busy.len(), 1);
    assert_eq!(validator.etag.as_deref(), Some("\"v2\""));
}

#[tokio::test]
async fn every_failure_is_classified_and_names_the_host_only() {
    let (url, feed) = start(Script::Status { code: 503, retry_after: Some("7") }).await;
    let reader = IcsFeed::new(Duration::from_secs(1), Egress::unrestricted()).unwrap();
    let fetch = || reader.fetch(&url, None, horizon(), chrono_tz::UTC);
    type Expected = fn(&ConnectorError) -> bool;
    let cases: Vec<(Script, Expected)> = vec![
        (
            Script::Status { code: 503, retry_after: Some("7") },
            |e| matches!(e, ConnectorError::Transient { retry_after: Some(d), .. } if *d == Duration::from_secs(7)),
        ),
        (Script::Status { code: 429, retry_after: None }, |e| {
            matches!(e, ConnectorError::Transient { retry_after: None, .. })
        }),
        (Script::Status { code: 401, retry_after: None }, |e| matches!(e, ConnectorError::Unauthorized(_))),
        (Script::Status { code: 403, retry_after: None }, |e| matches!(e, ConnectorError::Unauthorized(_))),
        (Script::Status { code: 410, retry_after: None }, |e| matches!(e, ConnectorError::Gone(_))),
        (Script::Status { code: 404, retry_after: None }, |e| matches!(e, ConnectorError::Gone(_))),
        (Script::Feed { body: "this is not a calendar".into(), etag: "\"x\"" }, |e| {
            matches!(e, ConnectorError::Invalid(_))
        }),
        (Script::Feed { body: "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:garbage\r\n".into(), etag: "\"y\"" }, |e| {
            matches!(e, ConnectorError::Invalid(_))
        }),
        (Script::Slow, |e| matches!(e, ConnectorError::Transient { reason, .. } if reason.contains("timed out"))),
    ];
    for (script, expected) in cases {
        *feed.script.lock().unwrap() = script;
        let err = fetch().await.unwrap_err();
        assert!(expected(&err), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("127.0.0.1") && !message.contains("s3cr3t"), "{message}");
    }
}

#[tokio::test]
async fn a_closed_port_is_a_transient_failure() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let reader = IcsFeed::new(Duration::from_secs(1), Egress::unrestricted()).unwrap();
    let err =
        reader.fetch(&format!("http://127.0.0.1:{port}/x.ics"), None, horizon(), chrono_tz::UTC).await.unwrap_err();
    assert!(matches!(err, ConnectorError::Transient { .. }), "{err:?}");
}

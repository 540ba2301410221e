//! A calendar server whose answer is larger than calsync holds (`MAX_CALENDAR_BYTES`): the ICS
//! and CalDAV connectors refuse it as unreadable, naming the host, instead of reading it whole.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use calsync_connect::caldav::{CalDav, CalDavAccount};
use calsync_connect::egress::Egress;
use calsync_connect::ics::IcsFeed;
use calsync_connect::{ConnectorError, MAX_CALENDAR_BYTES};
use calsync_core::Interval;
use chrono::{TimeZone, Utc};

/// Answers every request, whatever its method, with a calendar padded past the limit: one
/// event, then comment lines.
async fn oversized_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            let mut body = String::from(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nBEGIN:VEVENT\r\nUID:1@test\r\nDTSTAMP:20260101T000000Z\r\n\
                 DTSTART:20261201T100000Z\r\nDTEND:20261201T110000Z\r\nEND:VEVENT\r\n",
            );
            let padding = format!("X-PADDING:{}\r\n", "x".repeat(1000));
            while body.len() <= MAX_CALENDAR_BYTES {
                body.push_str(&padding);
            }
            body.push_str("END:VCALENDAR\r\n");
            HttpResponse::MultiStatus().content_type("text/calendar").body(body)
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    port
}

fn horizon() -> Interval {
    Interval::new(
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
    )
}

fn refused_as_too_large(result: Result<impl std::fmt::Debug, ConnectorError>) {
    match result {
        Err(ConnectorError::Invalid(message)) => {
            assert!(message.contains("127.0.0.1") && message.contains("larger than"), "{message}");
        }
        other => panic!("expected the answer refused as too large, got {other:?}"),
    }
}

#[tokio::test]
async fn an_answer_larger_than_calsync_holds_is_refused_by_ics_and_caldav() {
    let port = oversized_server().await;
    let timeout = Duration::from_secs(30);
    let ics = IcsFeed::new(timeout, Egress::unrestricted()).unwrap();
    refused_as_too_large(
        ics.fetch(&format!("http://127.0.0.1:{port}/feed.ics"), None, horizon(), chrono_tz::UTC).await,
    );
    let caldav = CalDav::new(timeout, Egress::unrestricted()).unwrap();
    let account =
        CalDavAccount { url: format!("http://127.0.0.1:{port}/cal/"), username: "u".into(), password: "p".into() };
    refused_as_too_large(caldav.busy(&account, horizon(), chrono_tz::UTC).await);
}

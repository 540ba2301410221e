//! The CalDAV connector against a real Radicale server (PyPI `radicale` 3.9, installed into
//! `~/.cache/calsync-radicale-venv` on first use, started on a free loopback port), with a
//! weekly event across the US spring-forward change, one instance deleted and one moved.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use calsync_connect::caldav::{Answered, CalDav, CalDavAccount};
use calsync_connect::egress::Egress;
use calsync_core::{BusyStatus, Interval};
use chrono::{DateTime, TimeZone, Utc};

struct Radicale {
    child: Child,
    base: String,
    _dir: TempDir,
}

impl Drop for Radicale {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn python() -> PathBuf {
    let venv = std::env::var_os("CALSYNC_RADICALE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/calsync-radicale-venv"));
    let python = venv.join("bin/python");
    let installed = Command::new(&python).args(["-c", "import radicale"]).status().is_ok_and(|s| s.success());
    if !installed {
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().is_ok_and(|s| s.success())
            && Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "radicale==3.9.0"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(ok, "installing radicale from PyPI into {} failed", venv.display());
    }
    python
}

async fn radicale() -> Radicale {
    let python = python();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("calsync-radicale-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = none\n[storage]\nfilesystem_folder = {}\n[logging]\nlevel = warning\n",
            dir.join("collections").display()
        ),
    )
    .unwrap();
    let child = Command::new(python)
        .args(["-m", "radicale", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("radicale starts");
    // Dropping the server (also on the panic below) stops the process and removes its folder.
    let server = Radicale { child, base: format!("http://127.0.0.1:{port}"), _dir: TempDir(dir) };
    for _ in 0..100 {
        if reqwest::get(format!("{}/", server.base)).await.is_ok() {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("radicale did not start on {}", server.base);
}

const NEW_YORK: &str = "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nTZNAME:EDT\r\nDTSTART:19700308T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nTZNAME:EST\r\nDTSTART:19701101T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";

/// Physical therapy on Mondays at 09:00 in New York from 1 March 2027 (DST starts on the
/// 14th), four times; the 8 March one cancelled (EXDATE), the 22 March one moved to 11:00.
fn therapy() -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync//test//EN\r\n{NEW_YORK}\
BEGIN:VEVENT\r\nUID:therapy@test\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Physical therapy\r\nLOCATION:Clinic\r\n\
DTSTART;TZID=America/New_York:20270301T090000\r\nDTEND;TZID=America/New_York:20270301T100000\r\n\
RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=America/New_York:20270308T090000\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nUID:therapy@test\r\nDTSTAMP:20270101T000000Z\r\nSUMMARY:Physical therapy (moved)\r\n\
RECURRENCE-ID;TZID=America/New_York:20270322T090000\r\n\
DTSTART;TZID=America/New_York:20270322T110000\r\nDTEND;TZID=America/New_York:20270322T120000\r\nEND:VEVENT\r\n\
END:VCALENDAR\r\n"
    )
}

fn utc(m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, m, d, h, 0, 0).unwrap()
}

async fn calendar_with_therapy(server: &Radicale) -> CalDavAccount {
    let client = reqwest::Client::new();
    let collection = format!("{}/maria/therapy/", server.base);
    let mk = client
        .request(reqwest::Method::from_bytes(b"MKCALENDAR").unwrap(), &collection)
        .basic_auth("maria", Some("app-password"))
        .send()
        .await
        .unwrap();
    assert!(mk.status().is_success(), "MKCALENDAR: {}", mk.status());
    let put = client
        .put(format!("{collection}therapy.ics"))
        .basic_auth("maria", Some("app-password"))
        .header("Content-Type", "text/calendar")
        .body(therapy())
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "PUT: {} {}", put.status(), put.text().await.unwrap_or_default());
    CalDavAccount { url: collection, username: "maria".into(), password: "app-password".into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn radicale_recurring_events_across_dst_with_exceptions_both_ways() {
    let server = radicale().await;
    let account = calendar_with_therapy(&server).await;
    let caldav = CalDav::new(Duration::from_secs(10), Egress::unrestricted()).unwrap();
    let march = Interval::new(utc(3, 1, 0), utc(4, 1, 0));
    // 14:00Z in EST, 13:00Z in EDT; the 8th deleted; the 22nd at 11:00 EDT = 15:00Z.
    let expected =
        vec![(utc(3, 1, 14), utc(3, 1, 15)), (utc(3, 15, 13), utc(3, 15, 14)), (utc(3, 22, 15), utc(3, 22, 16))];
    let times = |busy: &[calsync_core::BusyInterval]| -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let mut t: Vec<_> = busy.iter().map(|b| (b.interval.start, b.interval.end)).collect();
        t.sort();
        t
    };
    let server_side =
        caldav.free_busy(&account, march, chrono_tz::UTC).await.unwrap().expect("Radicale 3.9 answers free-busy-query");
    assert_eq!(times(&server_side), expected, "the server's free/busy");
    let expanded = caldav.calendar_query(&account, march, chrono_tz::UTC).await.unwrap();
    assert_eq!(times(&expanded), expected, "the events, expanded by calsync");
    assert!(expanded.iter().all(|b| b.status == BusyStatus::Busy));
    let (busy, answered) = caldav.busy(&account, march, chrono_tz::UTC).await.unwrap();
    assert_eq!((times(&busy), answered), (expected, Answered::FreeBusy));
    // A collection that does not exist is gone, not empty.
    let missing = CalDavAccount { url: format!("{}/maria/nothing/", server.base), ..account };
    let err = caldav.busy(&missing, march, chrono_tz::UTC).await.unwrap_err();
    assert!(matches!(err, calsync_connect::ConnectorError::Gone(_)), "{err:?}");
}

/// A server without free-busy-query support (501): the connector falls back to
/// calendar-query and expands the events itself.
#[tokio::test]
async fn a_server_refusing_free_busy_is_read_through_calendar_query() {
    use actix_web::{App, HttpResponse, HttpServer, web};
    async fn report(body: String) -> HttpResponse {
        if body.contains("free-busy-query") {
            return HttpResponse::NotImplemented().finish();
        }
        let escaped = therapy().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        HttpResponse::build(actix_web::http::StatusCode::from_u16(207).unwrap())
            .content_type("application/xml; charset=utf-8")
            .body(format!(
                r#"<?xml version="1.0"?><d:multistatus xmlns:d="DAV:" xmlns:cal="urn:ietf:params:xml:ns:caldav"><d:response><d:href>/c/therapy.ics</d:href><d:propstat><d:prop><cal:calendar-data>{escaped}</cal:calendar-data></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>"#
            ))
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server =
        HttpServer::new(|| App::new().default_service(web::to(report))).workers(1).listen(listener).unwrap().run();
    tokio::spawn(server);
    let account = CalDavAccount { url: format!("{base}/c/"), username: "u".into(), password: "p".into() };
    let caldav = CalDav::new(Duration::from_secs(5), Egress::unrestricted()).unwrap();
    let (busy, answered) =
        caldav.busy(&account, Interval::new(utc(3, 1, 0), utc(4, 1, 0)), chrono_tz::UTC).await.unwrap();
    assert_eq!(answered, Answered::CalendarQuery);
    let starts: Vec<DateTime<Utc>> = busy.iter().map(|b| b.interval.start).collect();
    assert_eq!(starts, vec![utc(3, 1, 14), utc(3, 15, 13), utc(3, 22, 15)]);
}

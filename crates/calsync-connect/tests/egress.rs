//! The egress policy on real connections over loopback: which requests are sent, which are
//! refused before anything leaves, and what a refused calendar says.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use calsync_connect::ConnectorError;
use calsync_connect::egress::{Egress, EgressClient, Refused};
use calsync_connect::ics::IcsFeed;
use calsync_core::Interval;
use chrono::{TimeZone, Utc};
use reqwest::Url;

/// A server on `address` that counts the requests it receives. `/hop` redirects to `to`; every
/// other path answers an empty calendar.
async fn counting_server(address: &str, to: Option<String>) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(format!("{address}:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let server = HttpServer::new(move || {
        let (counted, to) = (counted.clone(), to.clone());
        App::new().default_service(web::to(move |req: HttpRequest| {
            counted.fetch_add(1, Ordering::SeqCst);
            let to = to.clone();
            async move {
                match to {
                    Some(to) if req.path() == "/hop" => HttpResponse::Found().insert_header(("Location", to)).finish(),
                    _ => HttpResponse::Ok()
                        .content_type("text/calendar")
                        .body("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:test\r\nEND:VCALENDAR\r\n"),
                }
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    (port, hits)
}

fn client(egress: Egress) -> EgressClient {
    EgressClient::new(reqwest::Client::builder().timeout(Duration::from_secs(5)), egress).unwrap()
}

fn url(text: &str) -> Url {
    Url::parse(text).unwrap()
}

fn horizon() -> Interval {
    Interval::new(
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap(),
    )
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_unless_allowed_and_nothing_is_sent() {
    let (port, hits) = counting_server("127.0.0.1", None).await;
    let by_name = url(&format!("http://localhost:{port}/feed.ics"));

    let err = client(Egress::public()).get(by_name.clone()).unwrap().send().await.unwrap_err();
    let refused = Refused::in_chain(&err).expect("the resolver's refusal is the cause");
    assert_eq!(refused.host, "localhost");
    assert!(refused.address.is_loopback(), "{refused}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing reached the server");

    // Allowing 127.0.0.1 alone: the resolver keeps that address of `localhost` (and drops ::1).
    let one = Egress::new(false, &["127.0.0.1".into()]).unwrap();
    let answer = client(one).get(by_name.clone()).unwrap().send().await.unwrap();
    assert!(answer.status().is_success());
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // An address written as an IP is refused before any request is made.
    let refused = client(Egress::public()).get(url(&format!("http://127.0.0.1:{port}/feed.ics"))).unwrap_err();
    assert_eq!(refused.address.to_string(), "127.0.0.1");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_redirect_to_an_address_not_permitted_is_not_followed() {
    // The first server is allowed; it redirects to a second one on 127.0.0.2, which is not.
    let (inner, inner_hits) = counting_server("127.0.0.2", None).await;
    let target = format!("http://127.0.0.2:{inner}/latest/meta-data/");
    let (outer, outer_hits) = counting_server("127.0.0.1", Some(target)).await;
    let hop = url(&format!("http://127.0.0.1:{outer}/hop"));

    let allowed = Egress::new(false, &["127.0.0.1/32".into()]).unwrap();
    let err = client(allowed).get(hop.clone()).unwrap().send().await.unwrap_err();
    let refused = Refused::in_chain(&err).expect("the redirect policy's refusal is the cause");
    assert_eq!(refused.address.to_string(), "127.0.0.2");
    assert!(!refused.to_string().contains("meta-data"), "never the path: {refused}");
    assert_eq!((outer_hits.load(Ordering::SeqCst), inner_hits.load(Ordering::SeqCst)), (1, 0));

    // Unrestricted, the same redirect is followed: the refusal above was the policy's.
    let answer = client(Egress::unrestricted()).get(hop).unwrap().send().await.unwrap();
    assert!(answer.status().is_success());
    assert_eq!((outer_hits.load(Ordering::SeqCst), inner_hits.load(Ordering::SeqCst)), (2, 1));
}

#[tokio::test]
async fn an_ics_feed_on_a_private_address_is_refused_by_host_never_by_its_token() {
    let (port, hits) = counting_server("127.0.0.1", None).await;
    let reader = IcsFeed::new(Duration::from_secs(5), Egress::public()).unwrap();
    for address in [
        format!("http://localhost:{port}/private/s3cr3t-token/basic.ics"),
        format!("webcal://127.0.0.1:{port}/s3cr3t-token.ics"),
    ] {
        let err = reader.fetch(&address, None, horizon(), chrono_tz::UTC).await.unwrap_err();
        assert!(matches!(err, ConnectorError::Refused(_)), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("not a public address") && !text.contains("s3cr3t"), "{text}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    let open = IcsFeed::new(Duration::from_secs(5), Egress::unrestricted()).unwrap();
    let fetched = open.fetch(&format!("http://localhost:{port}/basic.ics"), None, horizon(), chrono_tz::UTC).await;
    assert!(fetched.is_ok(), "{fetched:?}");
}

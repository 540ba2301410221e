//! Random requests against the real server, seeded and bounded: every route, with malformed and
//! hostile values, at and over every size limit. None may answer 5xx or drop the connection;
//! every 4xx is an OperationOutcome; afterwards the server still reads, writes and searches.
//!
//! `CALSYNC_RANDOM_REQUESTS` sets how many (1,200 by default; `make fuzz` sends 20,000), and
//! `CALSYNC_RANDOM_SEED` the seed (printed, so a failure can be replayed).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

/// A small, fast generator (xorshift64*): the same seed, the same requests.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const TYPES: &[&str] = &[
    "Slot",
    "Schedule",
    "Location",
    "Appointment",
    "Patient",
    "RelatedPerson",
    "Practitioner",
    "PractitionerRole",
    "HealthcareService",
    "Organization",
    "Device",
    "Task",
    "Consent",
    "Bundle",
    "Nope",
    "slot",
    "",
];

/// Ids: known ones, valid unknown ones, and every kind of invalid one.
fn id(d: &mut Dice) -> String {
    let long = "a".repeat(65);
    let choices: Vec<String> = vec![
        "s0".into(),
        "s1".into(),
        "dr-okafor".into(),
        "ana-busy".into(),
        "maria".into(),
        "riverside".into(),
        "x".into(),
        long,
        "..".into(),
        "%2e%2e".into(),
        "a%00b".into(),
        "%C3%A9".into(),
        "%FF%FE".into(),
        "1".into(),
        "-".into(),
        "a.b-c".into(),
        "$everything".into(),
        "_history".into(),
        "%20".into(),
    ];
    d.pick(&choices).clone()
}

/// Query values: good, edge and hostile.
fn value(d: &mut Dice) -> String {
    let day = day().0;
    let fixed = [
        day.clone(),
        format!("{day}T14:00:00Z"),
        format!("ge{day}"),
        format!("lt{day}T23:59:59%2B14:00"),
        "2027-03-14".into(),
        "%2B262143-12-31T23:59:59".into(),
        "-262143-01-01".into(),
        "99999-01-01".into(),
        "2027-02-30".into(),
        "0000-00-00".into(),
        "ap2027".into(),
        "America/New_York".into(),
        "Pacific/Kiritimati".into(),
        "Mars/Olympus".into(),
        "30".into(),
        "0".into(),
        "-1".into(),
        "18446744073709551616".into(),
        "1e309".into(),
        "NaN".into(),
        "true".into(),
        "Patient/maria".into(),
        "RelatedPerson/ana".into(),
        "Practitioner/okafor".into(),
        "Schedule/dr-okafor".into(),
        "Location/riverside".into(),
        "http://other.example/fhir/Patient/1".into(),
        "Appointment:slot".into(),
        "Slot:schedule".into(),
        "Schedule:actor".into(),
        "free".into(),
        "busy,free,busy-unavailable".into(),
        "a%C3%A9a".into(),
        "%E2%80%AE".into(),
        "%00".into(),
        "%".into(),
        "%%%".into(),
        "%ZZ".into(),
        "".into(),
        ",".into(),
        "|".into(),
        "http://loinc.org|".into(),
        "-start".into(),
        "json".into(),
        "xml".into(),
        "count".into(),
        "0a0b".into(),
        "deadbeef".repeat(80),
    ];
    match d.below(10) {
        0 => "x".repeat(*d.pick(&[100, 2_000, 20_000])),
        1 => vec!["a"; *d.pick(&[99, 100, 101, 1_000])].join(","),
        _ => d.pick(&fixed).clone(),
    }
}

const NAMES: &[&str] = &[
    "start",
    "end",
    "timezone",
    "duration",
    "participant",
    "schedule",
    "practitioner",
    "location",
    "location-reference",
    "organization",
    "specialty",
    "service-type",
    "visit-type",
    "status",
    "actor",
    "patient",
    "date",
    "name",
    "name:contains",
    "name:exact",
    "_id",
    "_id:not",
    "_lastUpdated",
    "_count",
    "_offset",
    "_cursor",
    "_include",
    "_include:iterate",
    "_revinclude",
    "_sort",
    "_elements",
    "_summary",
    "_format",
    "_pretty",
    "_since",
    "explain",
    "nope",
    "start:missing",
    "schedule:Schedule",
    "",
];

/// A query string, kept under 60,000 bytes: the client writes no longer URI (the `http` crate's
/// bound); longer heads are sent by hand in [`heads_the_http_layer_refuses`].
fn query(d: &mut Dice) -> String {
    let n = *d.pick(&[0, 1, 2, 3, 5, 8, 99, 100, 101]);
    let mut pairs: Vec<String> = Vec::new();
    let mut length = 0;
    for _ in 0..n {
        let name = *d.pick(NAMES);
        let pair = if d.chance(5) { name.to_string() } else { format!("{name}={}", value(d)) };
        if length + pair.len() > 60_000 {
            continue;
        }
        length += pair.len() + 1;
        pairs.push(pair);
    }
    pairs.join("&")
}

fn path(d: &mut Dice) -> String {
    let t = *d.pick(TYPES);
    let id = id(d);
    let templates = [
        "/metadata".to_string(),
        format!("/{t}"),
        format!("/{t}/_search"),
        format!("/{t}/{id}"),
        format!("/{t}/{id}/_history"),
        format!("/{t}/{id}/_history/{}", d.pick(&["1", "2", "0", "-1", "x", "99999999999999999999"])),
        "/SearchParameter/Slot-end".into(),
        "/Appointment/$find".into(),
        "/Appointment/$find-mutual".into(),
        "/Appointment/$hold".into(),
        "/Appointment/$book".into(),
        format!("/Appointment/{id}/$cancel"),
        format!("/Appointment/{id}/$ics"),
        format!("/Schedule/{id}/$import-ics"),
        format!("/Slot/{id}/$booking-link"),
        "/$booking-return".into(),
        "/$bulk-publish".into(),
        format!(
            "/$bulk-publish/{}",
            d.pick(&[
                "locations.ndjson",
                "schedules.ndjson",
                "slots-2027-W10.ndjson",
                "slots-262144-W01.ndjson",
                "slots-2027-W99.ndjson",
                "x"
            ])
        ),
        format!("/OperationDefinition/{}", d.pick(&["appointment-find-mutual", "appointment-hold", "x"])),
        "/publishers".into(),
        format!("/publishers/{id}"),
        format!("/publishers/{id}/$poll"),
        "/connections".into(),
        "/connections/$sync-all".into(),
        format!("/connections/{id}"),
        format!("/connections/{id}/$sync"),
        format!("/connect/{}/start", d.pick(&["google", "microsoft", "x"])),
        format!("/connect/{}/callback", d.pick(&["google", "microsoft", "x"])),
        "/".into(),
        "/%2e%2e/etc/passwd".into(),
        format!("/{}", "z".repeat(3_000)),
    ];
    let p = d.pick(&templates).clone();
    let q = query(d);
    if q.is_empty() { p } else { format!("{p}?{q}") }
}

/// Request bodies: FHIR resources and Parameters, good and bad, and plain garbage.
fn body(d: &mut Dice) -> (Vec<u8>, &'static str) {
    let day = day().0;
    let slot = json!({"resourceType": "Slot", "schedule": {"reference": "Schedule/dr-okafor"}, "status": "free",
        "start": format!("{day}T16:00:00Z"), "end": format!("{day}T16:30:00Z")});
    let appointment = json!({"resourceType": "Appointment", "status": "proposed",
        "start": format!("{day}T14:00:00Z"), "end": format!("{day}T14:30:00Z"), "slot": [{"reference": "Slot/s0"}],
        "participant": [{"actor": {"reference": "Patient/maria"}, "status": "needs-action"}]});
    let deep = format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000));
    let choices: Vec<(Vec<u8>, &'static str)> = vec![
        (slot.to_string().into_bytes(), "application/fhir+json"),
        (json!({"resourceType": "Slot", "status": 7}).to_string().into_bytes(), "application/fhir+json"),
        (
            json!({"resourceType": "Parameters", "parameter": [{"name": "appointment", "resource": appointment}]})
                .to_string()
                .into_bytes(),
            "application/fhir+json",
        ),
        (
            json!({"resourceType": "Parameters", "parameter": [{"name": "appointment-reference", "valueReference": {"reference": "Appointment/x"}}]})
                .to_string()
                .into_bytes(),
            "application/fhir+json",
        ),
        (
            json!({"resourceType": "Parameters", "parameter": [{"name": "start", "valueDate": day}, {"name": "end", "valueDate": "2027-99-99"}]})
                .to_string()
                .into_bytes(),
            "application/fhir+json",
        ),
        (json!({"resourceType": "Parameters", "parameter": "x"}).to_string().into_bytes(), "application/fhir+json"),
        (json!({"manifest": "http://127.0.0.1:9/$bulk-publish"}).to_string().into_bytes(), "application/json"),
        (json!({"participant": "Patient/maria", "kind": "ics", "url": "http://127.0.0.1:9/c.ics"}).to_string().into_bytes(), "application/json"),
        (deep.into_bytes(), "application/fhir+json"),
        (b"{\"resourceType\":\"Slot\",".to_vec(), "application/fhir+json"),
        (b"\xff\xfe\x00garbage".to_vec(), "application/fhir+json"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20270101T000000Z\r\nRRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n".to_vec(), "text/calendar"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n".to_vec(), "text/calendar"),
        (format!("status={}", vec!["free"; 150].join("&status=")).into_bytes(), "application/x-www-form-urlencoded"),
        (b"<Slot xmlns=\"http://hl7.org/fhir\"><status value=\"free\"/></Slot>".to_vec(), "application/fhir+xml"),
        (vec![b'{'; 1024 * 1024 + 1], "application/fhir+json"),
        (Vec::new(), "application/fhir+json"),
    ];
    let (b, ct) = d.pick(&choices);
    (b.clone(), ct)
}

fn method(d: &mut Dice) -> Method {
    d.pick(&[
        Method::GET,
        Method::GET,
        Method::GET,
        Method::POST,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::PATCH,
        Method::OPTIONS,
    ])
    .clone()
}

/// A method the route takes, so that most requests reach calsync's handlers.
fn usual_method(path: &str, d: &mut Dice) -> Method {
    let route = path.split('?').next().unwrap_or_default();
    let operation = route.rsplit('/').next().unwrap_or_default();
    match operation {
        "$hold" | "$book" | "$cancel" | "$import-ics" | "$poll" | "$sync" | "$sync-all" | "_search" => Method::POST,
        "$find" | "$find-mutual" => d.pick(&[Method::GET, Method::POST]).clone(),
        "$ics" | "_history" | "metadata" | "$booking-link" | "$booking-return" | "start" | "callback" => Method::GET,
        _ if route.starts_with("/$bulk-publish")
            || route.starts_with("/OperationDefinition")
            || route.starts_with("/SearchParameter")
            || route.contains("/_history/") =>
        {
            Method::GET
        }
        _ if route.starts_with("/publishers") || route.starts_with("/connections") => {
            d.pick(&[Method::GET, Method::POST, Method::DELETE]).clone()
        }
        _ => d.pick(&[Method::GET, Method::GET, Method::PUT, Method::POST, Method::DELETE, Method::HEAD]).clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_get_answers_never_a_5xx() {
    let count: usize = std::env::var("CALSYNC_RANDOM_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(1_200);
    let seed: u64 = std::env::var("CALSYNC_RANDOM_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("CALSYNC_RANDOM_SEED={seed} CALSYNC_RANDOM_REQUESTS={count}");
    let app = spawn_app_with(|s| {
        s.secret_key = Some("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".into());
        s.hold_seconds = 5;
    })
    .await;
    load_clinic(&app).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let token = system_token(&app.issuer);
    let mut dice = Dice(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut unsendable = Vec::new();
    for n in 0..count {
        if Instant::now() > deadline {
            println!("stopped at the time bound after {n} requests");
            break;
        }
        let path = path(&mut dice);
        let method = if dice.chance(60) { usual_method(&path, &mut dice) } else { method(&mut dice) };
        let mut request = client.request(method.clone(), app.url(&path));
        if matches!(method, Method::POST | Method::PUT | Method::PATCH) || dice.chance(5) {
            let (bytes, content_type) = body(&mut dice);
            let content_type = if dice.chance(10) {
                *dice.pick(&["text/plain", "", "application/xml", "multipart/form-data; boundary=x"])
            } else {
                content_type
            };
            request = request.header("Content-Type", content_type).body(bytes);
        }
        if dice.chance(20) {
            request = request.header(
                "Accept",
                *dice.pick(&[
                    "application/fhir+xml",
                    "text/html",
                    "*/*",
                    "application/fhir+json;fhirVersion=4.0",
                    "garbage",
                ]),
            );
        }
        if dice.chance(10) {
            request = request.header("If-Match", *dice.pick(&["W/\"1\"", "\"x\"", "W/\"99999999999999999999\""]));
        }
        if dice.chance(10) {
            request = request.header("If-None-Exist", query(&mut dice));
        }
        if dice.chance(10) {
            request = request.header("Idempotency-Key", *dice.pick(&["k", "", "k2"]));
        }
        if dice.chance(5) {
            request = request.header("Prefer", "handling=strict");
        }
        // Mostly a system token, so that requests reach every handler; else none, or one that
        // is no token at all.
        if !dice.chance(10) {
            request = request.bearer_auth(&token);
        } else if dice.chance(50) {
            let odd = *dice.pick(&["Bearer", "Bearer ", "Basic dXNlcjpwdw==", "Bearer a.b.c", "bearer ..."]);
            request = request.header("Authorization", odd);
        }
        let described = format!("request {n} (seed {seed}): {method} {}", &path[..path.len().min(300)]);
        let response = match request.send().await {
            Ok(response) => response,
            // A request the client cannot even write (an id the URL parser normalises away into
            // something it refuses) tells nothing about the server.
            Err(e) if e.is_builder() => {
                if unsendable.len() < 5 {
                    unsendable.push(format!("{e:?}"));
                }
                *statuses.entry(0).or_default() += 1;
                continue;
            }
            Err(e) => panic!("{described}: no answer: {e}"),
        };
        let status = response.status();
        *statuses.entry(status.as_u16()).or_default() += 1;
        assert!(!status.is_server_error(), "{described}: {status}: {}", response.text().await.unwrap_or_default());
        if status.is_client_error() && method != Method::HEAD {
            let content_type =
                response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let text = response.text().await.unwrap_or_default();
            // In XML when the request asked for it (Accept or _format), JSON otherwise.
            let json = if content_type.starts_with("application/fhir+xml") {
                calsync_fhir::xml::to_json(&text).unwrap_or_else(|e| panic!("{described}: {status}: {e}: {text}"))
            } else {
                assert!(
                    content_type.starts_with("application/fhir+json"),
                    "{described}: {status} as {content_type:?}: {text}"
                );
                text.clone()
            };
            let outcome: Value =
                serde_json::from_str(&json).unwrap_or_else(|_| panic!("{described}: {status}: {text}"));
            assert_eq!(outcome["resourceType"], "OperationOutcome", "{described}: {text}");
            assert!(outcome["issue"][0]["diagnostics"].as_str().is_some_and(|d| !d.is_empty()), "{described}: {text}");
        }
    }
    println!("answers by status: {statuses:?}; not sendable: {unsendable:?}");

    // The server still reads, writes and searches.
    assert_eq!(app.get("/metadata").await.status(), 200);
    let slot = json!({"resourceType": "Slot", "id": "after-the-storm", "schedule": {"reference": "Schedule/after"}, "status": "free",
        "start": "2031-01-06T09:00:00Z", "end": "2031-01-06T09:30:00Z"});
    let written = app.put("/Slot/after-the-storm", &slot, None).await;
    assert_eq!(written.status(), StatusCode::CREATED, "{}", written.text().await.unwrap());
    let found: Value = app.get("/Slot?schedule=Schedule/after").await.json().await.unwrap();
    assert_eq!(found["total"], 1, "{found}");
    app.database.finish().await;
}

/// What the HTTP layer (actix-web) answers before calsync reads a request, as docs/api.md says:
/// a request line over 65,534 bytes (the `http` crate's bound on a URI) or raw bytes it cannot
/// parse are a 400, and a head over 128 KiB a 431, both without a body; the server goes on
/// answering. Under those bounds, calsync answers.
#[tokio::test]
async fn heads_the_http_layer_refuses() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let address = app.base.trim_start_matches("http://").to_string();
    let send = |head: String| {
        let address = address.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
            String::from_utf8_lossy(&answer).to_string()
        }
    };
    let token = system_token(&app.issuer);
    let get = |query: String| {
        format!(
            "GET /Location?{query} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
    };
    let fits = send(get(format!("name={}", "a".repeat(60_000)))).await;
    assert!(fits.starts_with("HTTP/1.1 200") && fits.contains("\"searchset\""), "{}", &fits[..fits.len().min(300)]);
    assert!(send(get(format!("name={}", "a".repeat(70_000)))).await.starts_with("HTTP/1.1 400"));
    let long_header = format!("GET /metadata HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n", "a".repeat(140_000));
    assert!(send(long_header).await.starts_with("HTTP/1.1 431"));
    let raw = "GET /Slot?name=\u{1}\u{7f} HTTP/1.1\r\nHost: x\r\n\r\n".to_string();
    assert!(send(raw).await.starts_with("HTTP/1.1 400"));
    assert_eq!(app.get("/metadata").await.status(), 200);
    app.database.finish().await;
}

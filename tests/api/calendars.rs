//! Calendar connections: ICS feeds and CalDAV by address, Google and Microsoft through OAuth.

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calendar_connections_are_created_synced_listed_and_deleted() {
    // Without a secret key the server cannot keep credentials: 503, said clearly.
    let plain = spawn_app().await;
    let resp = plain
        .post("/connections", &json!({"participant": "Patient/maria", "kind": "ics", "url": "https://x.example/c.ics"}))
        .await;
    outcome(resp, StatusCode::SERVICE_UNAVAILABLE).await;
    plain.database.finish().await;

    let app = spawn_app_with(|s| s.secret_key = Some("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".into())).await;
    load_clinic(&app).await;
    let consent = json!({"resourceType": "Consent", "id": "maria-sync", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/maria"}, "provision": {"type": "permit"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]}});
    assert!(app.put("/Consent/maria-sync", &consent, None).await.status().is_success());
    let url = serve_feed(busy_at("1400", "1500"));
    for (bad, status) in [
        (json!({"participant": "Patient/nobody", "kind": "ics", "url": url}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Practitioner/okafor", "kind": "ics", "url": url}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "ics"}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "ics", "url": "file:///etc/passwd"}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "caldav", "url": url}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "google", "url": url}), StatusCode::BAD_REQUEST),
        (json!({"participant": "Patient/maria", "kind": "fax", "url": url}), StatusCode::BAD_REQUEST),
    ] {
        outcome(app.post("/connections", &bad).await, status).await;
    }
    let resp = app.post("/connections", &json!({"participant": "Patient/maria", "kind": "ics", "url": url})).await;
    assert_eq!(resp.status(), 201);
    assert!(resp.headers().contains_key("location"));
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["state"], "new");
    assert!(created["host"].as_str().unwrap().starts_with("127.0.0.1:"), "{created}");
    assert!(!created.to_string().contains("secret-token-81"), "the address stays sealed: {created}");
    let id = created["id"].as_str().unwrap();
    // Sync now: Maria is busy 14:00-15:00Z on the test day, in her derived Schedule.
    let synced: Value =
        app.client.post(app.url(&format!("/connections/{id}/$sync"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(synced["state"], "ok", "{synced}");
    assert!(synced["lastSuccess"].is_string() && synced["nextRun"].is_string());
    let schedule = created["schedule"].as_str().unwrap().trim_start_matches("Schedule/").to_string();
    let busy: Value = app.get(&format!("/Slot?schedule={schedule}")).await.json().await.unwrap();
    assert_eq!(busy["total"], 1, "{busy}");
    assert!(!busy.to_string().contains("Dentist"), "no event text");
    let path = find_path().replace("&participant=RelatedPerson/ana", "");
    assert_eq!(starts(&proposals(&app, &path).await), vec!["15:00", "15:30"], "the synced busy time counts");
    let listed: Value = app.get("/connections?participant=Patient/maria").await.json().await.unwrap();
    assert_eq!(listed["connections"].as_array().unwrap().len(), 1);
    outcome(app.get("/connections?participant=Location/riverside").await, StatusCode::BAD_REQUEST).await;
    outcome(app.get("/connections/unknown").await, StatusCode::NOT_FOUND).await;
    // Deleting the connection takes its busy Slots with it.
    assert_eq!(app.client.delete(app.url(&format!("/connections/{id}"))).send().await.unwrap().status(), 204);
    let busy: Value = app.get(&format!("/Slot?schedule={schedule}")).await.json().await.unwrap();
    assert_eq!(busy["total"], 0);
    outcome(app.get(&format!("/connections/{id}")).await, StatusCode::NOT_FOUND).await;
    app.database.finish().await;
}

/// Serves an emulator's routes on a random loopback port; returns its base URL (no slash).
fn serve_emulator(configure: impl Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure.clone()))
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    base
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_and_microsoft_calendars_connect_through_oauth_with_pkce_and_least_scopes() {
    use calsync_emulators::{google, microsoft};
    let (g, m) = (google::State::new("calsync-google", "g-secret"), microsoft::State::new("calsync-ms", "m-secret"));
    let (gs, ms) = (g.clone(), m.clone());
    let google_base = serve_emulator(move |cfg| google::routes(gs.clone())(cfg));
    let graph_base = serve_emulator(move |cfg| microsoft::routes(ms.clone())(cfg));
    let (busy_start, busy_end) = {
        let d = (chrono::Utc::now() + chrono::TimeDelta::days(3)).date_naive().and_hms_opt(14, 0, 0).unwrap().and_utc();
        (d, d + chrono::TimeDelta::hours(1))
    };
    g.lock().unwrap().accounts.insert("ann".into(), google::Account { busy: vec![(busy_start, busy_end)] });
    m.lock().unwrap().mailboxes.insert(
        "bob".into(),
        vec![microsoft::Event {
            start: busy_start,
            end: busy_end,
            show_as: "busy".into(),
            all_day: false,
            cancelled: false,
            subject: "Chemotherapy".into(),
        }],
    );
    let (gb, mb) = (google_base.clone(), graph_base.clone());
    let app = spawn_app_with(move |s| {
        s.secret_key = Some("q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=".into());
        s.google = Some(calsync_system::OAuthProvider {
            client_id: "calsync-google".into(),
            client_secret: "g-secret".into(),
            authorize_url: format!("{gb}/o/oauth2/v2/auth"),
            token_url: format!("{gb}/token"),
            api_url: format!("{gb}/"),
        });
        s.microsoft = Some(calsync_system::OAuthProvider {
            client_id: "calsync-ms".into(),
            client_secret: "m-secret".into(),
            authorize_url: format!("{mb}/common/oauth2/v2.0/authorize"),
            token_url: format!("{mb}/common/oauth2/v2.0/token"),
            api_url: format!("{mb}/"),
        });
    })
    .await;
    load_clinic(&app).await;
    for (participant, id) in [("Patient/maria", "maria-sync"), ("RelatedPerson/ana", "ana-sync")] {
        let consent = json!({"resourceType": "Consent", "id": id, "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/maria"}, "performer": [{"reference": participant}],
            "provision": {"type": "permit"},
            "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]}});
        assert!(app.put(&format!("/Consent/{id}"), &consent, None).await.status().is_success());
    }
    // A browser: keeps cookies, follows nothing by itself here, so each hop is checked.
    let browser = Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let hop = |url: String| {
        let browser = browser.clone();
        async move { browser.get(url).header("Accept", "application/json").send().await.unwrap() }
    };
    // The app starts each authorization with the caller's token; the browser follows from there.
    let token = system_token(&app.issuer);
    let start = |path: &str| browser.get(app.url(path)).bearer_auth(&token).send();

    for (provider, participant, account, scope) in [
        ("google", "Patient/maria", "ann", "https://www.googleapis.com/auth/calendar.freebusy"),
        ("microsoft", "RelatedPerson/ana", "bob", "offline_access Calendars.ReadBasic"),
    ] {
        match provider {
            "google" => g.lock().unwrap().consent.next_account = Some(account.into()),
            _ => m.lock().unwrap().consent.next_account = Some(account.into()),
        }
        let started = start(&format!("/connect/{provider}/start?participant={participant}")).await.unwrap();
        assert_eq!(started.status(), 302, "{provider}");
        let to_provider = started.headers()["location"].to_str().unwrap().to_string();
        let q = query_of(&to_provider);
        assert_eq!(q["scope"], scope, "least scopes only");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["redirect_uri"], app.url(&format!("/connect/{provider}/callback")));
        if provider == "google" {
            assert_eq!((q["access_type"].as_str(), q["prompt"].as_str()), ("offline", "consent"));
        }
        let consented = hop(to_provider).await;
        assert_eq!(consented.status(), 302);
        let back = consented.headers()["location"].to_str().unwrap().to_string();
        let created = hop(back.clone()).await;
        assert_eq!(created.status(), 201, "{provider}: {}", created.text().await.unwrap());
        let c: Value = created.json().await.unwrap();
        assert_eq!(
            (c["kind"].as_str(), c["participant"].as_str(), c["state"].as_str()),
            (Some(provider), Some(participant), Some("new"))
        );
        assert!(!c.to_string().contains("emulated"), "no token in the answer: {c}");
        // The code works once.
        outcome(hop(back).await, StatusCode::BAD_REQUEST).await;
        // The connection syncs with the refresh token it got.
        let id = c["id"].as_str().unwrap();
        let synced: Value =
            app.client.post(app.url(&format!("/connections/{id}/$sync"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(synced["state"], "ok", "{synced}");
        let schedule = synced["schedule"].as_str().unwrap();
        let busy = bundle(&app, &format!("schedule={schedule}&status=busy")).await;
        assert_eq!(busy["total"], 1, "{provider}: {busy}");
    }
    // Each sync is on the audit trail: whose calendar, which Schedule, nothing of its events.
    let synced: Value = app.get("/AuditEvent?subtype=sync&patient=Patient/maria").await.json().await.unwrap();
    assert_eq!(synced["total"], 1, "{synced}");
    assert!(synced["entry"][0]["resource"]["entity"].to_string().contains("Schedule/"), "{synced}");
    // Bob's event subject never reached calsync.
    assert!(m.lock().unwrap().selects.iter().all(|s| !s.contains("subject")));

    // Declining at the provider connects nothing, and says so.
    g.lock().unwrap().consent.next_account = None;
    let started = start("/connect/google/start?participant=Patient/maria").await.unwrap();
    let declined = hop(started.headers()["location"].to_str().unwrap().to_string()).await;
    let back = declined.headers()["location"].to_str().unwrap().to_string();
    assert!(back.contains("error=access_denied"), "{back}");
    let issue = outcome(hop(back).await, StatusCode::BAD_REQUEST).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("access_denied"), "{issue}");
    let listed: Value = app.get("/connections?participant=Patient/maria").await.json().await.unwrap();
    assert_eq!(listed["connections"].as_array().unwrap().len(), 1);

    // A consent page sent to someone else: their browser does not hold the binding of the one
    // that started, so nothing is connected, whoever's calendar consented.
    g.lock().unwrap().consent.next_account = Some("mallory".into());
    let started = start("/connect/google/start?participant=Patient/maria").await.unwrap();
    let to_provider = started.headers()["location"].to_str().unwrap().to_string();
    let elsewhere = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let consented = elsewhere.get(to_provider).send().await.unwrap();
    let back = consented.headers()["location"].to_str().unwrap().to_string();
    let issue = outcome(elsewhere.get(back).send().await.unwrap(), StatusCode::BAD_REQUEST).await;
    assert!(issue["diagnostics"].as_str().unwrap().contains("another browser"), "{issue}");
    let listed: Value = app.get("/connections?participant=Patient/maria").await.json().await.unwrap();
    assert_eq!(listed["connections"].as_array().unwrap().len(), 1, "still only Ann's calendar");

    // A forged state, an unknown provider, a participant who does not exist.
    outcome(hop(app.url("/connect/google/callback?state=forged&code=x")).await, StatusCode::BAD_REQUEST).await;
    outcome(start("/connect/yahoo/start?participant=Patient/maria").await.unwrap(), StatusCode::NOT_FOUND).await;
    outcome(start("/connect/google/start?participant=Patient/nobody").await.unwrap(), StatusCode::BAD_REQUEST).await;

    // Ana's consent is revoked: her connection is purged by the Consent write itself, before
    // any sync: busy Slots and credentials gone, the connection says why.
    let mut revoked: Value = app.get("/Consent/ana-sync").await.json().await.unwrap();
    revoked["status"] = json!("inactive");
    assert_eq!(app.put("/Consent/ana-sync", &revoked, None).await.status(), 200);
    let listed: Value = app.get("/connections?participant=RelatedPerson/ana").await.json().await.unwrap();
    let ana = &listed["connections"][0];
    assert_eq!(ana["state"], "consent-withdrawn", "{ana}");
    assert!(ana["reason"].as_str().unwrap().contains("1 busy windows and the credentials were deleted"), "{ana}");
    let schedule = ana["schedule"].as_str().unwrap();
    assert_eq!(bundle(&app, &format!("schedule={schedule}&status=busy")).await["total"], 0);
    // Maria's connection is untouched by Ana's consent.
    let listed: Value = app.get("/connections?participant=Patient/maria").await.json().await.unwrap();
    assert_eq!(listed["connections"][0]["state"], "ok");
    app.database.finish().await;
}

/// How many busy Slots Ana's Schedule holds.
async fn ana_busy_slots(app: &TestApp) -> u64 {
    let bundle: Value = app.get("/Slot?schedule=ana-busy&_count=1000").await.json().await.unwrap();
    bundle["total"].as_u64().unwrap()
}

/// A calendar app's export of `events` one-hour events, one every six hours from 500 days ago,
/// each with the title, description, attendees and location real exports carry.
fn realistic_export(events: usize) -> String {
    let first = chrono::Utc::now().date_naive().and_hms_opt(9, 0, 0).unwrap().and_utc() - chrono::TimeDelta::days(500);
    let mut ics = String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example Corp.//Calendar 16.0//EN\r\n");
    for k in 0..events {
        let start = first + chrono::TimeDelta::hours(6 * k as i64);
        let stamp = |t: chrono::DateTime<chrono::Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
        ics.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:{k}-9f1c2e7a-3b4d-4e5f-8a9b-0c1d2e3f4a5b@example.com\r\nDTSTAMP:20260101T000000Z\r\n\
             DTSTART:{}\r\nDTEND:{}\r\nSUMMARY:Physiotherapy follow-up with the care team\r\n\
             DESCRIPTION:Bring the exercise diary and the list of medicines. Parking is behind the main \r\n \
             building\\, entrance B. Call the front desk if you are more than ten minutes late. Lorem ipsum \r\n \
             dolor sit amet\\, consectetur adipiscing elit\\, sed do eiusmod tempor incididunt ut labore.\r\n\
             LOCATION:Riverside Clinic\\, 12 River Road\\, Springfield\r\n\
             ATTENDEE;CN=Maria Lopez;ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:maria@example.com\r\n\
             ATTENDEE;CN=Ana Lopez;ROLE=OPT-PARTICIPANT;PARTSTAT=TENTATIVE:mailto:ana@example.com\r\n\
             ORGANIZER;CN=Front Desk:mailto:desk@example.com\r\nSEQUENCE:0\r\nSTATUS:CONFIRMED\r\nEND:VEVENT\r\n",
            stamp(start),
            stamp(start + chrono::TimeDelta::hours(1)),
        ));
    }
    ics.push_str("END:VCALENDAR\r\n");
    ics
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_calendars_are_bounded_and_real_exports_fit() {
    let app = spawn_app().await;
    load_clinic(&app).await;
    assert_eq!(import_ics(&app, "ana-busy", &busy_at("1400", "1500")).await.status(), 200);
    assert_eq!(ana_busy_slots(&app).await, 1);

    // A rule repeating every second, one repeating every minute of every hour, a zone 99 hours
    // ahead: each refused, naming the limit and the line; the earlier upload stays.
    let event = |lines: &str| {
        format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:1\r\n{lines}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    };
    let minutes: Vec<String> = (0..60).map(|m| m.to_string()).collect();
    let hours: Vec<String> = (0..24).map(|h| h.to_string()).collect();
    let hostile = [
        (event("DTSTART:20261205T000000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=SECONDLY;INTERVAL=2"), "line 7", "limit per calendar"),
        (
            event(&format!(
                "DTSTART:20261205T000000Z\r\nDURATION:PT30S\r\nRRULE:FREQ=DAILY;BYHOUR={};BYMINUTE={}",
                hours.join(","),
                minutes.join(",")
            )),
            "line 1",
            "busy windows",
        ),
        (
            "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:X\r\nBEGIN:STANDARD\r\nDTSTART:16010101T000000\r\n\
             TZOFFSETFROM:+9999\r\nTZOFFSETTO:+9999\r\nRRULE:FREQ=DAILY\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
             BEGIN:VEVENT\r\nUID:1\r\nDTSTART;TZID=X:20261205T000000\r\nDURATION:PT1H\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
                .to_string(),
            "line 6",
            "out of range",
        ),
    ];
    for (ics, line, limit) in hostile {
        let issue = outcome(import_ics(&app, "ana-busy", &ics).await, StatusCode::BAD_REQUEST).await;
        let said = issue["diagnostics"].as_str().unwrap();
        assert!(said.contains(line) && said.contains(limit), "{said}");
        assert_eq!(ana_busy_slots(&app).await, 1, "the earlier upload stays");
    }

    // A 2.2 MB export of 3,000 events is read: four events a day from yesterday to 180 days ahead.
    let export = realistic_export(3_000);
    assert!(export.len() > 2_200_000, "{}", export.len());
    let resp = import_ics(&app, "ana-busy", &export).await;
    assert_eq!(resp.status(), 200);
    let busy = ana_busy_slots(&app).await;
    assert!((723..=725).contains(&busy), "{busy}");

    // Over the limit of 20 MiB: 413, saying the limit; nothing changes.
    let mut huge = realistic_export(3_000);
    while huge.len() <= calsync_usecase::import_calendar::MAX_BYTES {
        huge.push_str(&export);
    }
    let issue = outcome(import_ics(&app, "ana-busy", &huge).await, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert_eq!(issue["code"], "too-costly");
    let said = issue["diagnostics"].as_str().unwrap();
    assert!(said.contains(&calsync_usecase::import_calendar::MAX_BYTES.to_string()), "{said}");
    assert_eq!(ana_busy_slots(&app).await, busy);
    app.database.finish().await;
}

//! Black-box tests of the `calsync` command on the demo week (tests/fixtures/demo).

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(path: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "tests", "fixtures", path].iter().collect();
    p.to_string_lossy().into_owned()
}

fn calsync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_calsync")).args(args).output().expect("calsync runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The demo query: Maria, her daughter (Los Angeles) and her son (optional), the week of 7 Dec 2026.
fn demo(extra: &[&str]) -> Output {
    let (p, m, d, s) = (
        fixture("demo/provider.ndjson"),
        fixture("demo/maria.ics"),
        fixture("demo/daughter.ics"),
        fixture("demo/son.ics"),
    );
    let mut args = vec![
        "find".to_string(),
        "--slots".into(),
        p,
        "--participant".into(),
        format!("maria={m}"),
        "--participant".into(),
        format!("daughter={d}"),
        "--participant".into(),
        format!("son={s}"),
        "--zone".into(),
        "daughter=America/Los_Angeles".into(),
        "--tz".into(),
        "America/New_York".into(),
        "--now".into(),
        "2026-12-01T12:00:00Z".into(),
        "--duration".into(),
        "30m".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    calsync(&refs)
}

/// The demo query with Maria and her daughter only.
fn demo_without_son(extra: &[&str]) -> Output {
    let (p, m, d) = (fixture("demo/provider.ndjson"), fixture("demo/maria.ics"), fixture("demo/daughter.ics"));
    let (maria, daughter) = (format!("maria={m}"), format!("daughter={d}"));
    let mut args = vec!["find", "--slots", &p, "--participant", &maria, "--participant", &daughter];
    args.extend([
        "--zone",
        "daughter=America/Los_Angeles",
        "--tz",
        "America/New_York",
        "--now",
        "2026-12-01T12:00:00Z",
    ]);
    args.extend(["--from", "2026-12-07", "--to", "2026-12-11", "--format", "json"]);
    args.extend(extra);
    calsync(&args)
}

fn json(o: &Output) -> Value {
    assert!(o.status.success(), "{}", stderr(o));
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn finds_the_one_day_that_works_for_all_three() {
    let o = demo(&["--optional", "son", "--from", "2026-12-07", "--to", "2026-12-11", "--spread", "--format", "json"]);
    let v = json(&o);
    let slots = v["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 1, "{v:#}");
    assert_eq!(slots[0]["start"], "2026-12-11T17:00:00Z");
    assert_eq!(slots[0]["local_start"], "2026-12-11T12:00:00-05:00");
    assert_eq!(slots[0]["schedule"], "Schedule/dr-okafor");
    assert_eq!(slots[0]["place"], "Riverside Family Clinic");
    assert_eq!(v["query"]["participants"][1]["zone"], "America/Los_Angeles");
    assert_eq!(v["query"]["participants"][2]["required"], false);
}

#[test]
fn earliest_first_without_the_son() {
    let o = demo_without_son(&["--limit", "3"]);
    let v = json(&o);
    let starts: Vec<&str> = v["slots"].as_array().unwrap().iter().map(|s| s["local_start"].as_str().unwrap()).collect();
    // Monday: Maria is at therapy until 12:00 and her daughter works until 12:30 Pacific (15:30 Eastern).
    assert_eq!(starts, vec!["2026-12-07T15:30:00-05:00", "2026-12-07T15:30:00-05:00", "2026-12-07T16:00:00-05:00"]);
}

#[test]
fn table_output_is_for_people_and_never_shows_event_titles() {
    let o = demo(&["--optional", "son", "--from", "2026-12-07", "--to", "2026-12-11", "--spread", "--explain"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Fri 2026-12-11 12:00-12:30  Riverside Family Clinic"), "{out}");
    assert!(out.contains("Provider times that do not work:"), "{out}");
    assert!(out.contains("maria: busy Mon 2026-12-07 09:00-12:00"), "{out}");
    for title in ["Physical therapy", "Lunch", "Shift", "hospital", "Gym", "coast"] {
        assert!(!out.contains(title), "{title} leaked: {out}");
    }
}

#[test]
fn nothing_fits_says_why_and_offers_alternatives() {
    // Thursday: Maria is away all day.
    let o = demo(&["--from", "2026-12-10", "--to", "2026-12-10", "--format", "json", "--optional", "son"]);
    let v = json(&o);
    assert_eq!(v["slots"].as_array().unwrap().len(), 0);
    assert_eq!(v["no_fit"]["detail"]["reason"], "participants-unavailable");
    assert_eq!(v["no_fit"]["detail"]["participants"], serde_json::json!(["maria"]));
    assert_eq!(v["alternatives"]["after_window"][0]["local_start"], "2026-12-11T12:00:00-05:00");
}

#[test]
fn optional_participant_can_be_dropped() {
    // Tuesday: the son is away; everyone else can come.
    let o = demo(&[
        "--from",
        "2026-12-08",
        "--to",
        "2026-12-08",
        "--format",
        "json",
        "--optional",
        "son",
        "--lookahead",
        "1m",
    ]);
    let v = json(&o);
    assert_eq!(v["slots"].as_array().unwrap().len(), 0);
    let alt = &v["alternatives"]["without_optional"][0];
    assert_eq!(alt["local_start"], "2026-12-08T09:00:00-05:00");
    assert_eq!(alt["absent"], serde_json::json!(["son"]));
}

#[test]
fn fhir_output_is_a_searchset_of_proposed_appointments() {
    let o = demo(&["--optional", "son", "--from", "2026-12-07", "--to", "2026-12-11", "--format", "fhir"]);
    let v = json(&o);
    assert_eq!(v["resourceType"], "Bundle");
    assert_eq!(v["type"], "searchset");
    let a = &v["entry"][0]["resource"];
    assert_eq!(a["status"], "proposed");
    assert_eq!(a["start"], "2026-12-11T17:00:00Z");
    let actors: Vec<&str> =
        a["participant"].as_array().unwrap().iter().map(|p| p["actor"]["reference"].as_str().unwrap()).collect();
    assert_eq!(
        actors,
        vec![
            "Patient/maria",
            "RelatedPerson/daughter",
            "RelatedPerson/son",
            "Location/riverside",
            "PractitionerRole/okafor"
        ]
    );
    assert_eq!(a["participant"][2]["required"], "optional");
    assert_eq!(a["slot"][0]["reference"], "Slot/dr-okafor-11-1200");
}

#[test]
fn available_hours_and_preferences_change_the_answer() {
    // Maria only from 13:00: Friday 12:00 no longer works, Friday 13:00 does.
    let o = demo(&[
        "--from",
        "2026-12-07",
        "--to",
        "2026-12-11",
        "--optional",
        "son",
        "--format",
        "json",
        "--hours",
        "maria=mon-fri 13:00-16:00",
        "--limit",
        "1",
    ]);
    assert_eq!(json(&o)["slots"][0]["local_start"], "2026-12-11T13:00:00-05:00");
    // Without the son, earliest is Monday 15:30; preferring mornings gives Tuesday 09:00.
    let o = demo_without_son(&["--limit", "1", "--prefer", "mornings"]);
    let v = json(&o);
    assert_eq!(v["slots"][0]["local_start"], "2026-12-08T09:00:00-05:00");
    assert_eq!(v["slots"][0]["score"], 1);
}

#[test]
fn bad_input_is_one_clear_line_and_a_failure() {
    let m = fixture("demo/maria.ics");
    let p = fixture("demo/provider.ndjson");
    let broken = fixture("broken.ics");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--participant".into(), format!("x={broken}")], "broken.ics: line 6"),
        (vec!["--participant".into(), "x=/no/such/file.ics".into()], "cannot read /no/such/file.ics"),
        (vec!["--participant".into(), format!("x={m}"), "--optional".into(), "y".into()], "not a --participant"),
        (vec!["--participant".into(), format!("x={m}"), "--duration".into(), "soon".into()], "bad duration"),
        (vec!["--participant".into(), format!("x={m}"), "--tz".into(), "Mars/Olympus".into()], "unknown time zone"),
        (vec!["--participant".into(), "no-equals-sign".into()], "NAME=VALUE"),
    ];
    for (extra, needle) in cases {
        let mut args: Vec<String> = vec![
            "find".into(),
            "--slots".into(),
            p.clone(),
            "--from".into(),
            "2026-12-07".into(),
            "--to".into(),
            "2026-12-08".into(),
        ];
        args.extend(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = calsync(&refs);
        assert!(!o.status.success(), "{args:?} should fail");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("calsync: error: ") && err.contains(needle), "{needle:?} not in {err}");
    }
    let o = calsync(&["find", "--slots", &p, "--from", "2026-12-09", "--to", "2026-12-07", "--tz", "UTC"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("must be after"));
}

#[test]
fn messy_slot_lines_are_reported_and_skipped() {
    let messy = fixture("messy-slots.ndjson");
    let o = calsync(&[
        "find",
        "--slots",
        &messy,
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-01",
        "--tz",
        "UTC",
        "--now",
        "2026-11-01T00:00:00Z",
        "--format",
        "json",
    ]);
    let v = json(&o);
    assert_eq!(v["slots"][0]["slot"], "Slot/ok-1");
    assert_eq!(v["problems"].as_array().unwrap().len(), 6);
    assert!(stderr(&o).contains("messy-slots.ndjson:3: Slot.start"), "{}", stderr(&o));
}

#[test]
fn busy_prints_time_and_status_only() {
    let d = fixture("demo/daughter.ics");
    let o = calsync(&["busy", &d, "--from", "2026-12-07", "--to", "2026-12-11", "--tz", "America/Los_Angeles"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // Mon, Wed (moved), Thu shifts; Tuesday is excluded and the gym is transparent.
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[1]["start"], "2026-12-09T17:00:00Z");
    assert!(
        lines.iter().all(|l| l.as_object().unwrap().keys().all(|k| ["start", "end", "status"].contains(&k.as_str())))
    );
    let all =
        calsync(&["busy", &d, "--from", "2026-12-07", "--to", "2026-12-11", "--tz", "America/Los_Angeles", "--all"]);
    assert_eq!(stdout(&all).lines().count(), 4);
}

/// A token of the development issuer of the configuration in `config` (`calsync token`).
fn development_token(args: &[&str], config: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_calsync"))
        .arg("token")
        .args(args)
        .args(["--config", config])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn serve_loads_the_demo_and_answers_reads() {
    use std::io::{BufRead, BufReader, Read, Write};
    let db = std::env::temp_dir().join(format!("calsync-cli-serve-{}.db", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_calsync"))
        .args(["serve", "--bind", "127.0.0.1:0", "--database", &format!("sqlite://{}?mode=rwc", db.display())])
        .args(["--load", &fixture("demo/provider.ndjson")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let loaded = lines.next().unwrap().unwrap();
    let expected = format!("loaded 123 resources from {} (123 new or changed) in ", fixture("demo/provider.ndjson"));
    assert!(loaded.starts_with(&expected), "{loaded}");
    let banner = lines.next().unwrap().unwrap();
    let base = banner.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let token = development_token(&["--as", "system", "--scope", "system/Slot.r"], "config");
    write!(
        stream,
        "GET /Slot/dr-okafor-11-1200 HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    child.kill().ok();
    child.wait().ok();
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"start\":\"2026-12-11T17:00:00Z\""), "{response}");
}

/// `calsync ingest` records the definitions its search index was built with: the server's
/// first start on the database it filled finds the index current (before, it indexed every
/// resource again, a transaction that never ended on a million Slots).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_calsync_ingest_filled_is_not_indexed_again() {
    let db = std::env::temp_dir().join(format!("calsync-cli-ingest-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let ingested = calsync(&["ingest", &fixture("ssl-v1"), "--database", &url]);
    let store = calsync_store::Store::connect(&url).await.unwrap().with_indexer(calsync_system::INDEXER);
    let reindexed = store.reindex_if_stale().await;
    let order = (calsync_store::search::SortBy::Id, calsync_store::search::Direction::Ascending);
    let everything = calsync_store::search::ResourceSearch::default();
    let locations = store.search_resources("Location", &everything, order, None, 1).await.map(|page| page.total);
    store.clone().close().await;
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
    assert!(ingested.status.success(), "{}{}", stdout(&ingested), stderr(&ingested));
    assert_eq!(locations.unwrap(), 10, "the example set's Locations");
    assert_eq!(reindexed.unwrap(), None, "indexed with the current definitions already");
}

/// `make run` started again on its database keeps one emulated calendar per caregiver: each
/// start connected another (the son had seven).
#[test]
fn the_demo_started_again_keeps_one_emulated_calendar_each() {
    use std::io::{BufRead, BufReader, Read, Write};
    let db = std::env::temp_dir().join(format!("calsync-cli-restart-{}.db", std::process::id()));
    let config = format!("{}/../../config", env!("CARGO_MANIFEST_DIR"));
    let connections_of_son = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_calsync"))
            .args(["serve", "--bind", "127.0.0.1:0", "--database", &format!("sqlite://{}?mode=rwc", db.display())])
            .args(["--config", &config])
            .args(["--load", &fixture("demo/directory.ndjson"), "--load", &fixture("demo/participants.ndjson")])
            .args(["--emulate-calendar", &format!("google:RelatedPerson/son={}", fixture("demo/son.ics"))])
            .args(["--clock-start", "2026-12-01T12:00:00Z"])
            .env("CALSYNC_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Read on until the banner, and kept open: the server prints after it.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let banner = lines.by_ref().map(Result::unwrap).find(|l| l.starts_with("calsync FHIR server on")).unwrap();
        let base = banner.split_whitespace().find(|w| w.starts_with("http://")).unwrap().to_string();
        let addr = base.trim_start_matches("http://").to_string();
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "GET /connections?participant=RelatedPerson/son HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            development_token(&["--as", "RelatedPerson/son"], &config)
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        child.kill().ok();
        child.wait().ok();
        drop(lines);
        let body: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        body["connections"].as_array().unwrap().len()
    };
    let (first, second) = (connections_of_son(), connections_of_son());
    for suffix in ["", "-wal", "-shm"] {
        std::fs::remove_file(format!("{}{suffix}", db.display())).ok();
    }
    assert_eq!((first, second), (1, 1));
}

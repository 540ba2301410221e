use super::*;

const MANIFEST: &str = "http://publisher.example/ssl/$bulk-publish";

fn reader(options: Options) -> Reader {
    let manifest = url::Url::parse(MANIFEST).unwrap();
    Reader::new(Namespace("p1".into()), options, manifest, "2026-11-01T00:00:00.000Z".into())
}

const LOCATION: &str = r#"{"resourceType":"Location","id":"store_1 A","name":"A","telecom":[{"system":"phone","value":"1"}],"address":{"state":"MA"}}"#;
const SCHEDULE: &str = r#"{"resourceType":"Schedule","id":"s1","actor":[{"reference":"Location/store_1 A"}]}"#;

fn slot(start: &str, end: &str, extra: &str) -> String {
    format!(
        r#"{{"resourceType":"Slot","id":"x","schedule":{{"reference":"Schedule/s1"}},"status":"free","start":"{start}","end":"{end}"{extra}}}"#
    )
}

#[test]
fn ids_and_references_move_into_the_namespace_and_bad_ids_get_a_stable_valid_one() {
    let mut r = reader(Options::default());
    let (loc, notes) = r.line("Location", LOCATION).unwrap();
    assert!(loc.id.starts_with("p1.store-1-A-") && calsync_store::is_valid_id(&loc.id), "{}", loc.id);
    let long = "x".repeat(80);
    let (id, repaired) = Namespace("p1".into()).id(&long);
    assert!(repaired && id.len() == 64 && calsync_store::is_valid_id(&id), "{id}");
    assert_ne!(id, Namespace("p1".into()).id(&"x".repeat(81)).0, "the digest tells long ids apart");
    assert!(matches!(&notes[..], [Note::Repaired("id", _)]));
    assert_eq!(loc.content["meta"]["source"], "http://publisher.example/ssl/$bulk-publish#Location/store_1%20A");
    // What the manifest's address carries for the publisher alone stays out of meta.source.
    let keyed = url::Url::parse("https://feed:s3cret@publisher.example/ssl/$bulk-publish?key=k3y#x").unwrap();
    let mut r2 = Reader::new(Namespace("p1".into()), Options::default(), keyed, "2026-11-01T00:00:00Z".into());
    let (loc2, _) = r2.line("Location", LOCATION).unwrap();
    assert_eq!(loc2.content["meta"]["source"], "https://publisher.example/ssl/$bulk-publish#Location/store_1%20A");
    let (schedule2, _) = r2.line("Schedule", SCHEDULE).unwrap();
    assert_eq!(schedule2.content["meta"]["source"], "https://publisher.example/ssl/$bulk-publish#Schedule/s1");
    let (schedule, _) = r.line("Schedule", SCHEDULE).unwrap();
    assert_eq!(schedule.id, "p1.s1");
    assert_eq!(schedule.content["actor"][0]["reference"], format!("Location/{}", loc.id));
    let (again, _) = reader(Options::default()).line("Location", LOCATION).unwrap();
    assert_eq!((again.id, again.digest), (loc.id, loc.digest), "the same line, the same id and digest");
    assert_eq!(
        schedule.content["meta"]["extension"][0],
        json!({"url": LAST_SOURCE_SYNC, "valueDateTime": "2026-11-01T00:00:00.000Z"})
    );
}

#[test]
fn whole_day_slots_take_their_locations_midnights_across_dst() {
    let mut r = reader(Options::default());
    r.line("Location", LOCATION).unwrap();
    r.line("Schedule", SCHEDULE).unwrap();
    // Five days over the end of DST in Boston (2026-11-01).
    let ext = r#","extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity","valueInteger":1}]"#;
    let (s, notes) = r.line("Slot", &slot("2026-10-30", "2026-11-03", ext)).unwrap();
    assert_eq!(s.content["start"], "2026-10-30T04:00:00Z");
    assert_eq!(s.content["end"], "2026-11-04T05:00:00Z");
    assert_eq!(notes.len(), 2);
    assert_eq!(s.content["status"], "free");
}

#[test]
fn z_times_are_read_as_local_only_when_the_publisher_is_known_to_write_them() {
    let readers = |options| {
        let mut r = reader(options);
        r.line("Location", LOCATION).unwrap();
        r.line("Schedule", SCHEDULE).unwrap();
        r
    };
    // 08:00Z is 04:00 in Boston: taken as written, but counted as suspect.
    let mut plain = readers(Options::default());
    let (s, notes) = plain.line("Slot", &slot("2026-03-09T08:00:00Z", "2026-03-09T09:00:00Z", "")).unwrap();
    assert_eq!((s.content["start"].as_str(), notes.len()), (Some("2026-03-09T08:00:00Z"), 0));
    assert_eq!(plain.suspect_local, 1);
    let mut local = readers(Options { zone: None, local_times: true });
    let (s, notes) = local.line("Slot", &slot("2026-03-09T08:00:00Z", "2026-03-09T09:00:00Z", "")).unwrap();
    assert_eq!(
        (s.content["start"].as_str(), s.content["end"].as_str()),
        (Some("2026-03-09T12:00:00Z"), Some("2026-03-09T13:00:00Z"))
    );
    assert!(matches!(notes[0], Note::Repaired("local-time", _)));
    // 02:30 on the morning clocks spring forward does not exist: the first instant after it.
    let (s, _) = local.line("Slot", &slot("2026-03-08T02:30:00Z", "2026-03-08T04:00:00Z", "")).unwrap();
    assert_eq!(s.content["start"], "2026-03-08T07:00:00Z");
    assert_eq!(s.content["end"], "2026-03-08T08:00:00Z");
    // 01:30 on the morning clocks fall back happens twice: the first.
    let (s, _) = local.line("Slot", &slot("2026-11-01T01:30:00Z", "2026-11-01T03:00:00Z", "")).unwrap();
    assert_eq!(s.content["start"], "2026-11-01T05:30:00Z");
    assert_ne!(
        readers(Options::default())
            .line("Slot", &slot("2026-11-01T01:30:00Z", "2026-11-01T03:00:00Z", ""))
            .unwrap()
            .0
            .digest,
        s.digest,
        "reading times differently is a different resource"
    );
}

#[test]
fn capacity_must_be_places_and_none_left_is_busy() {
    let mut r = reader(Options::default());
    let ext = |v: &str| {
        format!(
            r#","extension":[{{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity","valueInteger":{v}}}]"#
        )
    };
    let (s, notes) = r.line("Slot", &slot("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", &ext("0"))).unwrap();
    assert_eq!((s.content["status"].as_str(), notes.len()), (Some("busy"), 1));
    let (s, notes) = r.line("Slot", &slot("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", &ext("-2"))).unwrap();
    assert_eq!(
        (s.content["status"].as_str(), s.content["extension"].as_array().map(Vec::len)),
        (Some("free"), Some(0))
    );
    assert_eq!(notes.len(), 1);
}

/// Every kind of Slot line, read as members where it can be, is stored exactly as when read
/// whole; lines it cannot be are read whole.
#[tokio::test]
async fn a_slot_read_as_members_is_stored_as_when_read_whole() {
    let store = Store::connect("sqlite::memory:").await.unwrap().with_indexer(calsync_system::INDEXER);
    let ssl = calsync_fhir::SSL_EXTENSION_BASE;
    let ext = |rest: &str| format!(r#","extension":[{rest}]"#);
    let capacity = |n: i64| format!(r#"{{"url":"{ssl}slot-capacity","valueInteger":{n}}}"#);
    let link = format!(r#"{{"url":"{ssl}booking-deep-link","valueUrl":"https://book.example/s?x=1"}}"#);
    let plain = slot("2027-01-04T14:00:00Z", "2027-01-04T14:30:00Z", "");
    let fast = [
        plain.clone(),
        slot("2027-01-04T14:00:00Z", "2027-01-04T14:30:00Z", &ext(&format!("{link},{}", capacity(3)))),
        slot("2027-01-04T14:00:00Z", "2027-01-04T14:30:00Z", &ext(&capacity(0))),
        slot("2027-01-04T14:00:00Z", "2027-01-04T14:30:00Z", &ext(&capacity(-2))),
        slot("2027-01-04T14:00:00Z", "2027-01-04T14:30:00Z", &ext(&link)),
        slot("2026-10-30", "2026-11-03", &ext(&capacity(1))),
        slot("2027-01-04T09:00:00", "2027-01-04T09:30", ""),
        slot("2027-01-04T08:00:00Z", "2027-01-04T08:30:00Z", ""),
        plain.replace(r#""id":"x""#, r#""id":"store_1 A/7""#),
        slot("2027-01-04T14:00:00Z", "2027-01-04T14:30:00Z", &ext(r#"{"url":"urn:x","valueReference":{"reference":"Location/store_1 A"}}"#)),
        slot("2027-01-04T14:00:00Z", "2027-01-04T14:30:00Z", r#","serviceType":[{"coding":[{"system":"urn:s","code":"124"}]}],"comment":"caf\u00e9 \"x\"","overbooked":false,"n":1.50,"basedOn":{"reference":"Schedule/s1"}"#),
        r#"{ "status" : "busy" , "start":"2027-01-04T14:00:00Z","schedule": { "reference" : "Schedule/s1" },"end":"2027-01-04T14:30:00Z","resourceType":"Slot","id":"late"}"#.to_string(),
        format!("{plain}\r"),
        plain.replace("Schedule/s1", r"Schedule/s\u0031"),
    ];
    let whole = [
        plain.replace(r#""status""#, r#""st\u0061tus""#),
        plain.replace(r#""id":"x""#, r#""id":"x","meta":{"versionId":"9","tag":[{"code":"t"}]}"#),
        plain.replace(r#""id":"x""#, r#""id":"x","status":"busy""#),
        plain.replace(r#""id":"x""#, r#""id":7"#),
    ];
    let bad = [
        slot("2027-01-04T14:00:00Z", "2027-01-04T13:30:00Z", ""),
        slot("tomorrow", "2027-01-04T13:30:00Z", ""),
        plain.replace("free", "open"),
        plain.replace("Schedule/s1", "Location/s1"),
        plain.replace(r#""start":"2027-01-04T14:00:00Z","#, ""),
        slot(
            "2027-01-04T14:00:00Z",
            "2027-01-04T14:30:00Z",
            &ext(&link.replace("https://book.example/s?x=1", "javascript:alert(1)")),
        ),
        plain.replace(r#""id":"x""#, r#""id":" ""#),
    ];
    let learned = || {
        let mut r = reader(Options::default());
        r.line("Location", LOCATION).unwrap();
        r.line("Schedule", SCHEDULE).unwrap();
        r
    };
    let (mut by_members, mut by_whole) = (learned(), learned());
    let now = Utc::now();
    for (n, line) in fast.iter().chain(&whole).enumerate() {
        let expected = by_whole.line("Slot", line).unwrap();
        let Some((members, notes)) = by_members.slot_members(line) else {
            assert!(n >= fast.len(), "{line}: not read as members");
            continue;
        };
        assert!(n < fast.len(), "{line}: read as members");
        assert_eq!((members.id.as_str(), members.digest), (expected.0.id.as_str(), expected.0.digest), "{line}");
        assert_eq!(notes, expected.1, "{line}");
        let repaired = notes.iter().any(|n| matches!(n, Note::Repaired("id", _)));
        let a = store.prepare_ingest_members(members, now).unwrap();
        let b = store.prepare_ingest(expected.0, now).unwrap();
        // Its origin is kept apart (unless its id was repaired) and added back as it is read:
        // then it is the same.
        assert_eq!(a.synced_ms(), (!repaired).then_some(1_793_491_200_000), "{line}");
        let origin_in_text = a.text().contains(LAST_SOURCE_SYNC) || a.text().contains(r#""source""#);
        assert_eq!(origin_in_text, repaired, "{line}");
        let bases = [("p1".to_string(), calsync_store::origin::slot_source_base(MANIFEST).unwrap())].into();
        let served = calsync_store::origin::splice(a.text(), a.id(), a.synced_ms(), &bases);
        let parsed = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert_eq!(parsed(&served), parsed(b.text()), "{line}");
    }
    assert_eq!(by_members.suspect_local, by_whole.suspect_local);
    assert_eq!(by_members.suspect_local, 1, "08:00Z is 03:00 in Boston");
    for line in &bad {
        assert!(by_members.slot_members(line).is_none(), "{line}");
        assert!(by_members.row(&store, "Slot", line, now).is_err(), "{line}");
    }
    let (row, _) = by_members.row(&store, "Slot", &fast[2], now).unwrap();
    let stored: Value = serde_json::from_str(row.text()).unwrap();
    assert_eq!((stored["status"].as_str(), stored["id"].as_str()), (Some("busy"), Some("p1.x")));
    assert_eq!(stored["schedule"]["reference"], "Schedule/p1.s1");
    assert_eq!(stored["meta"]["versionId"], "1");
}

#[test]
fn a_locations_site_that_is_not_http_is_dropped_and_its_phone_kept() {
    let mut r = reader(Options::default());
    let line = r#"{"resourceType":"Location","id":"1","telecom":[{"system":"phone","value":"555"},{"system":"url","value":"javascript:alert(1)"},{"system":"url","value":"https://clinic.example/a"}]}"#;
    let (location, notes) = r.line("Location", line).unwrap();
    let telecom = &location.content["telecom"];
    assert_eq!(telecom.as_array().map(Vec::len), Some(2), "{telecom}");
    assert_eq!(
        (telecom[0]["value"].as_str(), telecom[1]["value"].as_str()),
        (Some("555"), Some("https://clinic.example/a"))
    );
    assert!(
        notes.iter().any(|Note::Repaired(kind, what)| *kind == "telecom" && what.contains("javascript:alert(1)")),
        "{notes:?}"
    );
}

#[test]
fn bad_lines_say_why() {
    let mut r = reader(Options::default());
    for (expected, line, why) in [
        ("Slot", "{not json", "not JSON"),
        ("Slot", "[1]", "not a JSON object"),
        ("Slot", r#"{"resourceType":"Location","id":"1"}"#, "a Location in a file of Slot"),
        ("Slot", r#"{"resourceType":"Slot"}"#, "no id"),
        ("Slot", &slot("2026-01-01T10:00:00Z", "2026-01-01T09:00:00Z", ""), "end after it starts"),
        ("Slot", &slot("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", ""), "31 days at most"),
        ("Slot", &slot("2026-01-01T00:00:00Z", "2026-02-01T00:00:01Z", ""), "31 days at most"),
        ("Slot", &slot("tomorrow", "2026-01-01T09:00:00Z", ""), "start: \"tomorrow\" is not an instant"),
        ("Slot", &slot("2026-01-01", "2026-01-01", ""), "time zone is not known"),
        (
            "Slot",
            &slot("2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", "").replace("free", "open"),
            "not a Slot status",
        ),
        (
            "Schedule",
            r#"{"resourceType":"Schedule","id":"1","actor":[{"reference":"Patient/p"}]}"#,
            "not provider availability",
        ),
        ("Location", r#"{"resourceType":"Location","id":"1","telecom":[]}"#, "phone or a url"),
        (
            "Location",
            r#"{"resourceType":"Location","id":"1","telecom":[{"system":"url","value":"javascript:alert(1)"}]}"#,
            "phone or a url",
        ),
        (
            "Slot",
            &slot(
                "2026-01-01T10:00:00Z",
                "2026-01-01T11:00:00Z",
                r#","extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/booking-deep-link","valueUrl":"data:text/html,x"}]"#,
            ),
            "not an http(s) URL",
        ),
    ] {
        let err = r.line(expected, line).unwrap_err();
        assert!(err.why.contains(why), "{line}: {err:?}");
        let named = !["not JSON", "not a JSON object", "a Location in a file of Slot", "no id"].contains(&why);
        assert_eq!(err.id.is_some(), named, "{line}: {err:?}");
    }
    // Only free Slots are bounded: a long busy one is kept.
    let away = slot("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "").replace("free", "busy-unavailable");
    assert!(r.line("Slot", &away).is_ok());
}

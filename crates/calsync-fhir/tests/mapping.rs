//! Reading SMART Scheduling Links data and writing proposed Appointments.

use calsync_core::{Interval, MutualSlot, NoFit, SlotStatus};
use calsync_fhir::{AppointmentParticipant, ProviderData, appointments_bundle};
use chrono::{TimeZone, Utc};
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn v1_examples() -> ProviderData {
    let mut data = ProviderData::default();
    for file in [
        "locations.ndjson",
        "schedules.ndjson",
        "slots-2021-W09.ndjson",
        "slots-2021-W10.ndjson",
        "slots-2021-W11.ndjson",
        "slots-2021-W12.ndjson",
        "slots-2021-W13.ndjson",
    ] {
        data.read(file, &fixture(&format!("ssl-v1/{file}")));
    }
    data
}

#[test]
fn reads_the_v1_example_set_exactly() {
    let data = v1_examples();
    assert!(data.problems.is_empty(), "{:?}", data.problems);
    assert_eq!(data.locations.len(), 10);
    assert_eq!(data.schedules.len(), 10);
    assert_eq!(data.slots.len(), 70 * 4 + 20);
    let first = data.slots.iter().find(|s| s.id == "Slot/20").unwrap();
    assert_eq!(first.schedule, "Schedule/10");
    assert_eq!(first.status, SlotStatus::Free);
    assert_eq!(first.capacity, Some(100));
    assert_eq!(
        first.interval,
        Interval::new(
            Utc.with_ymd_and_hms(2021, 3, 1, 14, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2021, 3, 1, 23, 0, 0).unwrap(),
        )
    );
    assert_eq!(data.schedules["Schedule/10"].actors, vec!["Location/0".to_string()]);
    assert!(data.place_of("Schedule/10").is_some());
}

#[test]
fn bad_lines_are_reported_with_their_line_and_skipped() {
    let mut data = ProviderData::default();
    data.read("messy.ndjson", &fixture("messy-slots.ndjson"));
    let lines: Vec<usize> = data.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7], "{:#?}", data.problems);
    assert_eq!(data.slots.len(), 2);
    assert!(data.problems[0].to_string().starts_with("messy.ndjson:2: "));
    assert!(data.problems.iter().any(|p| p.message.contains("not a FHIR instant")));
    assert!(data.problems.iter().any(|p| p.message.contains("unknown Slot.status")));
}

#[test]
fn reads_a_bundle() {
    let mut data = ProviderData::default();
    data.read("bundle.json", &fixture("provider-bundle.json"));
    assert!(data.problems.is_empty(), "{:?}", data.problems);
    assert_eq!(data.slots.len(), 2);
    assert_eq!(data.schedules.len(), 1);
}

fn people() -> Vec<AppointmentParticipant> {
    vec![
        AppointmentParticipant { reference: "Patient/pat".into(), display: "pat".into(), required: true },
        AppointmentParticipant {
            reference: "RelatedPerson/daughter".into(),
            display: "daughter".into(),
            required: true,
        },
    ]
}

#[test]
fn writes_proposed_appointments_as_a_searchset() {
    let data = v1_examples();
    let m = MutualSlot {
        slot: "Slot/20".into(),
        schedule: "Schedule/10".into(),
        interval: Interval::new(
            Utc.with_ymd_and_hms(2021, 3, 1, 14, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2021, 3, 1, 14, 30, 0).unwrap(),
        ),
        score: 0,
        absent: vec![],
    };
    let json = appointments_bundle(&[m], &people(), &data, None);
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["resourceType"], "Bundle");
    assert_eq!(v["type"], "searchset");
    assert_eq!(v["total"], 1);
    let entry = &v["entry"][0];
    assert_eq!(entry["search"]["mode"], "match");
    let a = &entry["resource"];
    assert_eq!(a["resourceType"], "Appointment");
    assert_eq!(a["status"], "proposed");
    assert_eq!(a["start"], "2021-03-01T14:00:00Z");
    assert_eq!(a["end"], "2021-03-01T14:30:00Z");
    assert_eq!(a["minutesDuration"], 30);
    assert_eq!(a["slot"][0]["reference"], "Slot/20");
    let actors: Vec<&str> =
        a["participant"].as_array().unwrap().iter().map(|p| p["actor"]["reference"].as_str().unwrap()).collect();
    assert_eq!(actors, vec!["Patient/pat", "RelatedPerson/daughter", "Location/0"]);
    assert!(a["participant"].as_array().unwrap().iter().all(|p| p["status"] == "needs-action"));
    // The output is valid FHIR R4: it reads back as a Bundle.
    let mut back = ProviderData::default();
    back.read("out.json", &json);
    assert!(back.problems.is_empty(), "{:?}", back.problems);
}

#[test]
fn an_empty_answer_carries_its_reason() {
    let why = NoFit::ParticipantsUnavailable { participants: vec!["daughter".into()] };
    let json = appointments_bundle(&[], &people(), &ProviderData::default(), Some(&why));
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["total"], 0);
    assert_eq!(v["entry"][0]["search"]["mode"], "outcome");
    let issue = &v["entry"][0]["resource"]["issue"][0];
    assert_eq!(issue["code"], "not-found");
    assert!(issue["diagnostics"].as_str().unwrap().contains("daughter is busy"));
}

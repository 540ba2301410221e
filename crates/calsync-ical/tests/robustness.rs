//! Whatever the input, the engine answers with busy windows or an error naming a line: no panic.

use calsync_core::Interval;
use calsync_ical::busy_intervals;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

/// Property lines, sane and insane.
const PROPERTIES: &[&str] = &[
    "DTSTART:20260101T090000Z",
    "DTSTART;VALUE=DATE:20260101",
    "DTSTART;TZID=Europe/Berlin:20260329T023000",
    "DTSTART:99991231T235959Z",
    "DTSTART:00010101T000000",
    "DTSTART:2026",
    "DTEND:20251231T000000Z",
    "DTEND;VALUE=DATE:99991231",
    "DURATION:P99999999999W",
    "DURATION:PT9223372036854775807S",
    "DURATION:-P1D",
    "DURATION:P",
    "RRULE:FREQ=SECONDLY",
    "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "RRULE:FREQ=DAILY;INTERVAL=0",
    "RRULE:FREQ=MONTHLY;BYSETPOS=0;BYDAY=MO",
    "RRULE:FREQ=WEEKLY;COUNT=99999999999999999999",
    "RRULE:FREQ=DAILY;UNTIL=2",
    "RRULE:FREQ=YEARLY;BYWEEKNO=53;BYDAY=SU",
    "RRULE:;;;",
    "EXDATE:20260102T090000Z,,",
    "RDATE;VALUE=PERIOD:20260101T000000Z/P99999999D",
    "RECURRENCE-ID;RANGE=THISANDFUTURE:20260101T090000Z",
    "RECURRENCE-ID:99991231T000000Z",
    "UID:a",
    "UID:a",
    "SEQUENCE:-99999999999999",
    "STATUS:TENTATIVE",
    "TRANSP:TRANSPARENT",
    "FREEBUSY:20260101T000000Z/P99999999W",
    "FREEBUSY;FBTYPE=X:garbage",
    "TZOFFSETFROM:+9999",
    "TZOFFSETTO:-2400",
    "TZID:Custom",
    "DTSTART;TZID=Custom:20260101T090000",
    "X-WR-TIMEZONE:Nowhere",
    "BEGIN:VEVENT",
    "END:VEVENT",
    "BEGIN:VTIMEZONE",
    "END:VTIMEZONE",
    "BEGIN:STANDARD",
    "END:STANDARD",
    "BEGIN:VFREEBUSY",
    "END:VFREEBUSY",
    " folded",
    "DTSTART;TZID=\"unterminated:20260101T000000",
    "NOCOLON",
    ":",
    ";=:",
    "\u{feff}",
];

fn property() -> impl Strategy<Value = String> {
    prop::sample::select(
        PROPERTIES.iter().filter(|l| !l.starts_with("BEGIN") && !l.starts_with("END")).copied().collect::<Vec<_>>(),
    )
    .prop_map(str::to_string)
}

fn line() -> impl Strategy<Value = String> {
    prop::sample::select(PROPERTIES.to_vec()).prop_map(str::to_string)
}

/// A well-nested component of random properties, so input reaches the expansion.
fn component(name: &'static str) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(property(), 0..8).prop_map(move |mut props| {
        props.insert(0, format!("BEGIN:{name}"));
        props.push(format!("END:{name}"));
        props
    })
}

fn calendar() -> impl Strategy<Value = Vec<String>> {
    let zone = (component("STANDARD"), component("DAYLIGHT")).prop_map(|(a, b)| {
        let mut v = vec!["BEGIN:VTIMEZONE".to_string(), "TZID:Custom".to_string()];
        v.extend(a);
        v.extend(b);
        v.push("END:VTIMEZONE".into());
        v
    });
    (prop::collection::vec(component("VEVENT"), 0..4), prop::option::of(zone), prop::option::of(component("VFREEBUSY")))
        .prop_map(|(events, zone, fb)| {
            events.into_iter().flatten().chain(zone.into_iter().flatten()).chain(fb.into_iter().flatten()).collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn never_panics_on_line_soup(lines in prop::collection::vec(line(), 0..25)) {
        check(&lines)?;
    }

    #[test]
    fn never_panics_on_well_nested_nonsense(lines in calendar()) {
        check(&lines)?;
    }
}

fn check(lines: &[String]) -> Result<(), TestCaseError> {
    {
        let ics = format!("BEGIN:VCALENDAR\r\n{}\r\nEND:VCALENDAR\r\n", lines.join("\r\n"));
        let horizon = Interval::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        );
        if let Err(e) = busy_intervals(&ics, horizon, chrono_tz::Europe::Berlin) {
            prop_assert!(e.line >= 1 && e.line <= lines.len() + 2, "{e}");
        }
    }
    Ok(())
}

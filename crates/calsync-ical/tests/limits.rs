//! The work one calendar may cause is bounded (occurrences, busy windows, time), and a calendar
//! over a bound is refused with an error naming it, never cut short.

use std::time::Duration;

use calsync_core::{BusyInterval, BusyStatus, Instant, Interval};
use calsync_ical::budget::{MAX_BUSY_WINDOWS, MAX_OCCURRENCES, MAX_TIME};
use calsync_ical::{Budget, Calendar, ParseError, busy_intervals, busy_intervals_of};
use chrono::NaiveDate;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> Instant {
    NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap().and_utc()
}

/// The horizon of an upload made on 2026-12-05: the day before to 180 days ahead.
fn horizon() -> Interval {
    Interval::new(utc(2026, 12, 4, 0, 0), utc(2027, 6, 3, 0, 0))
}

/// The error of a calendar that must be refused (without printing a million windows if it is not).
fn refused<T>(read: Result<T, ParseError>) -> ParseError {
    match read {
        Ok(_) => panic!("a calendar over a limit was read"),
        Err(e) => e,
    }
}

/// A calendar of one event whose properties after UID are `lines` (line 4 is the first of them).
fn event(lines: &str) -> String {
    format!("BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:1\n{lines}\nEND:VEVENT\nEND:VCALENDAR\n")
}

#[test]
fn a_secondly_rule_is_refused_naming_the_limit_and_its_line() {
    let ics = event("DTSTART:20261205T000000Z\nDURATION:PT1S\nRRULE:FREQ=SECONDLY;INTERVAL=2");
    let err = refused(busy_intervals(&ics, horizon(), chrono_tz::UTC));
    assert_eq!(err.line, 7, "{err}");
    assert!(err.message.contains(&format!("more than {MAX_OCCURRENCES} times")), "{err}");
    assert!(err.message.contains("limit per calendar"), "{err}");
}

#[test]
fn the_occurrence_limit_is_for_the_whole_calendar_not_per_rule() {
    // Each rule alone stays under the limit; together they go over it (their windows touch, so
    // they merge into one and stay under the limit of busy windows).
    let rule = |uid: u32, count: usize| {
        format!(
            "BEGIN:VEVENT\nUID:{uid}\nDTSTART:20261205T000000Z\nDURATION:PT2S\nRRULE:FREQ=SECONDLY;INTERVAL=2;COUNT={count}\nEND:VEVENT\n"
        )
    };
    let calendar =
        |events: &[String]| Calendar::parse(&format!("BEGIN:VCALENDAR\n{}END:VCALENDAR\n", events.concat())).unwrap();
    // DTSTART itself is not paid for: 600 occurrences cost 599.
    let one = calendar(&[rule(1, 600)]);
    assert!(one.expand_within(horizon(), chrono_tz::UTC, &mut Budget::new(1_000, MAX_TIME)).is_ok());
    let two = calendar(&[rule(1, 600), rule(2, 600)]);
    let err = refused(two.expand_within(horizon(), chrono_tz::UTC, &mut Budget::new(1_000, MAX_TIME)));
    assert!(err.message.contains("more than 1000 times"), "{err}");
    assert_eq!(err.line, 12, "the second rule goes over: {err}");
    // Calendars of one person read together (a CalDAV collection) share the budget too.
    let half = format!("BEGIN:VCALENDAR\n{}END:VCALENDAR\n", rule(1, MAX_OCCURRENCES / 2 + 2));
    assert!(busy_intervals_of([half.as_str()], horizon(), chrono_tz::UTC).is_ok());
    let err = refused(busy_intervals_of([half.as_str(), half.as_str()], horizon(), chrono_tz::UTC));
    assert!(err.message.contains(&format!("more than {MAX_OCCURRENCES} times")), "{err}");
}

#[test]
fn occurrences_before_the_horizon_are_paid_for() {
    // A weekly series since 2000: about 1,400 occurrences are generated to reach the horizon.
    let cal = Calendar::parse(&event("DTSTART:20000103T090000Z\nDURATION:PT1H\nRRULE:FREQ=WEEKLY")).unwrap();
    let err = refused(cal.expand_within(horizon(), chrono_tz::UTC, &mut Budget::new(1_000, MAX_TIME)));
    assert!(err.message.contains("more than 1000 times"), "{err}");
    let expansion = cal.expand_within(horizon(), chrono_tz::UTC, &mut Budget::new(2_000, MAX_TIME)).unwrap();
    assert_eq!(expansion.busy().len(), 26);
}

#[test]
fn a_calendar_over_its_time_is_refused_naming_the_limit() {
    let cal = Calendar::parse(&event("DTSTART:20261205T090000Z\nDURATION:PT1H\nRRULE:FREQ=DAILY")).unwrap();
    std::thread::sleep(Duration::from_millis(2));
    let err = refused(cal.expand_within(horizon(), chrono_tz::UTC, &mut Budget::new(MAX_OCCURRENCES, Duration::ZERO)));
    assert!(err.message.contains("takes longer than 0 s"), "{err}");
    assert_eq!(err.line, 7, "{err}");
}

#[test]
fn more_busy_windows_than_the_limit_are_refused_after_merging() {
    // Every 10 minutes for a minute: 25,920 separate windows over the horizon.
    let apart = event("DTSTART:20261205T000000Z\nDURATION:PT1M\nRRULE:FREQ=MINUTELY;INTERVAL=10");
    let err = refused(busy_intervals(&apart, horizon(), chrono_tz::UTC));
    assert!(err.message.contains(&format!("more than {MAX_BUSY_WINDOWS} busy windows")), "{err}");
    // Every 10 minutes for 10 minutes: as many occurrences, but they merge into one window.
    let touching = event("DTSTART:20261205T000000Z\nDURATION:PT10M\nRRULE:FREQ=MINUTELY;INTERVAL=10");
    let (busy, _) = busy_intervals(&touching, horizon(), chrono_tz::UTC).unwrap();
    assert!(busy.len() > MAX_BUSY_WINDOWS);
    assert_eq!(BusyInterval::merged(&busy).len(), 1);
}

#[test]
fn merging_keeps_statuses_apart() {
    let w = |h0: u32, h1: u32, status| BusyInterval {
        interval: Interval::new(utc(2027, 1, 4, h0, 0), utc(2027, 1, 4, h1, 0)),
        status,
    };
    let merged = BusyInterval::merged(&[
        w(9, 10, BusyStatus::Busy),
        w(10, 11, BusyStatus::Busy),
        w(9, 12, BusyStatus::BusyTentative),
        w(12, 13, BusyStatus::Busy),
        w(14, 15, BusyStatus::Busy),
        w(14, 15, BusyStatus::Busy),
    ]);
    assert_eq!(
        merged,
        vec![
            w(9, 11, BusyStatus::Busy),
            w(9, 12, BusyStatus::BusyTentative),
            w(12, 13, BusyStatus::Busy),
            w(14, 15, BusyStatus::Busy)
        ]
    );
}

#[test]
fn an_override_of_a_far_instance_does_not_expand_the_series_to_it() {
    // An hourly series with an override naming an instance in 9999: the series is expanded a year
    // past the horizon, not to 9999 (eight thousand years of hours), and the override is dropped.
    let ics = "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:1\nDTSTART:20261205T000000Z\nDURATION:PT30M\nRRULE:FREQ=HOURLY\nEND:VEVENT\n\
               BEGIN:VEVENT\nUID:1\nRECURRENCE-ID:99991231T000000Z\nDTSTART:20261205T003000Z\nDURATION:PT30M\nEND:VEVENT\nEND:VCALENDAR\n";
    let cal = Calendar::parse(ics).unwrap();
    let expansion = cal.expand_within(horizon(), chrono_tz::UTC, &mut Budget::new(30_000, MAX_TIME)).unwrap();
    assert!(expansion.warnings.is_empty(), "{:?}", expansion.warnings);
    assert_eq!(expansion.busy().len(), 180 * 24);
}

#[test]
fn a_vtimezone_offset_out_of_range_is_refused() {
    for offset in ["+9999", "-2400", "+0160", "+120099"] {
        let ics = format!(
            "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:X\nBEGIN:STANDARD\nDTSTART:16010101T000000\nTZOFFSETFROM:+0100\n\
             TZOFFSETTO:{offset}\nRRULE:FREQ=YEARLY\nEND:STANDARD\nEND:VTIMEZONE\nBEGIN:VEVENT\nUID:1\n\
             DTSTART;TZID=X:20261205T090000\nDURATION:PT1H\nEND:VEVENT\nEND:VCALENDAR\n"
        );
        let err = refused(busy_intervals(&ics, horizon(), chrono_tz::UTC));
        assert_eq!(err.line, 7, "{offset}: {err}");
        assert!(err.message.contains("out of range"), "{offset}: {err}");
    }
    // The widest real offsets are read.
    for offset in ["+1400", "-1200", "+0545", "-002540"] {
        let ics = format!(
            "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:X\nBEGIN:STANDARD\nDTSTART:16010101T000000\nTZOFFSETFROM:{offset}\n\
             TZOFFSETTO:{offset}\nEND:STANDARD\nEND:VTIMEZONE\nBEGIN:VEVENT\nUID:1\n\
             DTSTART;TZID=X:20261205T090000\nDURATION:PT1H\nEND:VEVENT\nEND:VCALENDAR\n"
        );
        assert_eq!(busy_intervals(&ics, horizon(), chrono_tz::UTC).unwrap().0.len(), 1, "{offset}");
    }
}

#[test]
fn vtimezone_rules_are_paid_from_the_calendars_budget() {
    // A daily "transition" since 1601: 155,000 onsets.
    let ics = "BEGIN:VCALENDAR\nBEGIN:VTIMEZONE\nTZID:X\nBEGIN:STANDARD\nDTSTART:16010101T000000\nTZOFFSETFROM:+0100\n\
               TZOFFSETTO:+0100\nRRULE:FREQ=DAILY\nEND:STANDARD\nEND:VTIMEZONE\nBEGIN:VEVENT\nUID:1\n\
               DTSTART;TZID=X:20261205T090000\nDURATION:PT1H\nEND:VEVENT\nEND:VCALENDAR\n";
    let cal = Calendar::parse(ics).unwrap();
    let err = refused(cal.expand_within(horizon(), chrono_tz::UTC, &mut Budget::new(100_000, MAX_TIME)));
    assert_eq!(err.line, 8, "{err}");
    assert!(err.message.contains("more than 100000 times"), "{err}");
}

//! Behaviour of the iCalendar engine on the RFC 5545 cases that break naive code.

use calsync_core::{BusyInterval, BusyStatus, Instant, Interval};
use calsync_ical::{Calendar, busy_intervals};
use chrono::{NaiveDate, TimeDelta};
use chrono_tz::Tz;

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> Instant {
    NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap().and_utc()
}

fn year_2026() -> Interval {
    Interval::new(utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0))
}

/// Wraps VEVENT/VTIMEZONE text in a VCALENDAR with CRLF line ends.
fn cal(body: &str) -> String {
    let body = body.trim().lines().map(str::trim).collect::<Vec<_>>().join("\r\n");
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calsync//tests//EN\r\n{body}\r\nEND:VCALENDAR\r\n")
}

fn busy_in(body: &str, zone: Tz) -> Vec<BusyInterval> {
    let (busy, warnings) = busy_intervals(&cal(body), year_2026(), zone).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    busy
}

fn spans(busy: &[BusyInterval]) -> Vec<(Instant, Instant)> {
    busy.iter().map(|b| (b.interval.start, b.interval.end)).collect()
}

#[test]
fn daily_count_and_exdate() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:a
        DTSTART;TZID=Europe/Berlin:20260105T090000
        DTEND;TZID=Europe/Berlin:20260105T093000
        RRULE:FREQ=DAILY;COUNT=4
        EXDATE;TZID=Europe/Berlin:20260106T090000
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        spans(&busy),
        vec![
            (utc(2026, 1, 5, 8, 0), utc(2026, 1, 5, 8, 30)),
            (utc(2026, 1, 7, 8, 0), utc(2026, 1, 7, 8, 30)),
            (utc(2026, 1, 8, 8, 0), utc(2026, 1, 8, 8, 30)),
        ]
    );
}

#[test]
fn weekly_rule_keeps_local_time_across_dst_and_stops_at_utc_until() {
    // Tuesdays 09:00 New York; DST ends 2026-11-01. UNTIL is a UTC instant on Tue 2026-11-10 14:00Z.
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:b
        DTSTART;TZID=America/New_York:20261020T090000
        DURATION:PT1H
        RRULE:FREQ=WEEKLY;BYDAY=TU;UNTIL=20261110T140000Z
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        busy.iter().map(|b| b.interval.start).collect::<Vec<_>>(),
        vec![utc(2026, 10, 20, 13, 0), utc(2026, 10, 27, 13, 0), utc(2026, 11, 3, 14, 0), utc(2026, 11, 10, 14, 0)]
    );
}

#[test]
fn monthly_last_friday_and_bysetpos() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:c
        DTSTART:20260130T150000Z
        DTEND:20260130T160000Z
        RRULE:FREQ=MONTHLY;BYDAY=-1FR;COUNT=3
        END:VEVENT
        BEGIN:VEVENT
        UID:d
        DTSTART:20260130T100000Z
        DTEND:20260130T110000Z
        RRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1;COUNT=2
        END:VEVENT",
        chrono_tz::UTC,
    );
    let starts: Vec<Instant> = busy.iter().map(|b| b.interval.start).collect();
    assert_eq!(
        starts,
        vec![
            utc(2026, 1, 30, 10, 0),
            utc(2026, 1, 30, 15, 0),
            utc(2026, 2, 27, 10, 0),
            utc(2026, 2, 27, 15, 0),
            utc(2026, 3, 27, 15, 0),
        ]
    );
}

#[test]
fn yearly_rule_with_bymonth_and_monthday() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:y
        DTSTART;VALUE=DATE:20240704
        RRULE:FREQ=YEARLY;BYMONTH=7;BYMONTHDAY=4
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(spans(&busy), vec![(utc(2026, 7, 4, 0, 0), utc(2026, 7, 5, 0, 0))]);
}

#[test]
fn rdate_adds_instances_including_periods() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:e
        DTSTART:20260301T090000Z
        DTEND:20260301T100000Z
        RDATE:20260305T090000Z,20260306T090000Z
        RDATE;VALUE=PERIOD:20260310T120000Z/PT3H
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        spans(&busy),
        vec![
            (utc(2026, 3, 1, 9, 0), utc(2026, 3, 1, 10, 0)),
            (utc(2026, 3, 5, 9, 0), utc(2026, 3, 5, 10, 0)),
            (utc(2026, 3, 6, 9, 0), utc(2026, 3, 6, 10, 0)),
            (utc(2026, 3, 10, 12, 0), utc(2026, 3, 10, 15, 0)),
        ]
    );
}

#[test]
fn recurrence_id_moves_and_cancels_instances() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:f
        DTSTART:20260601T090000Z
        DTEND:20260601T100000Z
        RRULE:FREQ=DAILY;COUNT=3
        END:VEVENT
        BEGIN:VEVENT
        UID:f
        RECURRENCE-ID:20260602T090000Z
        DTSTART:20260602T140000Z
        DTEND:20260602T153000Z
        END:VEVENT
        BEGIN:VEVENT
        UID:f
        RECURRENCE-ID:20260603T090000Z
        DTSTART:20260603T090000Z
        DTEND:20260603T100000Z
        STATUS:CANCELLED
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        spans(&busy),
        vec![(utc(2026, 6, 1, 9, 0), utc(2026, 6, 1, 10, 0)), (utc(2026, 6, 2, 14, 0), utc(2026, 6, 2, 15, 30))]
    );
}

#[test]
fn recurrence_id_this_and_future_shifts_the_rest_of_the_series() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:g
        DTSTART:20260601T090000Z
        DTEND:20260601T100000Z
        RRULE:FREQ=WEEKLY;COUNT=4
        END:VEVENT
        BEGIN:VEVENT
        UID:g
        RECURRENCE-ID;RANGE=THISANDFUTURE:20260615T090000Z
        DTSTART:20260615T110000Z
        DTEND:20260615T113000Z
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        spans(&busy),
        vec![
            (utc(2026, 6, 1, 9, 0), utc(2026, 6, 1, 10, 0)),
            (utc(2026, 6, 8, 9, 0), utc(2026, 6, 8, 10, 0)),
            (utc(2026, 6, 15, 11, 0), utc(2026, 6, 15, 11, 30)),
            (utc(2026, 6, 22, 11, 0), utc(2026, 6, 22, 11, 30)),
        ]
    );
}

#[test]
fn transparent_and_cancelled_are_free_tentative_is_tentative() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:h1
        DTSTART:20260701T090000Z
        DTEND:20260701T100000Z
        TRANSP:TRANSPARENT
        END:VEVENT
        BEGIN:VEVENT
        UID:h2
        DTSTART:20260701T110000Z
        DTEND:20260701T120000Z
        STATUS:CANCELLED
        END:VEVENT
        BEGIN:VEVENT
        UID:h3
        DTSTART:20260701T130000Z
        DTEND:20260701T140000Z
        STATUS:TENTATIVE
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(busy.len(), 1);
    assert_eq!(busy[0].status, BusyStatus::BusyTentative);
    assert_eq!(busy[0].interval.start, utc(2026, 7, 1, 13, 0));
}

#[test]
fn all_day_events_cover_the_participants_local_days() {
    let ics = "BEGIN:VEVENT
        UID:i1
        DTSTART;VALUE=DATE:20260810
        END:VEVENT
        BEGIN:VEVENT
        UID:i2
        DTSTART;VALUE=DATE:20260812
        DTEND;VALUE=DATE:20260814
        END:VEVENT";
    let busy = busy_in(ics, chrono_tz::America::Los_Angeles);
    assert_eq!(
        spans(&busy),
        vec![(utc(2026, 8, 10, 7, 0), utc(2026, 8, 11, 7, 0)), (utc(2026, 8, 12, 7, 0), utc(2026, 8, 14, 7, 0))]
    );
    let busy = busy_in(ics, chrono_tz::Asia::Tokyo);
    assert_eq!(busy[0].interval, Interval::new(utc(2026, 8, 9, 15, 0), utc(2026, 8, 10, 15, 0)));
}

#[test]
fn all_day_event_on_a_switch_day_lasts_23_hours() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:j
        DTSTART;VALUE=DATE:20260329
        END:VEVENT",
        chrono_tz::Europe::Berlin,
    );
    assert_eq!(busy[0].interval.duration(), TimeDelta::hours(23));
}

#[test]
fn nominal_day_versus_exact_24_hours_across_dst() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:k1
        DTSTART;TZID=Europe/Berlin:20261024T120000
        DURATION:P1D
        END:VEVENT
        BEGIN:VEVENT
        UID:k2
        DTSTART;TZID=Europe/Berlin:20261024T120000
        DURATION:PT24H
        END:VEVENT",
        chrono_tz::UTC,
    );
    let mut lengths: Vec<TimeDelta> = busy.iter().map(|b| b.interval.duration()).collect();
    lengths.sort();
    assert_eq!(lengths, vec![TimeDelta::hours(24), TimeDelta::hours(25)]);
}

#[test]
fn floating_times_take_the_participants_zone_or_the_calendars() {
    let body = "BEGIN:VEVENT
        UID:l
        DTSTART:20260901T090000
        DTEND:20260901T100000
        END:VEVENT";
    let busy = busy_in(body, chrono_tz::America::Chicago);
    assert_eq!(busy[0].interval.start, utc(2026, 9, 1, 14, 0));
    let with_zone = cal(&format!("X-WR-TIMEZONE:Europe/Paris\n{body}"));
    let (busy, _) = busy_intervals(&with_zone, year_2026(), chrono_tz::America::Chicago).unwrap();
    assert_eq!(busy[0].interval.start, utc(2026, 9, 1, 7, 0));
}

#[test]
fn dst_gap_shifts_forward_and_overlap_takes_the_first() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:m1
        DTSTART;TZID=America/New_York:20260308T023000
        DTEND;TZID=America/New_York:20260308T040000
        END:VEVENT
        BEGIN:VEVENT
        UID:m2
        DTSTART;TZID=America/New_York:20261101T013000
        DURATION:PT30M
        END:VEVENT",
        chrono_tz::UTC,
    );
    // 02:30 does not exist: read with the offset before the gap (EST), i.e. 07:30Z = 03:30 EDT.
    assert_eq!(busy[0].interval, Interval::new(utc(2026, 3, 8, 7, 30), utc(2026, 3, 8, 8, 0)));
    // 01:30 happens twice: the first (EDT) is 05:30Z.
    assert_eq!(busy[1].interval, Interval::new(utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 0)));
}

#[test]
fn custom_vtimezone_definition_is_applied_with_its_dst_rules() {
    let busy = busy_in(
        "BEGIN:VTIMEZONE
        TZID:Clinic Local Time
        BEGIN:STANDARD
        DTSTART:19701101T020000
        RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU
        TZOFFSETFROM:-0400
        TZOFFSETTO:-0500
        END:STANDARD
        BEGIN:DAYLIGHT
        DTSTART:19700308T020000
        RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU
        TZOFFSETFROM:-0500
        TZOFFSETTO:-0400
        END:DAYLIGHT
        END:VTIMEZONE
        BEGIN:VEVENT
        UID:n1
        DTSTART;TZID=Clinic Local Time:20260115T090000
        DTEND;TZID=Clinic Local Time:20260115T100000
        END:VEVENT
        BEGIN:VEVENT
        UID:n2
        DTSTART;TZID=Clinic Local Time:20260715T090000
        DTEND;TZID=Clinic Local Time:20260715T100000
        END:VEVENT
        BEGIN:VEVENT
        UID:n3
        DTSTART;TZID=Clinic Local Time:20260308T023000
        DURATION:PT1H
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        busy.iter().map(|b| b.interval.start).collect::<Vec<_>>(),
        vec![utc(2026, 1, 15, 14, 0), utc(2026, 3, 8, 7, 30), utc(2026, 7, 15, 13, 0)]
    );
}

#[test]
fn windows_and_vendor_prefixed_tzids_resolve() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:o1
        DTSTART;TZID=W. Europe Standard Time:20260115T090000
        DTEND;TZID=W. Europe Standard Time:20260115T100000
        END:VEVENT
        BEGIN:VEVENT
        UID:o2
        DTSTART;TZID=/mozilla.org/20050126_1/America/Denver:20260115T090000
        DTEND;TZID=/mozilla.org/20050126_1/America/Denver:20260115T100000
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        busy.iter().map(|b| b.interval.start).collect::<Vec<_>>(),
        vec![utc(2026, 1, 15, 8, 0), utc(2026, 1, 15, 16, 0)]
    );
}

#[test]
fn unknown_tzid_is_a_warning_and_uses_the_participants_zone() {
    let ics = cal("BEGIN:VEVENT
        UID:p
        DTSTART;TZID=Atlantis/Capital:20260115T090000
        DURATION:PT1H
        END:VEVENT");
    let (busy, warnings) = busy_intervals(&ics, year_2026(), chrono_tz::Europe::Lisbon).unwrap();
    assert_eq!(busy[0].interval.start, utc(2026, 1, 15, 9, 0));
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].line, 6);
}

#[test]
fn vfreebusy_periods_keep_their_type() {
    let busy = busy_in(
        "BEGIN:VFREEBUSY
        DTSTART:20260102T140000Z
        DTEND:20260103T220000Z
        FREEBUSY;FBTYPE=BUSY:20260102T150000Z/PT1H,20260102T170000Z/20260102T180000Z
        FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20260103T090000Z/PT8H
        FREEBUSY;FBTYPE=FREE:20260103T200000Z/PT1H
        FREEBUSY;FBTYPE=BUSY-TENTATIVE:20260103T190000Z/PT30M
        END:VFREEBUSY",
        chrono_tz::UTC,
    );
    assert_eq!(
        busy.iter().map(|b| (b.interval.start, b.status)).collect::<Vec<_>>(),
        vec![
            (utc(2026, 1, 2, 15, 0), BusyStatus::Busy),
            (utc(2026, 1, 2, 17, 0), BusyStatus::Busy),
            (utc(2026, 1, 3, 9, 0), BusyStatus::BusyUnavailable),
            (utc(2026, 1, 3, 19, 0), BusyStatus::BusyTentative),
        ]
    );
}

#[test]
fn horizon_clips_occurrences_of_an_endless_rule() {
    let ics = cal("BEGIN:VEVENT
        UID:q
        DTSTART:20200101T090000Z
        DURATION:PT1H
        RRULE:FREQ=DAILY
        END:VEVENT");
    let h = Interval::new(utc(2026, 5, 1, 0, 0), utc(2026, 5, 8, 0, 0));
    let (busy, _) = busy_intervals(&ics, h, chrono_tz::UTC).unwrap();
    assert_eq!(busy.len(), 7);
    assert_eq!(busy[0].interval.start, utc(2026, 5, 1, 9, 0));
}

#[test]
fn malformed_calendars_name_the_line() {
    let cases = [
        ("BEGIN:VEVENT\nUID:x\nDTSTART:2026-01-01\nEND:VEVENT", 6, "DATE-TIME"),
        ("BEGIN:VEVENT\nUID:x\nDTSTART:20260101T090000Z\nDURATION:1 hour\nEND:VEVENT", 7, "DURATION"),
        ("BEGIN:VEVENT\nUID:x\nDTSTART:20260101T090000Z\nRRULE:FREQ=SOMETIMES\nEND:VEVENT", 7, "RRULE"),
        // Found by the fuzz target `calendars`: the recurrence crate panicked on it.
        (
            "BEGIN:VEVENT\nUID:x\nDTSTART:20260101T090000Z\nRRULE:FREQ=WEEKLY;BYDAY=\u{8220}O\nEND:VEVENT",
            7,
            "not ASCII",
        ),
        ("BEGIN:VEVENT\nUID:x\nEND:VEVENT", 4, "DTSTART"),
        ("BEGIN:VEVENT\nUID:x\nDTSTART:20260101T090000Z\nEND:VTODO", 7, "closes"),
    ];
    for (body, line, needle) in cases {
        let ics = format!("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\n{body}\nEND:VCALENDAR\n");
        let err = busy_intervals(&ics, year_2026(), chrono_tz::UTC).unwrap_err();
        assert_eq!(err.line, line, "{body}: {err}");
        assert!(err.message.contains(needle), "{body}: {err}");
    }
}

#[test]
fn parsed_calendar_holds_no_event_text() {
    let ics = cal("BEGIN:VEVENT
        UID:r
        SUMMARY:Chemotherapy session
        DESCRIPTION:Bring the referral letter
        LOCATION:Oncology ward 3
        ATTENDEE;CN=Alice Example:mailto:alice@example.org
        ORGANIZER:mailto:dr.who@example.org
        DTSTART:20260101T090000Z
        DURATION:PT1H
        BEGIN:VALARM
        DESCRIPTION:Reminder text
        TRIGGER:-PT15M
        END:VALARM
        END:VEVENT");
    let parsed = format!("{:?}", Calendar::parse(&ics).unwrap());
    for secret in ["Chemotherapy", "referral", "Oncology", "Alice", "alice@", "dr.who", "Reminder"] {
        assert!(!parsed.contains(secret), "{secret} reached the parsed calendar");
    }
}

#[test]
fn a_later_sequence_of_the_same_uid_replaces_the_earlier() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:s
        SEQUENCE:2
        DTSTART:20260301T100000Z
        DURATION:PT1H
        END:VEVENT
        BEGIN:VEVENT
        UID:s
        SEQUENCE:1
        DTSTART:20260301T080000Z
        DURATION:PT1H
        END:VEVENT
        BEGIN:VEVENT
        UID:t
        DTSTART:20260302T080000Z
        DURATION:PT1H
        END:VEVENT
        BEGIN:VEVENT
        UID:t
        DTSTART:20260302T090000Z
        DURATION:PT1H
        END:VEVENT",
        chrono_tz::UTC,
    );
    // UID s: SEQUENCE 2 wins although it comes first; UID t: same SEQUENCE, the last one wins.
    assert_eq!(
        busy.iter().map(|b| b.interval.start).collect::<Vec<_>>(),
        vec![utc(2026, 3, 1, 10, 0), utc(2026, 3, 2, 9, 0)]
    );
}

#[test]
fn an_override_for_an_instance_the_series_no_longer_has_is_dropped() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:u
        DTSTART:20260301T100000Z
        DURATION:PT1H
        RRULE:FREQ=DAILY;COUNT=2
        END:VEVENT
        BEGIN:VEVENT
        UID:u
        RECURRENCE-ID:20260310T100000Z
        DTSTART:20260310T150000Z
        DURATION:PT1H
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(busy.len(), 2);
}

#[test]
fn an_all_day_series_matches_overrides_written_with_a_tzid() {
    // Outlook writes RECURRENCE-ID;TZID=...:20260416T000000 for an all-day series.
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:v
        DTSTART;VALUE=DATE:20260402
        DTEND;VALUE=DATE:20260403
        RRULE:FREQ=WEEKLY;COUNT=3;INTERVAL=2
        END:VEVENT
        BEGIN:VEVENT
        UID:v
        RECURRENCE-ID;TZID=GMT Standard Time:20260416T000000
        DTSTART;VALUE=DATE:20260417
        DTEND;VALUE=DATE:20260418
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        busy.iter().map(|b| b.interval.start).collect::<Vec<_>>(),
        vec![utc(2026, 4, 2, 0, 0), utc(2026, 4, 17, 0, 0), utc(2026, 4, 30, 0, 0)]
    );
}

#[test]
fn until_edge_cases() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:w1
        DTSTART:20260901T120000Z
        DURATION:PT1H
        RRULE:FREQ=DAILY;UNTIL=20260903
        END:VEVENT
        BEGIN:VEVENT
        UID:w2
        DTSTART;VALUE=DATE:20261002
        RRULE:FREQ=WEEKLY;UNTIL=20260901
        END:VEVENT
        BEGIN:VEVENT
        UID:w3
        DTSTART:20261101T120000Z
        DURATION:PT1H
        RRULE:FREQ=DAILY;COUNT=-1;UNTIL=20261102T120000Z
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        busy.iter().map(|b| b.interval.start).collect::<Vec<_>>(),
        vec![
            // A DATE UNTIL on a timed series is midnight: the 3rd at 12:00 is past it.
            utc(2026, 9, 1, 12, 0),
            utc(2026, 9, 2, 12, 0),
            // w2 ends before it starts: Google's "delete this and following", nothing left.
            // w3: COUNT=-1 is ignored, UNTIL applies.
            utc(2026, 11, 1, 12, 0),
            utc(2026, 11, 2, 12, 0),
        ]
    );
}

/// RFC 5545 §3.8.5.3: DTSTART always counts as the first of COUNT occurrences. Here calsync
/// differs on purpose from recurring-ical-events, which adds an off-rule DTSTART on top of COUNT
/// (2026-06-15 would be a third Monday); libical, like calsync, follows the RFC.
#[test]
fn dtstart_off_the_rule_still_counts_and_an_empty_rule_repeats_nothing() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:x1
        DTSTART:20260602T090000Z
        DURATION:PT1H
        RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=2
        END:VEVENT
        BEGIN:VEVENT
        UID:x2
        DTSTART:20260610T090000Z
        DURATION:PT1H
        RRULE:
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(
        busy.iter().map(|b| b.interval.start).collect::<Vec<_>>(),
        vec![utc(2026, 6, 2, 9, 0), utc(2026, 6, 8, 9, 0), utc(2026, 6, 10, 9, 0)]
    );
}

#[test]
fn dtend_before_dtstart_is_read_as_swapped() {
    let busy = busy_in(
        "BEGIN:VEVENT
        UID:z
        DTSTART:20260304T073000Z
        DTEND:20260304T070000Z
        END:VEVENT",
        chrono_tz::UTC,
    );
    assert_eq!(busy[0].interval, Interval::new(utc(2026, 3, 4, 7, 0), utc(2026, 3, 4, 7, 30)));
}

#[test]
fn unknown_rule_parts_are_errors_but_x_parts_are_not() {
    let typo = cal("BEGIN:VEVENT
        UID:a
        DTSTART:20260101T090000Z
        RRULE:FREQ=WEEKLY;UNTL=20260301
        END:VEVENT");
    let err = busy_intervals(&typo, year_2026(), chrono_tz::UTC).unwrap_err();
    assert!(err.message.contains("UNTL"), "{err}");
    busy_in(
        "BEGIN:VEVENT
        UID:b
        DTSTART:20260101T090000Z
        RRULE:FREQ=WEEKLY;COUNT=2;X-VENDOR=1
        END:VEVENT",
        chrono_tz::UTC,
    );
}

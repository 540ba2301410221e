//! iCalendar files: lexer, values, RRULE, VTIMEZONE and expansion, within their bounds.

use calsync_core::Interval;
use proptest::prelude::*;

use super::{config, mutated, seeds};

const WORDS: &[&str] = &[
    "\r\n",
    "\n ",
    ":",
    ";",
    "=",
    ",",
    "\"",
    "BEGIN:VEVENT\r\n",
    "END:VEVENT\r\n",
    "BEGIN:VTIMEZONE\r\n",
    "END:VTIMEZONE\r\n",
    "BEGIN:STANDARD\r\n",
    "END:STANDARD\r\n",
    "DTSTART:",
    "DTSTART;TZID=Custom/Berlin:",
    "DTSTART;VALUE=DATE:",
    "DTEND:",
    "DURATION:P",
    "PT1H",
    "P1W",
    "RRULE:",
    "FREQ=SECONDLY",
    "FREQ=YEARLY",
    "BYDAY=",
    "-1SU",
    "BYSETPOS=",
    "BYMONTHDAY=",
    "-1",
    "31",
    "COUNT=",
    "UNTIL=",
    "INTERVAL=",
    "0",
    "EXDATE:",
    "RDATE;VALUE=PERIOD:",
    "/PT2H",
    "RECURRENCE-ID;RANGE=THISANDFUTURE:",
    "TZOFFSETFROM:",
    "TZOFFSETTO:",
    "+9999",
    "-2400",
    "+0545",
    "20270314T023000",
    "20261105T013000",
    "99991231T235959Z",
    "00010101",
    "Z",
    "T",
    "STATUS:",
    "CANCELLED",
    "TRANSP:TRANSPARENT",
    "SEQUENCE:",
    "UID:",
    "FREEBUSY:",
    "X-WR-TIMEZONE:",
    "Europe/Berlin",
];

proptest! {
    #![proptest_config(config("calendars.txt"))]

    #[test]
    fn calendars_expand_or_are_refused(text in mutated(seeds("calendars", false, &["fixtures/demo/son.ics", "fixtures/demo/daughter.ics"]), WORDS)) {
        let horizon = Interval::new("2026-12-04T00:00:00Z".parse().unwrap(), "2027-06-03T00:00:00Z".parse().unwrap());
        for zone in [chrono_tz::Europe::Berlin, chrono_tz::America::Los_Angeles] {
            if let Ok((busy, _)) = calsync_ical::busy_intervals(&text, horizon, zone) {
                prop_assert!(busy.iter().all(|b| b.interval.start <= b.interval.end));
            }
        }
    }
}

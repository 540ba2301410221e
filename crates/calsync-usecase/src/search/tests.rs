use super::*;
use chrono::TimeZone;

fn ms(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap().timestamp_millis()
}

#[test]
fn prefixes_over_precision_ranges() {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 0, 0, 0).unwrap();
    let day = (Some(ms(2026, 12, 7, 0, 0)), Some(ms(2026, 12, 8, 0, 0)));
    let b = |v| date_bound(v, now).unwrap();
    assert_eq!((b("2026-12-07").lo, b("2026-12-07").hi), day);
    assert!(b("ne2026-12-07").negate);
    assert_eq!(b("gt2026-12-07"), Bound { lo: day.1, hi: None, negate: false });
    assert_eq!(b("sa2026-12-07"), b("gt2026-12-07"));
    assert_eq!(b("lt2026-12-07"), Bound { lo: None, hi: day.0, negate: false });
    assert_eq!(b("eb2026-12-07"), b("lt2026-12-07"));
    assert_eq!(b("ge2026-12-07"), Bound { lo: day.0, hi: None, negate: false });
    assert_eq!(b("le2026-12-07"), Bound { lo: None, hi: day.1, negate: false });
    assert_eq!((b("2026").lo, b("2026").hi), (Some(ms(2026, 1, 1, 0, 0)), Some(ms(2027, 1, 1, 0, 0))));
    assert_eq!((b("2026-02").lo, b("2026-02").hi), (Some(ms(2026, 2, 1, 0, 0)), Some(ms(2026, 3, 1, 0, 0))));
    assert_eq!(
        (b("2026-12-07T09:30").lo, b("2026-12-07T09:30").hi),
        (Some(ms(2026, 12, 7, 9, 30)), Some(ms(2026, 12, 7, 9, 31)))
    );
    assert_eq!(b("ge2026-12-07T10:30:00+01:00").lo, Some(ms(2026, 12, 7, 9, 30)));
    let ap = b("ap2026-12-07");
    assert!(ap.lo.unwrap() < day.0.unwrap() && ap.hi.unwrap() > day.1.unwrap());
    for bad in ["tomorrow", "2026-13-01", "ge", "2026-12-07T25:00", "xx2026"] {
        assert!(date_bound(bad, now).is_err(), "{bad}");
    }
}

#[test]
fn references_in_three_forms() {
    assert_eq!(reference("Schedule", "Schedule/1").unwrap(), "Schedule/1");
    assert_eq!(reference("Schedule", "1").unwrap(), "Schedule/1");
    assert_eq!(reference("Schedule", "http://example.org/fhir/Schedule/1").unwrap(), "Schedule/1");
    assert!(reference("Schedule", "Location/1").is_err());
}

#[test]
fn cursors_round_trip_and_forgeries_are_refused() {
    for c in [Cursor::Slot(1_790_000_000_000, "a-1".into()), Cursor::Id("x.y".into())] {
        assert_eq!(parse_cursor(&cursor_token(&c)).unwrap(), c);
    }
    for bad in ["zz", "7", "78", &"00".repeat(300)] {
        assert!(parse_cursor(bad).is_err(), "{bad}");
    }
}

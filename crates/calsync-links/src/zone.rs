//! The time zone of a publisher's Location, for times that need one: whole-day Slots given as
//! dates, and `Z` times a publisher is known to write in local time.

use chrono_tz::Tz;
use serde_json::Value;

/// US states and territories (USPS codes) by the zone most of their people live in. SMART
/// Scheduling Links Locations carry `address.state`, not a zone.
const STATE_ZONES: &[(&str, Tz)] = &[
    ("AK", Tz::America__Anchorage),
    ("AL", Tz::America__Chicago),
    ("AR", Tz::America__Chicago),
    ("AS", Tz::Pacific__Pago_Pago),
    ("AZ", Tz::America__Phoenix),
    ("CA", Tz::America__Los_Angeles),
    ("CO", Tz::America__Denver),
    ("CT", Tz::America__New_York),
    ("DC", Tz::America__New_York),
    ("DE", Tz::America__New_York),
    ("FL", Tz::America__New_York),
    ("GA", Tz::America__New_York),
    ("GU", Tz::Pacific__Guam),
    ("HI", Tz::Pacific__Honolulu),
    ("IA", Tz::America__Chicago),
    ("ID", Tz::America__Boise),
    ("IL", Tz::America__Chicago),
    ("IN", Tz::America__Indiana__Indianapolis),
    ("KS", Tz::America__Chicago),
    ("KY", Tz::America__New_York),
    ("LA", Tz::America__Chicago),
    ("MA", Tz::America__New_York),
    ("MD", Tz::America__New_York),
    ("ME", Tz::America__New_York),
    ("MI", Tz::America__Detroit),
    ("MN", Tz::America__Chicago),
    ("MO", Tz::America__Chicago),
    ("MP", Tz::Pacific__Saipan),
    ("MS", Tz::America__Chicago),
    ("MT", Tz::America__Denver),
    ("NC", Tz::America__New_York),
    ("ND", Tz::America__Chicago),
    ("NE", Tz::America__Chicago),
    ("NH", Tz::America__New_York),
    ("NJ", Tz::America__New_York),
    ("NM", Tz::America__Denver),
    ("NV", Tz::America__Los_Angeles),
    ("NY", Tz::America__New_York),
    ("OH", Tz::America__New_York),
    ("OK", Tz::America__Chicago),
    ("OR", Tz::America__Los_Angeles),
    ("PA", Tz::America__New_York),
    ("PR", Tz::America__Puerto_Rico),
    ("RI", Tz::America__New_York),
    ("SC", Tz::America__New_York),
    ("SD", Tz::America__Chicago),
    ("TN", Tz::America__Chicago),
    ("TX", Tz::America__Chicago),
    ("UT", Tz::America__Denver),
    ("VA", Tz::America__New_York),
    ("VI", Tz::America__St_Thomas),
    ("VT", Tz::America__New_York),
    ("WA", Tz::America__Los_Angeles),
    ("WI", Tz::America__Chicago),
    ("WV", Tz::America__New_York),
    ("WY", Tz::America__Denver),
];

/// The zone of a Location from its `address.state`, when that is a US state or territory.
pub fn of_location(location: &Value) -> Option<Tz> {
    let state = location["address"]["state"].as_str()?.trim();
    STATE_ZONES.iter().find(|(code, _)| code.eq_ignore_ascii_case(state)).map(|(_, tz)| *tz)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_location_has_the_zone_of_its_state_and_none_without_one() {
        assert_eq!(of_location(&json!({"address": {"state": "MA"}})), Some(Tz::America__New_York));
        assert_eq!(of_location(&json!({"address": {"state": " wi "}})), Some(Tz::America__Chicago));
        assert_eq!(of_location(&json!({"address": {"state": "Bavaria"}})), None);
        assert_eq!(of_location(&json!({"name": "no address"})), None);
        let codes: Vec<&str> = STATE_ZONES.iter().map(|(c, _)| *c).collect();
        let mut sorted = codes.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(codes, sorted, "sorted, each once");
    }
}

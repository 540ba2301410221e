//! Operation parameters: the query string and the Parameters body of `$find`, `$find-mutual`,
//! `$hold` and `$book`, read into the query the use case takes.

use calsync_api::operation::find_query;
use calsync_api::operation::inputs::Inputs;
use calsync_usecase::find::Edge;
use proptest::prelude::*;

use super::{config, mutated, now, seeds};

const WORDS: &[&str] = &[
    "&",
    "=",
    ",",
    "%",
    "start=",
    "end=",
    "duration=",
    "timezone=",
    "participant=",
    "participant:optional=",
    "explain=true",
    "_count=",
    "_offset=",
    "T00:00",
    "Z",
    "-05:00",
    "+14:00",
    "262143",
    "2027-03-14",
    "America/New_York",
    "Pacific/Apia",
    "\"",
    "{",
    "}",
    "[",
    "]",
    ":",
    "null",
    "true",
    "1e400",
    "-1",
    "\"valueDate\":",
    "\"valueReference\":",
    "\"resource\":",
    "\"parameter\":",
    "\"name\":",
    "\\u0000",
    "Patient/",
    "RelatedPerson/",
];

proptest! {
    #![proptest_config(config("operations.txt"))]

    #[test]
    fn find_parameters_read_or_are_refused(query in mutated(seeds("operations", true, &[]), WORDS), mutual in any::<bool>()) {
        let (query, body) = if query.starts_with('{') { (String::new(), query) } else { (query, String::new()) };
        if let Ok(inputs) = Inputs::parse(&query, body.as_bytes()) {
            if let Ok(found) = find_query(&inputs, mutual, now()) {
                for zone in [chrono_tz::UTC, chrono_tz::Pacific::Kiritimati, chrono_tz::America::St_Johns] {
                    let window = found.window.in_zone(zone);
                    // Whole days, first before last, span at least a day less an hour (DST).
                    if let (Edge::Days(first, _), Edge::Days(_, last)) = (found.window.start, found.window.end)
                        && first <= last
                    {
                        prop_assert!(window.end - window.start >= chrono::TimeDelta::hours(23), "{window:?}");
                    }
                }
            }
            let _ = inputs.one("appointment-reference");
            let _ = inputs.flag("explain");
        }
    }
}

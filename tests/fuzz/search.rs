//! Search parameters, cursors and the dates in them.

use calsync_usecase::search::{SearchRequest, query_pairs};
use proptest::prelude::*;

use super::{config, mutated, now, seeds};

const WORDS: &[&str] = &[
    "&",
    "=",
    ",",
    ":",
    "|",
    "%",
    "%C3",
    "%A9",
    "%00",
    "%2B",
    "+",
    "-",
    ".",
    "_count=",
    "_cursor=",
    "_include=",
    "_include:iterate=",
    "_revinclude=",
    "_sort=",
    "_elements=",
    "_summary=",
    "_lastUpdated=",
    ":not",
    ":contains",
    ":exact",
    ":missing",
    ":Schedule",
    "ge",
    "lt",
    "sa",
    "eb",
    "ap",
    "ne",
    "T",
    "Z",
    "+14:00",
    "262143",
    "-262143",
    "9999",
    "0000",
    "2027-02-29",
    "00:00",
    "24:00",
    "Slot:schedule",
    "Appointment:slot",
    "Schedule:actor",
    "e9",
    "ffffffff",
    "733",
];

const TYPES: &[&str] =
    &["Slot", "Schedule", "Location", "Appointment", "Patient", "Task", "Consent", "PractitionerRole"];

proptest! {
    #![proptest_config(config("search.txt"))]

    #[test]
    fn search_parameters_parse_or_are_refused(query in mutated(seeds("search", true, &[]), WORDS), strict in any::<bool>()) {
        if let Ok(pairs) = query_pairs(&query, false) {
            for t in TYPES {
                if let Ok(request) = SearchRequest::parse(t, &pairs, strict, now()) {
                    // What a parsed search keeps makes the links of its Bundle.
                    prop_assert!(request.kept().iter().all(|(k, _)| !k.is_empty()));
                }
            }
        }
        let _ = query_pairs(&query, true);
    }

    #[test]
    fn cursors_parse_or_are_refused(cursor in mutated(vec!["733230323731".into(), "69733".into(), "7532303236".into()], WORDS)) {
        let pairs = vec![("_cursor".to_string(), cursor)];
        for t in ["Slot", "Location"] {
            let _ = SearchRequest::parse(t, &pairs, false, now());
        }
    }

    #[test]
    fn dates_read_or_are_refused(date in mutated(vec!["2027-03-14".into(), "2027-03-14T02:30:00-05:00".into(), "2027".into(), "2027-11".into(), "2027-01-04T14:00:00.123Z".into()], WORDS)) {
        if let Some((lo, hi)) = calsync_fhir::index::precision_range(&date) {
            prop_assert!(lo <= hi, "{date}: {lo} > {hi}");
        }
        for name in ["start", "end", "date", "_lastUpdated"] {
            let _ = SearchRequest::parse("Slot", &[(name.to_string(), date.clone())], true, now());
        }
    }
}

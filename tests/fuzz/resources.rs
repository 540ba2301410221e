//! FHIR JSON resources as clients write them: validated, indexed, their dates read.

use proptest::prelude::*;

use super::{config, json_words, mutated, seeds};

const WORDS: &[&str] = &[
    "1.50",
    "\"\"",
    "\\ud800",
    "\"start\":",
    "\"end\":",
    "\"status\":",
    "\"reference\":",
    "\"extension\":",
    "\"url\":",
    "\"valueInteger\":",
    "\"resourceType\":",
    "\"meta\":",
    "\"id\":",
    "\"contained\":",
    "+262143-12-31T23:59:59Z",
    "2027-02-30",
    "2027-03-14T02:30:00-05:00",
    "T24:00:00Z",
    "Patient/",
    "Slot/",
    "#",
    "urn:uuid:",
];

const TYPES: &[&str] =
    &["Slot", "Schedule", "Location", "Appointment", "Patient", "RelatedPerson", "Task", "Consent", "PractitionerRole"];

proptest! {
    #![proptest_config(config("resources.txt"))]

    #[test]
    fn resources_validate_or_are_refused(text in mutated(seeds("resources", true, &["fixtures/demo/provider.ndjson", "fixtures/demo/participants.ndjson"]), json_words(WORDS))) {
        for t in TYPES {
            if let Ok(resource) = calsync_fhir::validate::resource(&text, t) {
                let _ = calsync_fhir::index::entries(t, &resource);
                let _ = calsync_fhir::index::date_entries(t, &resource);
                let _ = calsync_fhir::index::unreadable_date(t, &resource);
            }
        }
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(&text) {
            // The index reads whatever JSON a stored resource holds.
            for t in TYPES {
                let _ = calsync_fhir::index::entries(t, &value);
                let _ = calsync_fhir::index::date_entries(t, &value);
            }
        }
    }
}

//! SMART Scheduling Links manifests and NDJSON lines, as another publisher writes them.

use calsync_links::{Namespace, Options, Reader, read_manifest};
use proptest::prelude::*;

use super::{config, json_words, mutated, seeds};

const WORDS: &[&str] = &[
    "\"output\":",
    "\"type\":",
    "\"url\":",
    "\"transactionTime\":",
    "\"extension\":",
    "\"state\":",
    "\"request\":",
    "file:///etc/passwd",
    "http://",
    "../",
    "\"Slot\"",
    "\"Location\"",
    "\"resourceType\":",
    "\"id\":",
    "\"start\":",
    "\"end\":",
    "\"status\":",
    "\"schedule\":",
    "\"reference\":",
    "\"meta\":",
    "\"source\":",
    "\"address\":",
    "\"state\":\"MA\"",
    "Z",
    "-05:00",
    "+262143",
    "2021-03-01T08:00:00",
    "\\\"",
    "\\u00e9",
    "1.50",
    "\"busy-tentative\"",
];

proptest! {
    #![proptest_config(config("feeds.txt"))]

    #[test]
    fn manifests_read_or_are_refused(text in mutated(seeds("feeds", false, &[]).into_iter().filter(|s| s.contains("\"output\"")).collect(), json_words(WORDS))) {
        let base = url::Url::parse("https://publisher.example/fhir/$bulk-publish").unwrap();
        let mut problems = Vec::new();
        if let Ok(manifest) = read_manifest(&text, &base, &mut problems) {
            prop_assert!(manifest.outputs.iter().all(|o| !o.resource_type.is_empty()));
        }
    }

    #[test]
    fn feed_lines_read_or_are_refused(line in mutated(seeds("feeds", true, &[]).into_iter().filter(|s| s.contains("resourceType")).collect(), json_words(WORDS)), local_times in any::<bool>()) {
        let options = Options { zone: Some("America/New_York".into()), local_times };
        let base = url::Url::parse("https://publisher.example/fhir/$bulk-publish").unwrap();
        let mut reader = Reader::new(Namespace("ssl-fuzz".into()), options, base, "2026-12-05T12:00:00Z".into());
        for t in ["Location", "Schedule", "Slot", "PractitionerRole"] {
            if let Ok((ingest, _)) = reader.line(t, &line) {
                prop_assert!(ingest.id.starts_with("ssl-fuzz."));
                prop_assert!(calsync_store::is_valid_id(&ingest.id), "{}", ingest.id);
            }
        }
    }
}

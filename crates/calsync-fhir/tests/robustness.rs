//! Whatever the lines, reading provider data records problems and never panics.

use calsync_fhir::ProviderData;
use proptest::prelude::*;

const FRAGMENTS: &[&str] = &[
    r#"{"resourceType":"Slot","id":"a","schedule":{"reference":"Schedule/s"},"status":"free","start":"2026-12-01T09:00:00Z","end":"2026-12-01T09:30:00Z"}"#,
    r#"{"resourceType":"Slot","id":"b","schedule":{"reference":"Schedule/s"},"status":"free","start":"+275760-09-13T00:00:00Z","end":"2026-12-01T09:30:00Z"}"#,
    r#"{"resourceType":"Slot","id":"c","schedule":{},"status":"","start":"","end":""}"#,
    r#"{"resourceType":"Slot","extension":[{"url":"http://fhir-registry.smarthealthit.org/StructureDefinition/slot-capacity","valueInteger":-5}],"id":"d","schedule":{"reference":"Schedule/s"},"status":"free","start":"2026-12-01T09:00:00Z","end":"2026-12-01T10:00:00Z"}"#,
    r#"{"resourceType":"Slot","extension":[{"url":"x","valueInteger":1e999}]}"#,
    r#"{"resourceType":"Schedule","actor":[{"reference":"Location/1"}]}"#,
    r#"{"resourceType":"Location","id":"l","name":"x"}"#,
    r#"{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Bundle","type":"collection","entry":[{}]}}]}"#,
    r#"{"resourceType":"Nope"}"#,
    r#"{"resourceType":7}"#,
    r#"{}"#,
    "[]",
    "null",
    "{",
    "}",
    "\"",
    "\u{0}",
    "{\"resourceType\":\"Slot\",\"id\":\"\u{1F600}\"}",
    r#"{"resourceType":"Slot","_id":{"extension":[{"url":"u","valueString":"v"}]}}"#,
    "99999999999999999999999999999999999999999999",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics(lines in prop::collection::vec(prop::sample::select(FRAGMENTS.to_vec()), 0..12), joined in any::<bool>()) {
        let text = if joined { lines.concat() } else { lines.join("\n") };
        let mut data = ProviderData::default();
        data.read("fuzz.ndjson", &text);
        prop_assert!(data.problems.iter().all(|p| p.line >= 1));
    }
}

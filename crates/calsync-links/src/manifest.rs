//! A publisher's `$bulk-publish` manifest, read leniently: what can be used is used, and what
//! was wrong is said.

use serde_json::Value;
use url::Url;

/// One file the manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// `Location`, `Schedule`, `Slot`, ...
    pub resource_type: String,
    /// Where it is (relative URLs resolved against the manifest's).
    pub url: Url,
    /// `extension.state`.
    pub states: Vec<String>,
}

/// What a manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `transactionTime`, when it is an instant.
    pub transaction_time: Option<String>,
    /// `request`: the URL the publisher answered (with `_since` when it honoured one).
    pub request: Option<String>,
    /// `output[]`, in the manifest's order.
    pub outputs: Vec<Output>,
    /// The calsync installation that publishes it (`extension` under
    /// [`calsync_store::origin::ORIGIN_EXTENSION`]), when it is one.
    pub instance: Option<String>,
}

/// Reads a manifest fetched from `base`; `problems` gets what was wrong but could be read
/// around. Fails only when nothing can be used.
pub fn read(text: &str, base: &Url, problems: &mut Vec<String>) -> Result<Manifest, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    let Some(entries) = v["output"].as_array() else {
        return Err("the manifest has no output array".into());
    };
    let transaction_time = match v["transactionTime"].as_str() {
        Some(t) if chrono::DateTime::parse_from_rfc3339(t).is_ok() => Some(t.to_string()),
        other => {
            problems.push(format!("transactionTime {other:?} is not an instant"));
            None
        }
    };
    let mut outputs = Vec::new();
    for (n, e) in entries.iter().enumerate() {
        let named = |key: &str| e[key].as_str().filter(|v| !v.trim().is_empty());
        let (Some(t), Some(u)) = (named("type"), named("url")) else {
            problems.push(format!("output[{n}] has no type or url"));
            continue;
        };
        let Ok(url) = base.join(u) else {
            problems.push(format!("output[{n}].url {u:?} is not a URL"));
            continue;
        };
        let states = match &e["extension"]["state"] {
            Value::Array(items) => items.iter().filter_map(Value::as_str).map(String::from).collect(),
            Value::String(s) => {
                problems.push(format!("output[{n}].extension.state is a string, not an array"));
                vec![s.clone()]
            }
            _ => Vec::new(),
        };
        outputs.push(Output { resource_type: t.to_string(), url, states });
    }
    let instance = v["extension"][calsync_store::origin::ORIGIN_EXTENSION].as_str().map(String::from);
    Ok(Manifest { transaction_time, request: v["request"].as_str().map(String::from), outputs, instance })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_messy_manifest_is_read_around_its_problems() {
        let base = Url::parse("http://p.example/feed/$bulk-publish").unwrap();
        let text = r#"{"transactionTime":"yesterday","request":"http://p.example/feed/$bulk-publish","output":[
            {"type":"Location","url":"locations.ndjson"},
            {"type":"Slot","url":"http://cdn.example/slots.ndjson","extension":{"state":"MA"}},
            {"url":"lost.ndjson"}],"error":[]}"#;
        let mut problems = Vec::new();
        let m = read(text, &base, &mut problems).unwrap();
        assert_eq!(m.transaction_time, None);
        assert_eq!(m.outputs[0].url.as_str(), "http://p.example/feed/locations.ndjson");
        assert_eq!(m.outputs[1].states, vec!["MA"]);
        assert_eq!(m.outputs.len(), 2);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(read("{}", &base, &mut problems).is_err());
        assert!(read("<html>", &base, &mut problems).is_err());
    }
}

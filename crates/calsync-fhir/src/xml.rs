//! FHIR R4 XML at the edge: calsync works in JSON, and converts a resource (or Bundle) to XML for
//! a client that asks for it, and an XML body to JSON before it is read. fhirbolt reads and
//! writes both; a panic of it on input is an error like any other.

use fhirbolt::model::r4::Resource;

/// The XML of a resource given as FHIR JSON text. Empty arrays and objects, which FHIR JSON
/// never has and XML cannot say, are left out (a searchset without entries has `"entry": []`).
pub fn from_json(json: &str) -> Result<String, String> {
    let mut value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    without_empty(&mut value);
    let json = value.to_string();
    guarded(move || {
        let resource: Resource = fhirbolt::json::from_str(&json, None).map_err(|e| e.to_string())?;
        fhirbolt::xml::to_string(&resource, None).map_err(|e| e.to_string())
    })
}

/// Removes every empty array and object (and members left empty by that) from `value`.
pub fn without_empty(value: &mut serde_json::Value) {
    use serde_json::Value;
    let empty =
        |v: &Value| matches!(v, Value::Array(a) if a.is_empty()) || matches!(v, Value::Object(o) if o.is_empty());
    match value {
        Value::Array(items) => {
            items.iter_mut().for_each(without_empty);
            items.retain(|v| !empty(v));
        }
        Value::Object(members) => {
            members.values_mut().for_each(without_empty);
            members.retain(|_, v| !empty(v));
        }
        _ => {}
    }
}

/// The FHIR JSON of a resource given as XML text.
pub fn to_json(xml: &str) -> Result<String, String> {
    guarded(|| {
        let resource: Resource = fhirbolt::xml::from_str(xml, None).map_err(|e| e.to_string())?;
        fhirbolt::json::to_string(&resource, None).map_err(|e| e.to_string())
    })
}

fn guarded(convert: impl FnOnce() -> Result<String, String> + std::panic::UnwindSafe) -> Result<String, String> {
    std::panic::catch_unwind(convert).unwrap_or_else(|_| Err("the FHIR reader cannot read it".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_goes_to_xml_and_back() {
        let slot = r#"{"resourceType":"Slot","id":"s1","schedule":{"reference":"Schedule/1"},"status":"free","start":"2026-12-01T09:00:00Z","end":"2026-12-01T09:30:00Z"}"#;
        let xml = from_json(slot).unwrap();
        assert!(xml.contains(r#"<Slot xmlns="http://hl7.org/fhir">"#), "{xml}");
        assert!(xml.contains(r#"<status value="free"/>"#), "{xml}");
        let back: serde_json::Value = serde_json::from_str(&to_json(&xml).unwrap()).unwrap();
        assert_eq!(back, serde_json::from_str::<serde_json::Value>(slot).unwrap());
        assert!(to_json("<Slot xmlns=\"http://hl7.org/fhir\"><status value=\"free\"").is_err());
        assert!(to_json("not xml").is_err());
    }
}

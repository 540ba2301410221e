//! RFC 5545 content lines and components.
//!
//! Lines are unfolded, split into name, parameters and value, and nested by
//! BEGIN/END. Only the properties in [`KEPT`] are stored: a SUMMARY, DESCRIPTION,
//! LOCATION, ATTENDEE or any other text is skipped here and never reaches a struct.

use crate::ParseError;

/// The only properties the engine keeps; everything else is dropped while lexing.
pub const KEPT: &[&str] = &[
    "DTSTART",
    "DTEND",
    "DURATION",
    "RRULE",
    "RDATE",
    "EXDATE",
    "RECURRENCE-ID",
    "STATUS",
    "TRANSP",
    "UID",
    "SEQUENCE",
    "FREEBUSY",
    "TZID",
    "TZOFFSETFROM",
    "TZOFFSETTO",
    "X-WR-TIMEZONE",
];

/// One property: `NAME;PARAM=value:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// Line (1-based) where the property starts.
    pub line: usize,
    /// Upper-cased name.
    pub name: String,
    /// Parameters, names upper-cased, values unquoted.
    pub params: Vec<(String, String)>,
    /// The raw value.
    pub value: String,
}

impl Property {
    /// The value of parameter `name`, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A component (`VEVENT`, `VTIMEZONE`, ...) with its kept properties and children.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Component {
    /// Line of its BEGIN.
    pub line: usize,
    /// Upper-cased name.
    pub name: String,
    /// Kept properties, in order.
    pub properties: Vec<Property>,
    /// Nested components.
    pub children: Vec<Component>,
}

impl Component {
    /// The first property called `name`.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// Every property called `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Property> + 'a {
        self.properties.iter().filter(move |p| p.name == name)
    }
}

/// Unfolds and parses `input` into its top-level components (usually one VCALENDAR).
pub fn components(input: &str) -> Result<Vec<Component>, ParseError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut stack: Vec<Component> = Vec::new();
    let mut roots = Vec::new();
    for (line, text) in unfold(input) {
        if text.trim().is_empty() {
            continue;
        }
        let name_end =
            text.find([';', ':']).ok_or_else(|| ParseError::new(line, "expected NAME:value, found no ':'"))?;
        let name = text[..name_end].trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(ParseError::new(line, "property without a name"));
        }
        match name.as_str() {
            "BEGIN" => {
                let p = parse_line(line, &text, name_end, name)?;
                stack.push(Component { line, name: p.value.trim().to_ascii_uppercase(), ..Default::default() });
            }
            "END" => {
                let p = parse_line(line, &text, name_end, name)?;
                let ending = p.value.trim().to_ascii_uppercase();
                let done = stack.pop().ok_or_else(|| ParseError::new(line, format!("END:{ending} without BEGIN")))?;
                if done.name != ending {
                    return Err(ParseError::new(
                        line,
                        format!("END:{ending} closes BEGIN:{} opened on line {}", done.name, done.line),
                    ));
                }
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => roots.push(done),
                }
            }
            _ => {
                let Some(current) = stack.last_mut() else {
                    return Err(ParseError::new(line, format!("{name} outside any BEGIN/END component")));
                };
                if KEPT.contains(&name.as_str()) {
                    current.properties.push(parse_line(line, &text, name_end, name)?);
                }
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(ParseError::new(open.line, format!("BEGIN:{} is never closed", open.name)));
    }
    if roots.is_empty() {
        return Err(ParseError::new(1, "no BEGIN:VCALENDAR found"));
    }
    Ok(roots)
}

/// Logical lines with the physical line they start on; CRLF or LF, folded by a leading space or tab.
fn unfold(input: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in input.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), out.last_mut()) {
            (Some(cont), Some((_, last))) => last.push_str(cont),
            _ => out.push((i + 1, raw.to_string())),
        }
    }
    out
}

fn parse_line(line: usize, text: &str, name_end: usize, name: String) -> Result<Property, ParseError> {
    let bytes = text.as_bytes();
    let mut i = name_end;
    let mut params = Vec::new();
    while i < bytes.len() && bytes[i] == b';' {
        i += 1;
        let eq = text[i..]
            .find('=')
            .map(|k| i + k)
            .ok_or_else(|| ParseError::new(line, format!("parameter of {name} without '='")))?;
        let key = text[i..eq].trim().to_ascii_uppercase();
        i = eq + 1;
        let mut values = Vec::new();
        loop {
            if i < bytes.len() && bytes[i] == b'"' {
                let close = text[i + 1..]
                    .find('"')
                    .map(|k| i + 1 + k)
                    .ok_or_else(|| ParseError::new(line, format!("unterminated quote in parameter {key}")))?;
                values.push(&text[i + 1..close]);
                i = close + 1;
            } else {
                let end = text[i..].find([',', ';', ':']).map_or(text.len(), |k| i + k);
                values.push(&text[i..end]);
                i = end;
            }
            if i < bytes.len() && bytes[i] == b',' {
                i += 1;
            } else {
                break;
            }
        }
        params.push((key, values.join(",")));
    }
    if i >= bytes.len() || bytes[i] != b':' {
        return Err(ParseError::new(line, format!("expected ':' before the value of {name}")));
    }
    Ok(Property { line, name, params, value: text[i + 1..].to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfolds_and_keeps_only_time_properties() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Oncology follow-up with\r\n  Dr. Secret\r\nDTSTART;TZID=\"Europe/Berlin\":20261201T0900\r\n 00\r\nATTENDEE;CN=Jane:mailto:jane@example.org\r\nLOCATION:Room 4\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let roots = components(ics).unwrap();
        let event = &roots[0].children[0];
        assert_eq!(event.properties.len(), 1);
        let p = &event.properties[0];
        assert_eq!((p.line, p.name.as_str(), p.value.as_str()), (5, "DTSTART", "20261201T090000"));
        assert_eq!(p.param("TZID"), Some("Europe/Berlin"));
        let debug = format!("{roots:?}");
        for secret in ["Oncology", "Secret", "jane", "Room 4"] {
            assert!(!debug.contains(secret), "{secret} leaked into the parsed tree");
        }
    }

    #[test]
    fn structural_errors_name_the_line() {
        let err = components("BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VCALENDAR\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("closes BEGIN:VEVENT"), "{err}");
        let err =
            components("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART 20260101\nEND:VEVENT\nEND:VCALENDAR\n").unwrap_err();
        assert_eq!(err.line, 3);
        let err = components("BEGIN:VCALENDAR\nBEGIN:VEVENT\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(components("").is_err());
    }
}

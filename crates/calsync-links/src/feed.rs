//! One line of a publisher's NDJSON file into one resource to store, namespaced and checked.
//!
//! Real feeds are messy, so a line is repaired where its meaning is clear (and the repair is
//! noted) and refused only where it is not: ids with `_` or spaces get a valid id, whole-day
//! Slots given as dates get the Location's midnights, `Z` times a publisher writes in local time
//! (an option of the publisher) are read in the Location's zone, a free Slot with no capacity
//! left is stored busy.

use std::borrow::Cow;
use std::collections::HashMap;

use calsync_store::{Ingest, IngestMembers, IngestRow, Store};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::zone;

/// The types calsync ingests, in the order a poll reads them (a Slot's zone comes from its
/// Schedule's Location). Other output types are skipped, as the specification asks clients to.
pub const INGESTED_TYPES: [&str; 6] =
    ["Location", "Device", "HealthcareService", "PractitionerRole", "Schedule", "Slot"];

/// The meta extension recording when a resource was last brought over from its source.
pub use calsync_store::origin::LAST_SOURCE_SYNC;

/// How a publisher's feed is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    /// The zone of Locations whose address names none calsync knows (IANA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// The publisher writes local wall-clock times with a `Z`: read them in the Location's zone.
    #[serde(default)]
    pub local_times: bool,
}

impl Options {
    /// The default zone, checked.
    pub fn default_zone(&self) -> Result<Option<Tz>, String> {
        self.zone.as_deref().map(|z| z.parse::<Tz>().map_err(|_| format!("{z:?} is not an IANA time zone"))).transpose()
    }
}

/// What went wrong with, or was repaired in, one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Kept, after a repair (its kind, and what was done).
    Repaired(&'static str, String),
}

/// A line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bad {
    /// Why.
    pub why: String,
    /// The id its resource is stored under, when the line had its type and an id: a resource
    /// stored from an earlier, good version of the line keeps that version.
    pub id: Option<String>,
}

/// The publisher's namespace: every id it publishes is stored as `{namespace}.{id}`.
#[derive(Debug, Clone)]
pub struct Namespace(pub String);

impl Namespace {
    /// The id a publisher's id is stored under, and whether it had to be made valid (FHIR ids
    /// are 1-64 of `A-Z a-z 0-9 - .`): an invalid or too long id keeps what it can of itself,
    /// with other characters as `-`, and a digest of the original, the same on every poll
    /// (`store_1 A` → `{namespace}.store-1-A-9c0e4b1f`).
    pub fn id(&self, theirs: &str) -> (String, bool) {
        let mut plain = String::with_capacity(self.0.len() + 1 + theirs.len());
        plain.push_str(&self.0);
        plain.push('.');
        plain.push_str(theirs);
        if calsync_store::is_valid_id(&plain) {
            return (plain, false);
        }
        let digest = Sha256::digest(theirs.as_bytes());
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        let room = 64usize.saturating_sub(self.0.len() + 1 + 1 + hex.len());
        let kept: String = theirs
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '-' })
            .take(room)
            .collect();
        (format!("{}.{kept}-{hex}", self.0), true)
    }

    /// `Type/{stored id}` for a reference to one of the types calsync ingests, as written by the
    /// publisher (`Location/1`); other references are left alone.
    fn reference(&self, reference: &str) -> Option<String> {
        let (t, id) = reference.split_once('/')?;
        (INGESTED_TYPES.contains(&t) && !id.is_empty() && !id.contains('/')).then(|| format!("{t}/{}", self.id(id).0))
    }
}

/// Reads lines of one poll: knows the publisher, its options, and the zones of the Locations
/// and Schedules seen so far.
pub struct Reader {
    namespace: Namespace,
    options: Options,
    default_zone: Option<Tz>,
    /// The manifest without user name, password, query or fragment: what `meta.source` names.
    /// Credentials or keys in the manifest's address never go into what is stored and published
    /// again.
    manifest: url::Url,
    transaction_time: String,
    /// The transaction time as UTC milliseconds, when it is an instant: then a Slot taken whole
    /// is stored without its origin, which the store adds back from its publisher and this
    /// (`calsync_store::origin`).
    synced_ms: Option<i64>,
    /// `manifest` and `#`: `meta.source` of a resource is this and its publisher's type and id.
    source_base: String,
    /// The lastSourceSync meta extension as the JSON of a `meta` member (`"extension":[…]`).
    sync_extension: String,
    /// `Location/{stored id}` → zone.
    location_zones: HashMap<String, Tz>,
    /// `Schedule/{stored id}` → `Location/{stored id}` of its first Location actor.
    schedule_locations: HashMap<String, String>,
    /// Slots written with `Z` that start between midnight and 5 am at their Location.
    pub suspect_local: u64,
}

impl Reader {
    /// A reader for one poll of the publisher `namespace`, whose manifest (at `manifest`) says
    /// `transaction_time`.
    pub fn new(namespace: Namespace, options: Options, manifest: url::Url, transaction_time: String) -> Reader {
        let default_zone = options.default_zone().ok().flatten();
        let manifest = calsync_store::origin::manifest_source(manifest.as_str()).unwrap_or(manifest);
        let source_base = format!("{manifest}#");
        let synced_ms = DateTime::parse_from_rfc3339(&transaction_time).ok().map(|t| t.timestamp_millis());
        let sync_extension =
            format!(r#""extension":[{}]"#, json!({"url": LAST_SOURCE_SYNC, "valueDateTime": transaction_time}));
        Reader {
            namespace,
            options,
            default_zone,
            manifest,
            transaction_time,
            synced_ms,
            source_base,
            sync_extension,
            location_zones: HashMap::new(),
            schedule_locations: HashMap::new(),
            suspect_local: 0,
        }
    }

    /// Learns a stored Location or Schedule of this publisher (read on an incremental poll, whose
    /// files need not repeat them).
    pub fn learn(&mut self, resource_type: &str, stored_id: &str, content: &Value) {
        match resource_type {
            "Location" => {
                if let Some(tz) = zone::of_location(content) {
                    self.location_zones.insert(format!("Location/{stored_id}"), tz);
                }
            }
            "Schedule" => {
                let location = content["actor"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a["reference"].as_str())
                    .find(|r| r.starts_with("Location/"));
                if let Some(l) = location {
                    self.schedule_locations.insert(format!("Schedule/{stored_id}"), l.to_string());
                }
            }
            _ => {}
        }
    }

    /// One line of a file of `expected` resources made ready for `store` at `now`, and what was
    /// repaired; or why the line cannot be used. A plain Slot line, nearly every line of a feed,
    /// is read as its members ([`IngestMembers`]); any other line as a whole ([`Reader::line`]).
    pub fn row(
        &mut self,
        store: &Store,
        expected: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(IngestRow, Vec<Note>), Bad> {
        if expected == "Slot"
            && let Some((members, notes)) = self.slot_members(text)
        {
            let id = members.id.clone();
            let row = store.prepare_ingest_members(members, now);
            return row.map(|row| (row, notes)).map_err(|e| Bad { why: e.to_string(), id: Some(id) });
        }
        let (item, notes) = self.line(expected, text)?;
        let id = item.id.clone();
        store.prepare_ingest(item, now).map(|row| (row, notes)).map_err(|e| Bad { why: e.to_string(), id: Some(id) })
    }

    /// A Slot line read without building it as a `Value`: its members as written, those it
    /// checks or rewrites parsed alone. `None` when it is anything but a plain good Slot: no
    /// `meta`, every name unescaped and given once, `resourceType`, `id`, `status`, `start` and
    /// `end` plain strings, and every check passed. [`Reader::line`] reads such a line whole
    /// (and says what is wrong with it).
    fn slot_members<'a>(&mut self, text: &'a str) -> Option<(IngestMembers<'a>, Vec<Note>)> {
        let Members(members) = serde_json::from_str(text).ok()?;
        for (n, (name, _)) in members.iter().enumerate() {
            if matches!(*name, "meta" | "reference") || members[..n].iter().any(|(other, _)| other == name) {
                return None;
            }
        }
        let member = |name: &str| members.iter().find(|(n, _)| *n == name).map(|(_, json)| *json);
        let plain = |name: &str| member(name).and_then(|json| serde_json::from_str::<&str>(json.get()).ok());
        if plain("resourceType")? != "Slot" {
            return None;
        }
        let theirs = plain("id").filter(|id| !id.trim().is_empty())?;
        let mut notes = Vec::new();
        let (id, repaired) = self.namespace.id(theirs);
        if repaired {
            notes.push(Note::Repaired("id", format!("id {theirs:?} is not a FHIR id; stored as {id}")));
        }
        let mut schedule: Value = serde_json::from_str(member("schedule")?.get()).ok()?;
        rewrite_references(&self.namespace, &mut schedule);
        let status = plain("status")?;
        let checked = self
            .slot_checks(
                schedule["reference"].as_str().unwrap_or_default(),
                status,
                plain("start"),
                plain("end"),
                &mut notes,
            )
            .ok()?;
        if let Some(extension) = member("extension")
            && extension.get().contains("booking-deep-link")
        {
            calsync_fhir::booking::deep_link(&serde_json::from_str(extension.get()).ok()?).ok()?;
        }
        let mut now_busy = false;
        let mut rewritten = Vec::with_capacity(members.len());
        for (name, json) in members {
            let owned = |v: &Value| serde_json::value::to_raw_value(v).ok().map(Cow::Owned);
            let json = match name {
                "schedule" => owned(&schedule)?,
                "start" | "end" => match &checked.times[usize::from(name == "end")] {
                    Some(t) => owned(&Value::from(t.as_str()))?,
                    None => Cow::Borrowed(json),
                },
                "extension" if json.get().contains("slot-capacity") || may_hold_references(json) => {
                    let mut extension: Value = serde_json::from_str(json.get()).ok()?;
                    if let Some(list) = extension.as_array_mut() {
                        now_busy = capacity(list, status, &mut notes);
                    }
                    rewrite_references(&self.namespace, &mut extension);
                    owned(&extension)?
                }
                _ if may_hold_references(json) => {
                    let mut v: Value = serde_json::from_str(json.get()).ok()?;
                    rewrite_references(&self.namespace, &mut v);
                    owned(&v)?
                }
                _ => Cow::Borrowed(json),
            };
            rewritten.push((name, json));
        }
        if now_busy {
            let status = rewritten.iter_mut().find(|(name, _)| *name == "status")?;
            status.1 = Cow::Owned(serde_json::value::to_raw_value("busy").ok()?);
        }
        self.suspect_local += u64::from(checked.suspect);
        // Its origin is the publisher's and the poll's, kept apart by the store, unless the id
        // had to be repaired (then `meta.source` names an id the stored one does not show).
        let synced_ms = self.synced_ms.filter(|_| !repaired);
        let mut meta_members = String::new();
        if synced_ms.is_none() {
            let source = serde_json::to_string(&self.source("Slot", theirs)).ok()?;
            meta_members.reserve(10 + source.len() + self.sync_extension.len());
            meta_members.push_str(r#""source":"#);
            meta_members.push_str(&source);
            meta_members.push(',');
            meta_members.push_str(&self.sync_extension);
        }
        let digest = self.digest(text, checked.zone_used);
        let members = IngestMembers { resource_type: "Slot", id, digest, members: rewritten, meta_members, synced_ms };
        Some((members, notes))
    }

    /// `meta.source` of a resource: the manifest with the publisher's own type and id as
    /// fragment.
    fn source(&self, resource_type: &str, theirs: &str) -> String {
        // Unreserved characters stay as they are in a fragment; anything else is encoded by `url`.
        if theirs.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')) {
            let mut source = String::with_capacity(self.source_base.len() + resource_type.len() + 1 + theirs.len());
            source.push_str(&self.source_base);
            source.push_str(resource_type);
            source.push('/');
            source.push_str(theirs);
            return source;
        }
        let mut source = self.manifest.clone();
        source.set_fragment(Some(&format!("{resource_type}/{theirs}")));
        source.to_string()
    }

    /// One line of a file of `expected` resources: the resource to store and what was repaired,
    /// or why the line cannot be used (with the id it would be stored under, when that much could
    /// be read).
    pub fn line(&mut self, expected: &str, text: &str) -> Result<(Ingest, Vec<Note>), Bad> {
        let unnamed = |why: String| Bad { why, id: None };
        let mut v: Value = serde_json::from_str(text).map_err(|e| unnamed(format!("not JSON: {e}")))?;
        let Some(object) = v.as_object_mut() else { return Err(unnamed("not a JSON object".into())) };
        let found = object.get("resourceType").and_then(Value::as_str).unwrap_or_default().to_string();
        if found != expected {
            return Err(unnamed(if found.is_empty() {
                "no resourceType".into()
            } else {
                format!("a {found} in a file of {expected} resources")
            }));
        }
        let theirs = match object.get("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(unnamed("no id".into())),
        };
        let mut notes = Vec::new();
        let (id, repaired) = self.namespace.id(&theirs);
        if repaired {
            notes.push(Note::Repaired("id", format!("id {theirs:?} is not a FHIR id; stored as {id}")));
        }
        match self.checked(expected, &mut v, &id, &mut notes) {
            Ok(zone_used) => {
                self.stamp_origin(&mut v, expected, &theirs, &id);
                let digest = self.digest(text, zone_used);
                Ok((Ingest { resource_type: expected.to_string(), id, digest, content: v }, notes))
            }
            Err(why) => Err(Bad { why, id: Some(id) }),
        }
    }

    /// Checks and repairs a resource whose type and id are known; the zone its times were read
    /// in, if one was needed.
    fn checked(
        &mut self,
        expected: &str,
        v: &mut Value,
        id: &str,
        notes: &mut Vec<Note>,
    ) -> Result<Option<Tz>, String> {
        rewrite_references(&self.namespace, v);
        match expected {
            "Location" => {
                if let Some(tz) = zone::of_location(v) {
                    self.location_zones.insert(format!("Location/{id}"), tz);
                }
                drop_unsafe_sites(v, notes);
                if !has_contact(v) {
                    return Err("a Location needs a telecom with a phone or a url".into());
                }
                Ok(None)
            }
            "Schedule" => self.schedule(id, v).map(|()| None),
            "Slot" => self.slot(v, notes),
            _ => Ok(None),
        }
    }

    fn schedule(&mut self, id: &str, v: &Value) -> Result<(), String> {
        let actors: Vec<&str> =
            v["actor"].as_array().into_iter().flatten().filter_map(|a| a["reference"].as_str()).collect();
        if actors.is_empty() {
            return Err("a Schedule needs an actor".into());
        }
        if actors.iter().any(|a| a.starts_with("Patient/") || a.starts_with("RelatedPerson/")) {
            return Err("a Schedule of a Patient or RelatedPerson is not provider availability".into());
        }
        if let Some(l) = actors.iter().find(|a| a.starts_with("Location/")) {
            self.schedule_locations.insert(format!("Schedule/{id}"), l.to_string());
        }
        Ok(())
    }

    /// Checks and repairs a Slot; returns the zone its times were read in, if one was needed.
    fn slot(&mut self, v: &mut Value, notes: &mut Vec<Note>) -> Result<Option<Tz>, String> {
        let schedule = v["schedule"]["reference"].as_str().unwrap_or_default().to_string();
        let status = v["status"].as_str().unwrap_or_default().to_string();
        let checked = self.slot_checks(&schedule, &status, v["start"].as_str(), v["end"].as_str(), notes)?;
        // Patients' apps open the link: one that is not http(s) makes the line bad.
        calsync_fhir::booking::deep_link(&v["extension"])?;
        for (name, t) in ["start", "end"].into_iter().zip(checked.times) {
            if let Some(t) = t {
                v[name] = json!(t);
            }
        }
        self.suspect_local += u64::from(checked.suspect);
        if let Some(list) = v.get_mut("extension").and_then(Value::as_array_mut)
            && capacity(list, &status, notes)
        {
            v["status"] = json!("busy");
        }
        Ok(checked.zone_used)
    }

    /// The checks of a Slot (its Schedule reference already in the namespace) and the repairs of
    /// its times.
    fn slot_checks(
        &self,
        schedule: &str,
        status: &str,
        start: Option<&str>,
        end: Option<&str>,
        notes: &mut Vec<Note>,
    ) -> Result<SlotChecked, String> {
        if !schedule.starts_with("Schedule/") {
            return Err("a Slot needs schedule.reference Schedule/{id}".into());
        }
        if status.parse::<calsync_core::SlotStatus>().is_err() {
            return Err(if status.is_empty() {
                "a Slot needs a status".into()
            } else {
                format!("status {status:?} is not a Slot status")
            });
        }
        let zone = self
            .schedule_locations
            .get(schedule)
            .and_then(|l| self.location_zones.get(l))
            .copied()
            .or(self.default_zone);
        let mut checked = SlotChecked { times: [None, None], zone_used: None, suspect: false };
        let mut instants = [None, None];
        for (n, (name, given)) in [("start", start), ("end", end)].into_iter().enumerate() {
            let raw = given.ok_or_else(|| format!("a Slot needs {name}"))?.trim();
            let (t, repair) = self.instant(raw, zone, name == "end").map_err(|e| format!("{name}: {e}"))?;
            if let Some(repair) = repair {
                checked.zone_used = zone;
                let text = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                notes.push(Note::Repaired(repair, format!("{name} {raw:?} read as {text}")));
                checked.times[n] = Some(text);
            } else if name == "start"
                && !self.options.local_times
                && raw.ends_with(['Z', 'z'])
                && let Some(tz) = zone
                && tz.from_utc_datetime(&t.naive_utc()).hour() < 5
            {
                checked.suspect = true;
            }
            instants[n] = Some(t);
        }
        if let [Some(start), Some(end)] = instants {
            if end <= start {
                return Err("a Slot must end after it starts".into());
            }
            if status == "free" && end - start > calsync_fhir::LONGEST_FREE_SLOT {
                return Err(format!(
                    "a free Slot may last {} days at most",
                    calsync_fhir::LONGEST_FREE_SLOT.num_days()
                ));
            }
        }
        Ok(checked)
    }

    /// An instant of a Slot, and the repair it needed: a date (a whole-day Slot: the Location's
    /// midnight; an end date is the last day, so the next midnight), a time without offset, or a
    /// `Z` time the publisher writes in local time.
    fn instant(&self, raw: &str, zone: Option<Tz>, end: bool) -> Result<(DateTime<Utc>, Option<&'static str>), String> {
        let in_zone = |naive: NaiveDateTime| -> Result<DateTime<Utc>, String> {
            let tz = zone.ok_or("the Location's time zone is not known (set the publisher's zone)")?;
            // A wall-clock time skipped by a DST change means the first valid instant after it.
            (0..=120)
                .find_map(|m| tz.from_local_datetime(&(naive + chrono::TimeDelta::minutes(m))).earliest())
                .map(|t| t.to_utc())
                .ok_or_else(|| format!("{raw:?} does not exist in {tz}"))
        };
        // A date is ten characters: the pattern is tried on nothing else (it is the slow one, and
        // every line has two times).
        if raw.len() == 10
            && let Ok(date) = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        {
            let day = if end { date.succ_opt().ok_or("date out of range")? } else { date };
            return Ok((in_zone(day.and_hms_opt(0, 0, 0).ok_or("date out of range")?)?, Some("whole-day")));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
            if self.options.local_times && raw.ends_with(['Z', 'z']) {
                return Ok((in_zone(t.naive_utc())?, Some("local-time")));
            }
            return Ok((t.to_utc(), None));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(raw, format) {
                return Ok((in_zone(naive)?, Some("no-offset")));
            }
        }
        Err(format!("{raw:?} is not an instant or a date"))
    }

    /// `meta.source`: the manifest with the publisher's own type and id as fragment; the
    /// lastSourceSync extension: the manifest's transaction time. The publisher's version and
    /// update time are its own, not the stored resource's.
    fn stamp_origin(&self, v: &mut Value, resource_type: &str, theirs: &str, id: &str) {
        let source = self.source(resource_type, theirs);
        let Some(object) = v.as_object_mut() else { return };
        object.insert("id".into(), json!(id));
        let meta = object.entry("meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let Some(meta) = meta.as_object_mut() else { return };
        meta.remove("versionId");
        meta.remove("lastUpdated");
        meta.insert("source".into(), json!(source));
        let mut extensions: Vec<Value> = meta
            .remove("extension")
            .and_then(|e| if let Value::Array(a) = e { Some(a) } else { None })
            .unwrap_or_default();
        extensions.retain(|e| e["url"] != LAST_SOURCE_SYNC);
        extensions.push(json!({"url": LAST_SOURCE_SYNC, "valueDateTime": self.transaction_time}));
        meta.insert("extension".into(), Value::Array(extensions));
    }

    /// What decides the stored resource: the line, how the publisher is read, and the zone its
    /// times were read in. The transaction time is not part of it: an unchanged line stays
    /// unchanged (its lastSourceSync is that of the poll that last changed it).
    fn digest(&self, line: &str, zone: Option<Tz>) -> i64 {
        let mut h = Sha256::new();
        h.update(self.namespace.0.as_bytes());
        h.update([0, u8::from(self.options.local_times)]);
        h.update(zone.map(|z| z.name()).unwrap_or_default().as_bytes());
        h.update([0]);
        h.update(line.trim().as_bytes());
        let d = h.finalize();
        i64::from_be_bytes(d[..8].try_into().unwrap_or_default())
    }
}

/// What the checks of a Slot made of it.
struct SlotChecked {
    /// The start and end to store, where they were repaired.
    times: [Option<String>; 2],
    /// The zone its times were read in, if one was needed.
    zone_used: Option<Tz>,
    /// Its start is a `Z` time between midnight and 5 am at its Location.
    suspect: bool,
}

/// The top-level members of a JSON object in order, each as its JSON text (names with escapes
/// are refused: they cannot be borrowed).
struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(member) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// Whether a member's JSON may hold a `reference` to rewrite (escapes are not looked through).
fn may_hold_references(json: &RawValue) -> bool {
    json.get().contains("reference") || json.get().contains("\\u")
}

/// A `slot-capacity` must be a whole number of places, at least 0: other values are dropped
/// from `extensions`. True when a free Slot has none left (it is stored busy).
fn capacity(extensions: &mut Vec<Value>, status: &str, notes: &mut Vec<Note>) -> bool {
    let is_capacity = |e: &Value| {
        e["url"].as_str().and_then(|u| u.strip_prefix(calsync_fhir::SSL_EXTENSION_BASE)) == Some("slot-capacity")
    };
    let mut left = None;
    extensions.retain(|e| {
        if !is_capacity(e) {
            return true;
        }
        match e["valueInteger"].as_i64() {
            Some(n) if n >= 0 => {
                left = Some(n);
                true
            }
            _ => {
                notes.push(Note::Repaired("capacity", format!("slot-capacity {} dropped", e["valueInteger"])));
                false
            }
        }
    });
    let now_busy = left == Some(0) && status == "free";
    if now_busy {
        notes.push(Note::Repaired("capacity", "a free Slot with slot-capacity 0 is stored busy".into()));
    }
    now_busy
}

/// A Location's web sites (`telecom` of system `url`) that are not [`calsync_fhir::web_link`]s
/// are dropped: people's apps open them. Its phones stay, so the Location is still usable.
fn drop_unsafe_sites(location: &mut Value, notes: &mut Vec<Note>) {
    let Some(telecom) = location.get_mut("telecom").and_then(Value::as_array_mut) else { return };
    telecom.retain(|t| {
        let Some(text) = t["value"].as_str().filter(|_| t["system"] == "url") else { return true };
        let checked = calsync_fhir::web_link(text);
        if let Err(e) = &checked {
            notes.push(Note::Repaired("telecom", format!("telecom url {e}: dropped")));
        }
        checked.is_ok()
    });
}

fn has_contact(location: &Value) -> bool {
    location["telecom"].as_array().into_iter().flatten().any(|t| {
        matches!(t["system"].as_str(), Some("phone" | "url")) && t["value"].as_str().is_some_and(|v| !v.is_empty())
    })
}

/// Rewrites every `reference` to an ingested type into the publisher's namespace.
fn rewrite_references(ns: &Namespace, v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if k == "reference" {
                    if let Value::String(r) = child
                        && let Some(mapped) = ns.reference(r)
                    {
                        *r = mapped;
                    }
                } else {
                    rewrite_references(ns, child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| rewrite_references(ns, c)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;

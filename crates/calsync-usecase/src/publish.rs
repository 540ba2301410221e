//! calsync's own provider availability as a SMART Scheduling Links feed (`$bulk-publish`).
//!
//! - The manifest: `transactionTime`, `request`, `output[]` (`type`, `url`, and for Slot files
//!   `extension.state`, the states of that week's Slots' Locations), `error: []`, with a tag that
//!   moves with every write of a Location, Schedule or Slot.
//! - NDJSON files: `locations.ndjson`, `schedules.ndjson`, and one Slot file per ISO week with
//!   published Slots (`slots-2026-W50.ndjson`, by the Slot's UTC start) from this week on. Slot
//!   files are streamed from the store a chunk at a time: memory does not grow with the number
//!   of Slots.
//! - `_since=<instant>`: only resources changed at or after it.
//! - The manifest names this installation (`extension`, under
//!   `calsync_store::origin::ORIGIN_EXTENSION`), and with it the origin of what it holds
//!   first-hand. What it ingested names its origin in a meta extension of that URL: the one it
//!   came with, else its publisher's installation, else its publisher's manifest (one that is
//!   not a calsync). A calsync reading the feed does not store again what it holds another way
//!   (`calsync-links`).
//! - Only provider availability: participants' derived Schedules (actors Patients or
//!   RelatedPersons) and their busy Slots never appear, and calsync's own bookkeeping on a
//!   Slot (who holds or booked it) is taken off; booking extensions (`booking-deep-link`,
//!   `booking-phone`, `slot-capacity`) stay.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use calsync_fhir::booking::{BOOKED_EXTENSION, HOLD_EXTENSION};
use calsync_store::Store;
use calsync_store::origin::ORIGIN_EXTENSION;
use calsync_store::search::{Bound, Cursor, Direction, ResourceSearch, SortBy};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use serde_json::{Value, json};

use crate::{Context, Outcome, UseCaseError, UseCases};

/// How long clients may keep the manifest (the spec's clients poll every 1-5 minutes).
pub const MAX_AGE_SECONDS: u32 = 60;
/// Rows read from the store per page (Locations and Schedules).
const PAGE: u64 = 2_000;
/// What calsync's own Slot extensions' URLs start with.
const CALSYNC_EXTENSIONS: &str = "https://calsync.example.org/fhir/StructureDefinition/";
/// Slot files in a manifest at most (weeks ahead).
const MAX_WEEKS: i64 = 53;

/// What a client already has, from its conditional request's headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// `If-None-Match`: the tags it holds.
    pub if_none_match: Option<String>,
    /// `If-Modified-Since`: an HTTP date.
    pub if_modified_since: Option<String>,
}

/// The manifest, or that the client's copy is current.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    /// The client holds the current version.
    NotModified {
        /// The version's tag.
        tag: String,
        /// The last write, to the second.
        modified: Option<DateTime<Utc>>,
    },
    /// The manifest.
    Current {
        /// The version's tag.
        tag: String,
        /// The last write, to the second.
        modified: Option<DateTime<Utc>>,
        /// The manifest's JSON.
        body: Value,
    },
}

/// One file of the feed.
#[derive(Debug)]
pub enum FeedFile {
    /// Locations or Schedules, whole.
    Whole(String),
    /// A week's Slots, a chunk of lines at a time.
    Slots(SlotLines),
}

/// A week's published Slots as NDJSON, read from the store a chunk at a time.
#[derive(Debug)]
pub struct SlotLines(tokio::sync::mpsc::Receiver<Result<Vec<u8>, calsync_store::StoreError>>);

impl SlotLines {
    /// The next chunk of lines, until there are none.
    pub async fn next(&mut self) -> Option<Outcome<Vec<u8>>> {
        Some(self.0.recv().await?.map_err(UseCaseError::from))
    }
}

/// `_since`, an instant.
fn since_of(since: Option<&str>) -> Outcome<Option<DateTime<Utc>>> {
    since
        .map(|s| {
            DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).map_err(|_| {
                UseCaseError::Invalid(format!("_since {s:?} is not an instant (e.g. 2026-12-01T00:00:00Z)"))
            })
        })
        .transpose()
}

impl UseCases {
    /// The feed's manifest as of `cx.now`, with files under `{cx.base}/$bulk-publish`; or that
    /// the client holds the current version already.
    pub async fn feed_manifest(&self, cx: &Context, since: Option<&str>, held: &Held) -> Outcome<Manifest> {
        let store = &self.store;
        let since = since_of(since)?;
        let (version, tag) = version_tag(store).await?;
        // HTTP dates have whole seconds: the last write's second.
        let modified =
            store.last_write(&["Location", "Schedule", "Slot"]).await?.map(|t| t.with_nanosecond(0).unwrap_or(t));
        // The tag names a version of the data, whatever `_since` asks of it: a client holding the
        // current version has nothing to fetch. If-None-Match, when sent, decides (RFC 9110
        // 13.2.2).
        let unchanged = match &held.if_none_match {
            Some(tags) => tags.split(',').any(|t| t.trim() == tag || t.trim() == "*"),
            None => held
                .if_modified_since
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                .zip(modified)
                .is_some_and(|(asked, last)| last <= asked.to_utc()),
        };
        if unchanged {
            return Ok(Manifest::NotModified { tag, modified });
        }
        let this_week = week_range(&week_of(cx.now)).map_or(cx.now, |(monday, _)| monday);
        let base = format!("{}/$bulk-publish", cx.base);
        let suffix = since
            .map(|t| format!("?_since={}", t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
            .unwrap_or_default();
        let mut output = vec![
            json!({"type": "Location", "url": format!("{base}/locations.ndjson{suffix}")}),
            json!({"type": "Schedule", "url": format!("{base}/schedules.ndjson{suffix}")}),
        ];
        let places = self.places.at(store, &version).await?;
        let pairs =
            store.schedules_by_period(this_week, TimeDelta::weeks(1), MAX_WEEKS + 1, &places.participants).await?;
        for (week, states) in week_states(&pairs, &places) {
            let name = week_of(this_week + TimeDelta::weeks(week));
            output.push(json!({"type": "Slot", "url": format!("{base}/slots-{name}.ndjson{suffix}"),
                "extension": {"state": states}}));
        }
        let request = match &since {
            Some(_) => format!("{base}{suffix}"),
            None => base.clone(),
        };
        let body = json!({"transactionTime": cx.now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "request": request, "output": output, "error": [], "extension": {ORIGIN_EXTENSION: store.instance()}});
        Ok(Manifest::Current { tag, modified, body })
    }

    /// The feed's file `name`, with only what changed since `since` if given.
    pub async fn feed_file(&self, _cx: &Context, name: &str, since: Option<&str>) -> Outcome<FeedFile> {
        let store = &self.store;
        let since = since_of(since)?;
        let origins = Arc::new(Origins::of(store).await?);
        match name {
            "locations.ndjson" => {
                let mut all = all_of(store, "Location", since).await?;
                all.iter_mut().for_each(|r| origins.stamp(r));
                return Ok(FeedFile::Whole(ndjson(all.iter().map(Value::to_string))));
            }
            "schedules.ndjson" => {
                let (mut provider, _) = schedules(store, since).await?;
                provider.iter_mut().for_each(|r| origins.stamp(r));
                return Ok(FeedFile::Whole(ndjson(provider.iter().map(Value::to_string))));
            }
            _ => {}
        }
        let (start, end) = name
            .strip_prefix("slots-")
            .and_then(|n| n.strip_suffix(".ndjson"))
            .and_then(week_range)
            .ok_or_else(|| UseCaseError::NotFound(format!("no file {name:?} in this feed")))?;
        let participants = Arc::new(schedules(store, None).await?.1);
        // Straight from the store to the client, a chunk at a time: each line is written (and
        // participants' Slots left out) on the store's reading thread.
        let chunks = store.stream_slots_by_start(start, end, since, move |json, out| {
            match schedule_of(json) {
                Some(schedule) if !participants.contains(schedule.as_ref()) => {}
                _ => return,
            }
            if let Some(line) = published_slot(json).and_then(|line| origins.stamp_text(line)) {
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        });
        Ok(FeedFile::Slots(SlotLines(chunks)))
    }
}

fn ndjson(lines: impl Iterator<Item = String>) -> String {
    let mut body = String::new();
    for line in lines {
        body.push_str(&line);
        body.push('\n');
    }
    body
}

fn updated_since(since: Option<DateTime<Utc>>) -> Vec<Bound> {
    since.map(|t| Bound { lo: Some(t.timestamp_millis()), hi: None, negate: false }).into_iter().collect()
}

/// Every live resource of a type changed since `since`, page by page, in id order.
async fn all_of(store: &Store, resource_type: &str, since: Option<DateTime<Utc>>) -> Outcome<Vec<Value>> {
    let search = ResourceSearch { updated: updated_since(since), ..Default::default() };
    let (mut out, mut after) = (Vec::new(), None::<Cursor>);
    loop {
        let page = store
            .search_resources(resource_type, &search, (SortBy::Id, Direction::Ascending), after.as_ref(), PAGE)
            .await?;
        out.extend(page.resources.into_iter().map(|r| r.content));
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(out),
        }
    }
}

/// Provider Schedules (not participants' derived ones), and the ids of participants' ones.
async fn schedules(store: &Store, since: Option<DateTime<Utc>>) -> Outcome<(Vec<Value>, HashSet<String>)> {
    let all = all_of(store, "Schedule", since).await?;
    let participants = if since.is_some() { all_of(store, "Schedule", None).await? } else { all.clone() };
    let participant_ids = participants
        .iter()
        .filter(|s| calsync_fhir::availability::is_participant_schedule(s))
        .filter_map(|s| s["id"].as_str().map(|id| format!("Schedule/{id}")))
        .collect();
    let provider = all.into_iter().filter(|s| !calsync_fhir::availability::is_participant_schedule(s)).collect();
    Ok((provider, participant_ids))
}

/// The ISO week `2026-W50` of an instant (UTC).
fn week_of(t: DateTime<Utc>) -> String {
    let w = t.iso_week();
    format!("{}-W{:02}", w.year(), w.week())
}

/// Monday 00:00Z of ISO week `name` (`2026-W50`), and the next Monday.
fn week_range(name: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (year, week) = name.split_once("-W")?;
    // Four-digit years, as the files are named: no sign, nothing past chrono's range.
    if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let monday = NaiveDate::from_isoywd_opt(year.parse().ok()?, week.parse().ok()?, chrono::Weekday::Mon)?;
    let start = monday.and_hms_opt(0, 0, 0)?.and_utc();
    Some((start, start.checked_add_signed(TimeDelta::days(7))?))
}

/// The version of the Locations and Schedules (each type's count and latest write), and the
/// manifest's ETag, which also moves with every Slot write.
async fn version_tag(store: &Store) -> Outcome<(String, String)> {
    let mut parts = Vec::new();
    for t in ["Location", "Schedule"] {
        let latest = store
            .search_resources(t, &ResourceSearch::default(), (SortBy::LastUpdated, Direction::Descending), None, 1)
            .await?;
        let stamp = latest.resources.first().map(|r| (r.last_updated.timestamp_millis(), r.version_id));
        parts.push(format!("{}:{stamp:?}", latest.total));
    }
    let places = parts.join("|");
    let slots = store.slot_generations_total().await?;
    let tag = format!("\"{}\"", &calsync_fhir::index::fnv(&format!("{places}|{slots}"))[..16]);
    Ok((places, tag))
}

/// Where published Slots are, as of one version of the Locations and Schedules: remembered
/// between manifests (reading every Location and Schedule again took most of a manifest's time
/// with 5,000 of each), read again when either changes.
#[derive(Debug, Default)]
pub struct PublishedPlaces(std::sync::Mutex<Option<(String, Arc<Places>)>>);

/// The states of each provider Schedule's Locations, participants' Schedules, and every state
/// of a published Location.
#[derive(Debug)]
struct Places {
    located: HashMap<String, BTreeSet<String>>,
    participants: HashSet<String>,
    all_states: BTreeSet<String>,
}

impl PublishedPlaces {
    async fn at(&self, store: &Store, version: &str) -> Outcome<Arc<Places>> {
        if let Ok(known) = self.0.lock()
            && let Some((v, places)) = known.as_ref()
            && v == version
        {
            return Ok(places.clone());
        }
        let places = Arc::new(Places::read(store).await?);
        if let Ok(mut known) = self.0.lock() {
            *known = Some((version.to_string(), places.clone()));
        }
        Ok(places)
    }
}

impl Places {
    async fn read(store: &Store) -> Outcome<Self> {
        let states_of: HashMap<String, Option<String>> = all_of(store, "Location", None)
            .await?
            .iter()
            .filter_map(|l| {
                let state = l["address"]["state"].as_str().map(str::to_string);
                l["id"].as_str().map(|id| (format!("Location/{id}"), state))
            })
            .collect();
        let all_states = states_of.values().flatten().cloned().collect();
        let (provider, participants) = schedules(store, None).await?;
        let located = provider
            .iter()
            .filter_map(|schedule| {
                let id = schedule["id"].as_str()?;
                let actors = schedule["actor"].as_array()?;
                let known: Vec<&Option<String>> =
                    actors.iter().filter_map(|a| a["reference"].as_str().and_then(|r| states_of.get(r))).collect();
                (!known.is_empty()).then(|| (format!("Schedule/{id}"), known.into_iter().flatten().cloned().collect()))
            })
            .collect();
        Ok(Places { located, participants, all_states })
    }
}

/// The states of each week's Slot file, from the `(week, Schedule)` pairs of its Slots:
/// participants' Schedules are never published and count for nothing; a Schedule whose Locations
/// are known counts for their states; any other (its Location is unknown, or it names none)
/// counts for every state published, so that no client filtering by state misses its Slots.
fn week_states(pairs: &[(i64, String)], places: &Places) -> BTreeMap<i64, BTreeSet<String>> {
    let mut weeks: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for (week, schedule) in pairs {
        if places.participants.contains(schedule) {
            continue;
        }
        let states = places.located.get(schedule).unwrap_or(&places.all_states);
        weeks.entry(*week).or_default().extend(states.iter().cloned());
    }
    weeks
}

/// A published Slot as a line: calsync's own hold and booking records taken off.
fn published_slot(json: &str) -> Option<std::borrow::Cow<'_, str>> {
    // One scan for the common start of both extensions' URLs, with a searcher built once (one
    // built per Slot was 4% of the profile of publishing): most Slots have neither.
    static OURS: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(CALSYNC_EXTENSIONS));
    if OURS.find(json.as_bytes()).is_none() || !(json.contains(HOLD_EXTENSION) || json.contains(BOOKED_EXTENSION)) {
        return Some(std::borrow::Cow::Borrowed(json));
    }
    let mut slot: Value = serde_json::from_str(json).ok()?;
    if let Some(extensions) = slot.get_mut("extension").and_then(Value::as_array_mut) {
        extensions.retain(|e| !matches!(e["url"].as_str(), Some(HOLD_EXTENSION | BOOKED_EXTENSION)));
        if extensions.is_empty() {
            slot.as_object_mut()?.remove("extension");
        }
    }
    Some(std::borrow::Cow::Owned(slot.to_string()))
}

/// Where the resources this installation ingested entered the network of publishers.
struct Origins {
    /// Publisher id → where what it publishes entered the network: the installation its
    /// manifest names, or its manifest (a publisher that is not a calsync).
    publishers: HashMap<String, String>,
}

impl Origins {
    async fn of(store: &Store) -> Outcome<Origins> {
        let own = store.instance().to_string();
        let publishers = store
            .publishers()
            .await?
            .into_iter()
            .map(|p| {
                let manifest = calsync_store::origin::manifest_source(&p.manifest_url).map(String::from);
                let origin = p.instance.or(manifest).unwrap_or_else(|| own.clone());
                (p.id, origin)
            })
            .collect();
        Ok(Origins { publishers })
    }

    /// The origin the published resource `id` must name: none for this installation's own (the
    /// manifest names it); for one it ingested, its publisher's installation, or its manifest
    /// when the publisher is not a calsync.
    fn of_id(&self, id: &str) -> Option<&str> {
        let (publisher, _) = id.split_once('.')?;
        self.publishers.get(publisher).map(String::as_str)
    }

    /// Adds the origin extension to `meta.extension` of an ingested resource that names none.
    fn stamp(&self, resource: &mut Value) {
        let Some(origin) = resource["id"].as_str().and_then(|id| self.of_id(id)).map(str::to_string) else { return };
        let Some(object) = resource.as_object_mut() else { return };
        let meta = object.entry("meta").or_insert_with(|| json!({}));
        if !meta.is_object() {
            *meta = json!({});
        }
        let extensions = meta.as_object_mut().map(|m| m.entry("extension").or_insert_with(|| json!([])));
        if let Some(Value::Array(extensions)) = extensions
            && !extensions.iter().any(|e| e["url"] == ORIGIN_EXTENSION)
        {
            extensions.push(json!({"url": ORIGIN_EXTENSION, "valueUri": origin}));
        }
    }

    /// [`Origins::stamp`] on a Slot's JSON text: this installation's own Slots, nearly all of a
    /// feed, are recognised by their id at the start of the text (as the store writes it) and
    /// passed as they are; an ingested one is read whole.
    fn stamp_text<'a>(&self, json: std::borrow::Cow<'a, str>) -> Option<std::borrow::Cow<'a, str>> {
        const START: &str = r#"{"resourceType":"Slot","id":""#;
        let id = json.strip_prefix(START).and_then(|rest| rest.split_once('"')).map(|(id, _)| id);
        if id.is_some_and(|id| !id.contains('\\') && self.of_id(id).is_none()) {
            return Some(json);
        }
        let mut slot: Value = serde_json::from_str(&json).ok()?;
        if slot["id"].as_str().and_then(|id| self.of_id(id)).is_none() {
            return Some(json);
        }
        self.stamp(&mut slot);
        Some(std::borrow::Cow::Owned(slot.to_string()))
    }
}

/// The Slot's `schedule.reference`, read from the text when it has one `"schedule":{` (so that
/// one is the Slot's own, which every Slot has) beginning with the reference, as the store
/// writes it; otherwise from the parsed Slot. A participant's Slot is left out of the feed by
/// it, so a nested object of the same shape must never be taken for the Slot's own.
fn schedule_of(json: &str) -> Option<std::borrow::Cow<'_, str>> {
    static KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("\"schedule\":{"));
    const REFERENCE: &str = "\"reference\":\"";
    let bytes = json.as_bytes();
    if let Some(at) = KEY.find(bytes)
        && KEY.find(&bytes[at + 1..]).is_none()
        && let Some(rest) = json[at + KEY.needle().len()..].strip_prefix(REFERENCE)
        && let Some(end) = rest.find('"')
        && !rest[..end].contains('\\')
    {
        return Some(std::borrow::Cow::Borrowed(&rest[..end]));
    }
    let slot: Value = serde_json::from_str(json).ok()?;
    slot["schedule"]["reference"].as_str().map(|s| std::borrow::Cow::Owned(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slots_schedule_is_its_own_never_a_nested_one() {
        let plain = r#"{"resourceType":"Slot","schedule":{"reference":"Schedule/p1"},"status":"busy"}"#;
        assert!(matches!(schedule_of(plain), Some(std::borrow::Cow::Borrowed("Schedule/p1"))));
        // A nested object of the same shape, before or after the Slot's own: parsed.
        for json in [
            r#"{"extension":[{"url":"x","valueX":{"schedule":{"reference":"Schedule/other"}}}],"schedule":{"reference":"Schedule/p1"}}"#,
            r#"{"schedule":{"reference":"Schedule/p1"},"contained":[{"schedule":{"reference":"Schedule/other"}}]}"#,
            r#"{"schedule":{"display":"mine","reference":"Schedule/p1"}}"#,
            r#"{"schedule":{"reference":"Schedule/p\u0031"}}"#,
        ] {
            assert_eq!(schedule_of(json).as_deref(), Some("Schedule/p1"), "{json}");
        }
        // The same words inside a string are not a key.
        let text =
            r#"{"note":"\"schedule\":{\"reference\":\"Schedule/other\"","schedule":{"reference":"Schedule/p1"}}"#;
        assert_eq!(schedule_of(text).as_deref(), Some("Schedule/p1"));
        assert_eq!(schedule_of("not json"), None);
    }

    #[test]
    fn a_weeks_states_are_those_of_its_slots_locations() {
        let set = |states: &[&str]| states.iter().map(|s| s.to_string()).collect::<BTreeSet<String>>();
        let pairs: Vec<(i64, String)> = [
            (0, "Schedule/boston"),
            (0, "Schedule/maria-busy"),
            (1, "Schedule/boston"),
            (1, "Schedule/austin"),
            (2, "Schedule/maria-busy"),
            (3, "Schedule/nowhere"),
            (3, "Schedule/austin"),
            (4, "Schedule/stateless"),
        ]
        .into_iter()
        .map(|(n, s)| (n, s.to_string()))
        .collect();
        let places = Places {
            participants: ["Schedule/maria-busy".to_string()].into(),
            located: [
                ("Schedule/boston".to_string(), set(&["MA"])),
                ("Schedule/austin".to_string(), set(&["TX"])),
                ("Schedule/stateless".to_string(), set(&[])),
            ]
            .into(),
            all_states: set(&["MA", "TX", "VT"]),
        };
        let weeks = week_states(&pairs, &places);
        let expected: BTreeMap<i64, BTreeSet<String>> = [
            (0, set(&["MA"])),
            (1, set(&["MA", "TX"])),
            // Week 2 has only a participant's busy time: no file.
            (3, set(&["MA", "TX", "VT"])),
            (4, set(&[])),
        ]
        .into();
        assert_eq!(weeks, expected);
    }

    #[test]
    fn calsyncs_own_records_come_off_a_published_slot() {
        let booked = format!(
            r#"{{"resourceType":"Slot","extension":[{{"url":"{BOOKED_EXTENSION}","valueString":"x"}}],"status":"busy"}}"#
        );
        assert_eq!(published_slot(&booked).as_deref(), Some(r#"{"resourceType":"Slot","status":"busy"}"#));
        let plain = r#"{"resourceType":"Slot","status":"free"}"#;
        assert!(matches!(published_slot(plain), Some(std::borrow::Cow::Borrowed(_))));
        assert!(HOLD_EXTENSION.starts_with(CALSYNC_EXTENSIONS) && BOOKED_EXTENSION.starts_with(CALSYNC_EXTENSIONS));
    }
}

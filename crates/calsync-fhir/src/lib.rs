//! FHIR R4 mapping of calsync, and the only crate that knows fhirbolt.
//!
//! In: provider Locations, Schedules and Slots from SMART Scheduling Links NDJSON
//! or a FHIR Bundle, parsed with fhirbolt into the `Resource` enum and mapped to
//! the matching core's [`ProviderSlot`]. A bad line is reported with its file and
//! line number and skipped; good lines still count.
//!
//! Out: a searchset Bundle of proposed Appointments (AppointmentCoordinationAppointment:
//! status proposed, start/end, participants needs-action, `slot` references), with an
//! OperationOutcome entry that explains an empty answer.

use calsync_core::{Interval, MutualSlot, NoFit, ProviderSlot, SearchOutcome, SlotStatus};
use chrono::{DateTime, SecondsFormat, Utc};
use fhirbolt::model::r4::Resource;
use fhirbolt::model::r4::resources as res;
use fhirbolt::model::r4::types as ty;

pub mod audit;
pub mod availability;
pub mod booking;
pub mod consent;
pub mod index;
pub mod read;
pub mod validate;
pub mod xml;

pub use read::{LineProblem, ProviderData, ScheduleInfo};

/// Base URL of the SMART Scheduling Links extensions.
pub const SSL_EXTENSION_BASE: &str = "http://fhir-registry.smarthealthit.org/StructureDefinition/";

/// The longest free Slot calsync stores. A free Slot is found by searches for free times in
/// windows up to its length after its start (the store's `longest_free_ms`), so one free Slot of
/// years would make every such search naming no provider read every Slot before its window.
/// Whole-day Slots of a week or two are well inside; busy Slots (a participant's weeks away) may
/// be longer.
pub const LONGEST_FREE_SLOT: chrono::TimeDelta = chrono::TimeDelta::days(31);

/// An address that people's apps open (a Slot's `booking-deep-link`, a Location's web site):
/// an absolute `https` or `http` URL with a host. A `javascript:`, `data:` or `file:` address, a
/// relative one or text that is not a URL is an error that says why, with the text shortened
/// (it is a publisher's, and goes into reports).
pub fn web_link(text: &str) -> Result<url::Url, String> {
    let shown: String = text.chars().take(100).collect();
    let link = url::Url::parse(text).map_err(|e| format!("{shown:?} is not a URL: {e}"))?;
    if !matches!(link.scheme(), "https" | "http") || link.host_str().is_none_or(str::is_empty) {
        return Err(format!("{shown:?} is not an http(s) URL"));
    }
    Ok(link)
}

/// A participant as it appears on an Appointment. The reference's type places them in the
/// profile's slices: `Patient/…` the patient, `RelatedPerson/…` a caregiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppointmentParticipant {
    /// A reference such as `Patient/123` or `RelatedPerson/7`.
    pub reference: String,
    /// A name to show.
    pub display: String,
    /// False for optional participants.
    pub required: bool,
}

fn instant(t: DateTime<Utc>) -> ty::Instant {
    t.to_rfc3339_opts(SecondsFormat::Secs, true).into()
}

/// An instant as text with `zone`'s offset there and then (the same instant), else in UTC.
fn instant_in(t: DateTime<Utc>, zone: Option<chrono_tz::Tz>) -> ty::Instant {
    match zone {
        Some(zone) => t.with_timezone(&zone).to_rfc3339_opts(SecondsFormat::Secs, true).into(),
        None => instant(t),
    }
}

fn reference(r: &str, display: Option<&str>) -> Box<ty::Reference> {
    Box::new(ty::Reference { reference: Some(r.into()), display: display.map(Into::into), ..Default::default() })
}

fn qualified(kind: &str, id: &str) -> String {
    if id.contains('/') { id.to_string() } else { format!("{kind}/{id}") }
}

/// A proposed Appointment for one mutual time, its start and end shown in `zone` if given.
fn proposed(
    m: &MutualSlot,
    participants: &[AppointmentParticipant],
    providers: &ProviderData,
    zone: Option<chrono_tz::Tz>,
) -> res::Appointment {
    let mut people: Vec<res::AppointmentParticipant> = participants
        .iter()
        .filter(|p| !m.absent.contains(&p.display) && !m.absent.contains(&p.reference))
        .map(|p| res::AppointmentParticipant {
            actor: Some(reference(&p.reference, Some(&p.display))),
            required: Some(if p.required { "required" } else { "optional" }.into()),
            status: "needs-action".into(),
            ..Default::default()
        })
        .collect();
    let schedule = qualified("Schedule", &m.schedule);
    if let Some(info) = providers.schedules.get(&schedule) {
        for actor in &info.actors {
            let display = providers.locations.get(actor).map(String::as_str);
            people.push(res::AppointmentParticipant {
                actor: Some(reference(actor, display)),
                required: Some("required".into()),
                status: "needs-action".into(),
                ..Default::default()
            });
        }
    }
    let minutes = (m.interval.end - m.interval.start).num_minutes();
    res::Appointment {
        status: "proposed".into(),
        start: Some(instant_in(m.interval.start, zone)),
        end: Some(instant_in(m.interval.end, zone)),
        minutes_duration: u32::try_from(minutes)
            .ok()
            .filter(|n| *n > 0)
            .map(|n| ty::PositiveInt { value: Some(n), ..Default::default() }),
        slot: vec![*reference(&qualified("Slot", &m.slot), None)],
        participant: people,
        ..Default::default()
    }
}

/// Why an empty answer is empty, as an OperationOutcome for the searchset.
fn outcome(no_fit: &NoFit) -> res::OperationOutcome {
    res::OperationOutcome {
        issue: vec![res::OperationOutcomeIssue {
            severity: "information".into(),
            code: "not-found".into(),
            diagnostics: Some(format!("No mutual time: {}.", no_fit.describe()).into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Marks alternatives offered when nothing fits: `without-optional` (a time without the optional
/// participants) or `after-window` (the nearest times after the window).
pub const ALTERNATIVE_EXTENSION: &str = "https://calsync.example.org/fhir/StructureDefinition/alternative";

/// A searchset Bundle of proposed Appointments, one per mutual time, in rank order; when there
/// are none and `no_fit` says why, an OperationOutcome entry (search mode `outcome`) explains it.
pub fn appointments_bundle(
    found: &[MutualSlot],
    participants: &[AppointmentParticipant],
    providers: &ProviderData,
    no_fit: Option<&NoFit>,
) -> String {
    let entry = answer_entries(found, participants, providers, no_fit, None);
    serialize_bundle(searchset(Some(found.len()), entry, &[]))
}

/// The proposed Appointment for one mutual time, as FHIR JSON text: what `$hold` and `$book`
/// take back.
pub fn proposed_appointment(
    m: &MutualSlot,
    participants: &[AppointmentParticipant],
    providers: &ProviderData,
    zone: Option<chrono_tz::Tz>,
) -> String {
    fhirbolt::json::to_string(&Resource::Appointment(Box::new(proposed(m, participants, providers, zone))), None)
        .expect("an Appointment built from typed parts serializes")
}

/// What the answer to `$find` or `$find-mutual` shows.
#[derive(Debug, Clone, Copy)]
pub struct FindAnswer<'a> {
    /// The matching core's options, explanations and alternatives.
    pub outcome: &'a SearchOutcome,
    /// The participants, as each option names them.
    pub people: &'a [AppointmentParticipant],
    /// The provider Schedules' actors and Locations' names.
    pub providers: &'a ProviderData,
    /// Add an OperationOutcome naming who blocks each rejected time (at most 50).
    pub explain: bool,
    /// The zone the times are shown in (none: UTC).
    pub zone: Option<chrono_tz::Tz>,
    /// How many options there are in all: given only when this answer ends them.
    pub total: Option<usize>,
    /// The request's own URL.
    pub self_url: &'a str,
    /// The next page's URL, when there are more options.
    pub next_url: Option<&'a str>,
    /// The ids the options were given (IHE `$find`: `$hold` and `$book` take them back by
    /// reference), in order; none: the options have no id.
    pub ids: &'a [String],
}

/// Rejected times an `explain` answer names at most.
const EXPLAINED: usize = 50;

/// The answer Bundle of `$find` and `$find-mutual`: the options (search mode `match`), why nothing
/// fits, the alternatives (mode `include`, marked with [`ALTERNATIVE_EXTENSION`]), and with
/// `explain` who blocks each rejected time (an OperationOutcome, mode `outcome`). Each proposed
/// Appointment has a stable `urn:uuid` fullUrl made of its Slot and start, so the same option has
/// the same fullUrl in every answer.
pub fn find_bundle(answer: &FindAnswer<'_>) -> String {
    let FindAnswer { outcome, people, providers, explain, zone, total, self_url, next_url, ids } = *answer;
    let explanation = &outcome.explanation;
    let mut entry = answer_entries(&outcome.slots, people, providers, explanation.no_fit.as_ref(), zone);
    for (e, id) in entry.iter_mut().zip(ids) {
        if let Some(Resource::Appointment(a)) = &mut e.resource {
            a.id = Some(id.clone().into());
        }
    }
    for (kind, found) in [
        ("without-optional", &explanation.alternatives.without_optional),
        ("after-window", &explanation.alternatives.after_window),
    ] {
        entry.extend(found.iter().map(|m| {
            let mut appointment = proposed(m, people, providers, zone);
            appointment.extension = vec![ty::Extension {
                url: ALTERNATIVE_EXTENSION.into(),
                value: Some(ty::ExtensionValue::Code(kind.into())),
                ..Default::default()
            }];
            appointment_entry(m, appointment, "include")
        }));
    }
    if explain && !explanation.rejected.is_empty() {
        let issue = explanation.rejected.iter().take(EXPLAINED).map(|r| {
            let names: std::collections::BTreeSet<&str> = r.blocked_by.iter().map(|b| b.participant.as_str()).collect();
            let names: Vec<&str> = names.into_iter().collect();
            res::OperationOutcomeIssue {
                severity: "information".into(),
                code: "business-rule".into(),
                diagnostics: Some(
                    format!("{} at {} is blocked by {}", r.slot, r.interval.start.to_rfc3339(), names.join(", "))
                        .into(),
                ),
                expression: names.iter().map(|n| (*n).into()).collect(),
                ..Default::default()
            }
        });
        let why = res::OperationOutcome { issue: issue.collect(), ..Default::default() };
        entry.push(res::BundleEntry {
            resource: Some(Resource::OperationOutcome(Box::new(why))),
            search: Some(res::BundleEntrySearch { mode: Some("outcome".into()), ..Default::default() }),
            ..Default::default()
        });
    }
    let links = [("self", Some(self_url)), ("next", next_url)];
    serialize_bundle(searchset(total, entry, &links))
}

/// The entries for `found`, and the OperationOutcome that says why when there are none.
fn answer_entries(
    found: &[MutualSlot],
    participants: &[AppointmentParticipant],
    providers: &ProviderData,
    no_fit: Option<&NoFit>,
    zone: Option<chrono_tz::Tz>,
) -> Vec<res::BundleEntry> {
    let mut entry: Vec<res::BundleEntry> =
        found.iter().map(|m| appointment_entry(m, proposed(m, participants, providers, zone), "match")).collect();
    if found.is_empty()
        && let Some(why) = no_fit
    {
        entry.push(res::BundleEntry {
            resource: Some(Resource::OperationOutcome(Box::new(outcome(why)))),
            search: Some(res::BundleEntrySearch { mode: Some("outcome".into()), ..Default::default() }),
            ..Default::default()
        });
    }
    entry
}

/// The entry of `m`'s proposed Appointment, with its stable fullUrl (made of its Slot and UTC
/// start, whatever zone it is shown in).
fn appointment_entry(m: &MutualSlot, appointment: res::Appointment, mode: &str) -> res::BundleEntry {
    let start = m.interval.start.to_rfc3339_opts(SecondsFormat::Secs, true);
    let full_url = proposal_urn(&qualified("Slot", &m.slot), &start);
    res::BundleEntry {
        full_url: Some(full_url.into()),
        resource: Some(Resource::Appointment(Box::new(appointment))),
        search: Some(res::BundleEntrySearch { mode: Some(mode.into()), ..Default::default() }),
        ..Default::default()
    }
}

/// A stable `urn:uuid` for the proposal of `slot` (a reference) at `start` (its instant text).
fn proposal_urn(slot: &str, start: &str) -> String {
    // The key as the JSON values' text, quotes included: the fullUrls of earlier answers.
    let key = format!("\"{slot}\"|\"{start}\"");
    let hex = index::fnv(&key) + &index::fnv(&format!("{key}|2"));
    format!("urn:uuid:{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

fn searchset(total: Option<usize>, entry: Vec<res::BundleEntry>, links: &[(&str, Option<&str>)]) -> res::Bundle {
    res::Bundle {
        r#type: "searchset".into(),
        total: total.map(|n| ty::UnsignedInt { value: Some(n as u32), ..Default::default() }),
        link: links
            .iter()
            .filter_map(|(relation, url)| {
                Some(res::BundleLink { relation: (*relation).into(), url: (*url)?.into(), ..Default::default() })
            })
            .collect(),
        entry,
        ..Default::default()
    }
}

fn serialize_bundle(bundle: res::Bundle) -> String {
    fhirbolt::json::to_string(&Resource::Bundle(Box::new(bundle)), None)
        .expect("a Bundle built from typed parts serializes")
}

/// Maps one FHIR Slot to the matching core's view, or says what is wrong with it.
fn provider_slot(slot: &res::Slot) -> Result<ProviderSlot, String> {
    let id = slot.id.as_ref().and_then(|i| i.value.clone()).ok_or("Slot without id")?;
    let schedule =
        slot.schedule.reference.as_ref().and_then(|r| r.value.clone()).ok_or("Slot.schedule without a reference")?;
    let at = |name: &str, v: &ty::Instant| -> Result<DateTime<Utc>, String> {
        let text = v.value.as_deref().ok_or(format!("Slot.{name} missing"))?;
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.to_utc())
            .map_err(|_| format!("Slot.{name} {text:?} is not a FHIR instant (YYYY-MM-DDThh:mm:ss with a zone)"))
    };
    let interval = Interval::new(at("start", &slot.start)?, at("end", &slot.end)?);
    if interval.is_empty() {
        return Err("Slot.end is not after Slot.start".into());
    }
    let status_code = slot.status.value.as_deref().ok_or("Slot.status missing")?;
    let status: SlotStatus =
        status_code.parse().map_err(|e: calsync_core::provider::UnknownSlotStatus| e.to_string())?;
    let capacity =
        slot.extension.iter().find(|e| e.url == format!("{SSL_EXTENSION_BASE}slot-capacity")).and_then(|e| {
            match &e.value {
                Some(ty::ExtensionValue::Integer(i)) => i.value.map(|v| v.max(0) as u32),
                _ => None,
            }
        });
    Ok(ProviderSlot {
        id: qualified("Slot", &id),
        schedule: qualified("Schedule", &schedule),
        interval,
        status,
        capacity,
    })
}

//! An appointment's confirmation as an iCalendar invitation: time, place and provider only. The
//! participants' names and anything else in the Appointment stay out of it.

use calsync_ical::{Invitation, InvitationStatus};
use calsync_store::{Store, StoreError, StoredResource};
use chrono::{DateTime, Utc};
use serde_json::Value;

use calsync_fhir::audit::Action;

use crate::access::Interaction;
use crate::{Context, Outcome, UseCaseError, UseCases};

impl UseCases {
    /// The invitation for Appointment `id`, its UID on the host of `cx.base`.
    pub async fn invitation(&self, cx: &Context, id: &str) -> Outcome<(Invitation, StoredResource)> {
        let reach = self.authorize(cx, "Appointment", Interaction::Read).await?;
        let appointment = self.store.read("Appointment", crate::resources::valid_id("Appointment", id)?).await?;
        self.visible(cx, &reach, &appointment).await?;
        let a = &appointment.content;
        let at = |name: &str| -> Outcome<DateTime<Utc>> {
            a[name].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc()).ok_or_else(|| {
                UseCaseError::element(
                    format!("Appointment.{name}"),
                    format!("the Appointment has no {name} time to put in a calendar"),
                )
            })
        };
        let status = match a["status"].as_str() {
            Some("booked" | "arrived" | "fulfilled" | "checked-in") => InvitationStatus::Confirmed,
            Some("cancelled" | "noshow" | "entered-in-error") => InvitationStatus::Cancelled,
            _ => InvitationStatus::Tentative,
        };
        let (provider, place) = provider_and_place(&self.store, a).await?;
        let summary = match (&provider, &place) {
            (Some(who), _) => format!("Appointment with {who}"),
            (None, Some(place)) => format!("Appointment at {}", place.split(", ").next().unwrap_or(place)),
            (None, None) => "Appointment".to_string(),
        };
        let host = cx.base.split("://").nth(1).unwrap_or(&cx.base).split('/').next().unwrap_or("calsync").to_string();
        let invitation = Invitation {
            uid: format!("{}@{host}", appointment.id),
            sequence: appointment.version_id - 1,
            stamp: appointment.last_updated,
            start: at("start")?,
            end: at("end")?,
            status,
            summary,
            location: place,
        };
        self.audit_resources(cx, Action::Read, "$ics", [("Appointment", &appointment.content)]).await?;
        Ok((invitation, appointment))
    }
}

/// The provider's name and the place, from the Appointment's actors and else its Slot's
/// Schedule's actors.
async fn provider_and_place(store: &Store, a: &Value) -> Outcome<(Option<String>, Option<String>)> {
    let mut actors: Vec<(String, Option<String>)> = a["participant"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            Some((p["actor"]["reference"].as_str()?.to_string(), p["actor"]["display"].as_str().map(String::from)))
        })
        .collect();
    let is_provider = |r: &str| {
        ["Practitioner/", "PractitionerRole/", "HealthcareService/", "Location/"].iter().any(|t| r.starts_with(t))
    };
    actors.retain(|(r, _)| is_provider(r));
    if actors.is_empty()
        && let Some(slot) = a["slot"][0]["reference"].as_str().and_then(|r| r.strip_prefix("Slot/"))
        && let Some(slot) = found(store.read("Slot", slot).await)?
        && let Some(schedule) = slot.content["schedule"]["reference"].as_str().and_then(|r| r.strip_prefix("Schedule/"))
        && let Some(schedule) = found(store.read("Schedule", schedule).await)?
    {
        actors = schedule.content["actor"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r["reference"].as_str()?.to_string(), r["display"].as_str().map(String::from))))
            .collect();
    }
    let (mut provider, mut place) = (None, None);
    for (reference, display) in actors {
        let Some((t, id)) = reference.split_once('/') else { continue };
        let resource = if crate::resources::is_kept(t) && calsync_store::is_valid_id(id) {
            found(store.read(t, id).await)?.map(|r| r.content)
        } else {
            None
        };
        match t {
            "Location" if place.is_none() => place = resource.as_ref().and_then(place_of).or(display),
            "Practitioner" | "PractitionerRole" | "HealthcareService" if provider.is_none() => {
                provider = match (t, &resource) {
                    ("PractitionerRole", Some(role)) => {
                        let practitioner =
                            role["practitioner"]["reference"].as_str().and_then(|r| r.strip_prefix("Practitioner/"));
                        match practitioner {
                            Some(p) if calsync_store::is_valid_id(p) => {
                                found(store.read("Practitioner", p).await)?.and_then(|p| person_name(&p.content))
                            }
                            _ => None,
                        }
                        .or_else(|| role["practitioner"]["display"].as_str().map(String::from))
                    }
                    ("Practitioner", Some(p)) => person_name(p),
                    (_, Some(service)) => service["name"].as_str().map(String::from),
                    _ => None,
                }
                .or(display);
            }
            _ => {}
        }
    }
    Ok((provider, place))
}

fn found(r: Result<StoredResource, StoreError>) -> Outcome<Option<StoredResource>> {
    match r {
        Ok(r) => Ok(Some(r)),
        Err(StoreError::NotFound(..) | StoreError::Gone(..)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// "Dr. Ada Okafor" from a Practitioner's first name.
fn person_name(p: &Value) -> Option<String> {
    let name = p["name"].as_array()?.first()?;
    if let Some(text) = name["text"].as_str() {
        return Some(text.to_string());
    }
    let words = |k: &str| {
        name[k].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from).collect::<Vec<_>>()
    };
    let mut parts = words("prefix");
    parts.extend(words("given"));
    parts.extend(name["family"].as_str().map(String::from));
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// "Riverside Clinic, 12 River St, Boston, MA 02101" from a Location.
fn place_of(l: &Value) -> Option<String> {
    let mut parts: Vec<String> = l["name"].as_str().map(String::from).into_iter().collect();
    let address = &l["address"];
    parts.extend(address["line"].as_array().into_iter().flatten().filter_map(Value::as_str).map(String::from));
    let city_line = [address["city"].as_str(), address["state"].as_str(), address["postalCode"].as_str()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if !city_line.is_empty() {
        parts.push(city_line);
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

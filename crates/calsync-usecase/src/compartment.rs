//! Whose data a person's token reaches: the compartment of the patient it acts for, or the
//! practitioner it names. The policy ([`crate::policy`]) decides by resource type and scope;
//! this decides by instance.
//!
//! - **patient** (`fhirUser` = `Patient/X`, or no `fhirUser` and `patient` = X): X, the
//!   RelatedPersons whose `patient` is X, their derived Schedules, Appointments with any of them
//!   as a participant, Consents and Tasks about X.
//! - **caregiver** (`fhirUser` = `RelatedPerson/Y`): the compartment of Y's patient X (the token's
//!   `patient`, when it names one, must be X), acting for X.
//! - **practitioner** (`Practitioner/P`, or `PractitionerRole/R` of P): the Schedules and Slots
//!   whose actor is P or one of P's roles, and Appointments P takes part in.
//! - Everyone authenticated reads the provider directory and provider availability.
//!
//! Busy windows (the Slots of a participant's derived Schedule) go further than the compartment:
//! only the participant themselves, and for a patient's windows the person acting for that
//! patient, read or write them. Another participant of the same family sees that someone is
//! busy, never when.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use calsync_fhir::availability::{is_participant_reference, is_participant_schedule};
use calsync_fhir::index::reference_key;
use calsync_store::StoreError;
use calsync_store::search::{AnyOf, IndexFilter};
use serde_json::Value;

use crate::access::Principal;
use crate::policy::DIRECTORY;
use crate::search::references_of;
use crate::{Caller, Context, Outcome, UseCaseError, UseCases};

/// Schedules looked up while deciding on Slots (their actors, and whether a participant's), by
/// reference, kept for the next Slot of a call.
pub(crate) type ScheduleActors = HashMap<String, Option<(Vec<String>, bool)>>;

/// RelatedPersons of one patient, or PractitionerRoles of one practitioner, read at most.
const MAX_MEMBERS: usize = 200;

/// How long a person's compartment is remembered: a write of a RelatedPerson or PractitionerRole
/// through this process forgets them all at once; one through another process is seen after this.
const REMEMBERED_FOR: Duration = Duration::from_secs(30);

/// Compartments remembered at most.
const REMEMBERED: usize = 10_000;

/// Compartments read lately, by who the token names (shared by every clone of the use cases).
#[derive(Debug, Clone, Default)]
pub(crate) struct Remembered(Arc<Mutex<HashMap<String, (Compartment, Instant)>>>);

impl Remembered {
    fn get(&self, key: &str) -> Option<Compartment> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key).filter(|(_, at)| at.elapsed() < REMEMBERED_FOR).map(|(c, _)| c.clone())
    }

    fn put(&self, key: String, c: Compartment) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= REMEMBERED {
            map.retain(|_, (_, at)| at.elapsed() < REMEMBERED_FOR);
            if map.len() >= REMEMBERED {
                map.clear();
            }
        }
        map.insert(key, (c, Instant::now()));
    }

    /// Forgets every compartment (who cares for whom, or who holds which role, changed).
    pub(crate) fn forget(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The types whose writes change compartments.
pub(crate) const MEMBERSHIP: [&str; 2] = ["RelatedPerson", "PractitionerRole"];

/// How far a caller reaches.
#[derive(Debug, Clone)]
pub enum Reach {
    /// The operator, a system token, or a deployment without authorization.
    Everything,
    /// A person's token.
    Person(Compartment),
}

/// The people and provider references a person's token reaches.
#[derive(Debug, Clone, Default)]
pub struct Compartment {
    /// Who the token names (`Patient/x`, `RelatedPerson/y`, `Practitioner/p`, `PractitionerRole/r`).
    pub me: String,
    /// The patient acted for (`Patient/x`), for a patient or a caregiver.
    pub patient: Option<String>,
    /// The patient and their RelatedPersons.
    pub people: BTreeSet<String>,
    /// The practitioner and their roles.
    pub provider: BTreeSet<String>,
}

impl Compartment {
    /// True when the caller may act as `person`: themselves, or the patient they act for.
    pub fn acts_for(&self, person: &str) -> bool {
        person == self.me || self.patient.as_deref() == Some(person)
    }

    /// True when `reference` is one of the people of this compartment.
    pub fn has_person(&self, reference: &str) -> bool {
        self.people.contains(reference)
    }

    /// The people the searches of Appointments are narrowed to (and a practitioner's own).
    fn appointment_actors(&self) -> Vec<String> {
        self.people.iter().chain(&self.provider).cloned().collect()
    }
}

fn references(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().flat_map(references).collect(),
        Value::Object(map) => {
            map.get("reference").and_then(Value::as_str).and_then(reference_key).into_iter().collect()
        }
        _ => Vec::new(),
    }
}

/// The participant actors of an Appointment.
pub fn appointment_actors(appointment: &Value) -> Vec<String> {
    appointment["participant"].as_array().into_iter().flatten().flat_map(|p| references(&p["actor"])).collect()
}

fn forbidden(what: impl Into<String>) -> UseCaseError {
    UseCaseError::Forbidden(what.into())
}

impl UseCases {
    /// How far the caller of `cx` reaches (its compartment, read from the store for a person).
    pub async fn reach(&self, cx: &Context) -> Outcome<Reach> {
        let p = match &cx.caller {
            Caller::Operator => return Ok(Reach::Everything),
            Caller::Anonymous if self.open => return Ok(Reach::Everything),
            Caller::Anonymous => return Err(UseCaseError::Unauthenticated("a bearer token is required".into())),
            Caller::Bearer(p) => p,
        };
        if crate::policy::is_system(p) {
            return Ok(Reach::Everything);
        }
        let key = format!("{}\n{}\n{:?}\n{:?}", p.issuer, p.subject, p.user, p.patient);
        if let Some(c) = self.compartments.get(&key) {
            return Ok(Reach::Person(c));
        }
        let c = self.compartment(p).await?;
        self.compartments.put(key, c.clone());
        Ok(Reach::Person(c))
    }

    async fn compartment(&self, p: &Principal) -> Outcome<Compartment> {
        let context = p.patient.as_deref().map(|x| format!("Patient/{}", x.trim_start_matches("Patient/")));
        let me = p.user.clone().or_else(|| context.clone()).ok_or_else(|| {
            forbidden("this token names no person (fhirUser) and no patient, and has no system scopes")
        })?;
        let (kind, id) = me.split_once('/').unwrap_or_default();
        let mut c = Compartment { me: me.clone(), ..Default::default() };
        match kind {
            "Patient" => {
                if context.as_ref().is_some_and(|x| *x != me) {
                    return Err(forbidden("a patient's token acts for that patient only"));
                }
                c.patient = Some(me.clone());
            }
            "RelatedPerson" => {
                let cares_for = match self.store.read("RelatedPerson", id).await {
                    Ok(r) => references(&r.content["patient"]).into_iter().next(),
                    Err(StoreError::NotFound(..) | StoreError::Gone(..)) => None,
                    Err(e) => return Err(e.into()),
                };
                if let (Some(x), Some(cared)) = (&context, &cares_for)
                    && x != cared
                {
                    return Err(forbidden(format!("{me} does not care for {x}")));
                }
                c.patient = cares_for;
            }
            "Practitioner" => {
                c.provider.insert(me.clone());
                let roles = IndexFilter::any_exact("practitioner", [me.clone()]);
                c.provider.extend(references_of(&self.store, "PractitionerRole", vec![roles], MAX_MEMBERS).await?);
            }
            "PractitionerRole" => {
                c.provider.insert(me.clone());
                if let Ok(role) = self.store.read("PractitionerRole", id).await
                    && let Some(practitioner) = references(&role.content["practitioner"]).into_iter().next()
                {
                    c.provider.insert(practitioner);
                }
            }
            _ => return Err(forbidden(format!("fhirUser {me} is not a person calsync knows"))),
        }
        if matches!(kind, "Patient" | "RelatedPerson") {
            c.people.insert(me.clone());
        }
        if let Some(x) = c.patient.clone() {
            c.people.insert(x.clone());
            let related = IndexFilter::any_exact("patient", [x]);
            c.people.extend(references_of(&self.store, "RelatedPerson", vec![related], MAX_MEMBERS).await?);
        }
        Ok(c)
    }

    /// The actors of Schedule `reference` (`Schedule/id`), and whether it is a participant's
    /// derived Schedule; `None` when there is no such Schedule.
    async fn schedule_actors(&self, reference: &str) -> Outcome<Option<(Vec<String>, bool)>> {
        let Some(id) = reference.strip_prefix("Schedule/") else { return Ok(None) };
        match self.store.read("Schedule", id).await {
            Ok(s) => Ok(Some((references(&s.content["actor"]), is_participant_schedule(&s.content)))),
            Err(StoreError::NotFound(..) | StoreError::Gone(..)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The participants (Patients, RelatedPersons) whose data `resource` (of type `t`) is, for
    /// the audit trail: none for provider data. `schedules` remembers the Schedules looked up.
    pub(crate) async fn participants_of(
        &self,
        t: &str,
        resource: &Value,
        schedules: &mut ScheduleActors,
    ) -> Outcome<Vec<String>> {
        let id = resource["id"].as_str().unwrap_or_default();
        let people = |refs: Vec<String>| refs.into_iter().filter(|r| is_participant_reference(r)).collect();
        Ok(match t {
            "Patient" | "RelatedPerson" => vec![format!("{t}/{id}")],
            "Appointment" => people(appointment_actors(resource)),
            "Consent" => people(references(&resource["patient"])),
            "Task" => people(references(&resource["for"])),
            "Schedule" if is_participant_schedule(resource) => people(references(&resource["actor"])),
            "Slot" => match self.schedule_of_slot(resource, schedules).await? {
                Some((actors, true)) => people(actors.clone()),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
    }

    /// The actors of a Slot's Schedule and whether it is a participant's ([`UseCases::schedule_actors`]),
    /// remembered in `schedules` for the next Slot of the same Schedule.
    async fn schedule_of_slot<'s>(
        &self,
        slot: &Value,
        schedules: &'s mut ScheduleActors,
    ) -> Outcome<&'s Option<(Vec<String>, bool)>> {
        let schedule = references(&slot["schedule"]).into_iter().next().unwrap_or_default();
        if !schedules.contains_key(&schedule) {
            let actors = self.schedule_actors(&schedule).await?;
            schedules.insert(schedule.clone(), actors);
        }
        Ok(&schedules[&schedule])
    }

    /// True when the person of `c` may read `resource` (of type `t`), remembering the Schedules
    /// it looked up in `schedules`.
    pub(crate) async fn may_read(
        &self,
        c: &Compartment,
        t: &str,
        resource: &Value,
        schedules: &mut ScheduleActors,
    ) -> Outcome<bool> {
        let id = resource["id"].as_str().unwrap_or_default();
        let me = format!("{t}/{id}");
        Ok(match t {
            _ if DIRECTORY.contains(&t) => true,
            "Patient" | "RelatedPerson" => c.has_person(&me),
            "Schedule" => {
                !is_participant_schedule(resource) || references(&resource["actor"]).iter().any(|a| c.has_person(a))
            }
            "Slot" => match self.schedule_of_slot(resource, schedules).await? {
                Some((actors, true)) => actors.iter().any(|a| c.acts_for(a)),
                Some((_, false)) => true,
                None => false,
            },
            "Appointment" => appointment_actors(resource).iter().any(|a| c.has_person(a) || c.provider.contains(a)),
            "Consent" => references(&resource["patient"]).iter().any(|p| c.has_person(p)),
            "Task" => references(&resource["for"]).iter().any(|p| c.has_person(p)),
            _ => false,
        })
    }

    /// Permits the person of `c` to create, update or delete `resource` (of type `t`) through
    /// the REST interactions, or says why not. Appointments are written through `$hold`,
    /// `$book` and `$cancel`, which check their participants.
    pub(crate) async fn may_write(&self, c: &Compartment, t: &str, resource: &Value) -> Outcome<()> {
        let id = resource["id"].as_str().unwrap_or_default();
        let allowed = match t {
            "Schedule" => {
                let actors = references(&resource["actor"]);
                if is_participant_schedule(resource) {
                    actors.iter().all(|a| c.acts_for(a))
                } else {
                    !actors.is_empty() && actors.iter().any(|a| c.provider.contains(a))
                }
            }
            "Slot" => {
                let schedule = references(&resource["schedule"]).into_iter().next().unwrap_or_default();
                match self.schedule_actors(&schedule).await? {
                    Some((actors, true)) => actors.iter().all(|a| c.acts_for(a)),
                    Some((actors, false)) => actors.iter().any(|a| c.provider.contains(a)),
                    None => false,
                }
            }
            "Patient" => c.patient.as_deref() == Some(&format!("Patient/{id}")) && c.me.starts_with("Patient/"),
            "RelatedPerson" => {
                c.me.starts_with("Patient/") && references(&resource["patient"]).iter().all(|p| *p == c.me)
            }
            "Consent" => {
                let about = references(&resource["patient"]);
                !about.is_empty() && about.iter().all(|p| c.patient.as_deref() == Some(p.as_str()))
            }
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(forbidden(format!("{} may not write this {t}: it is not theirs, or not their patient's", c.me)))
        }
    }

    /// Refuses unless every participant of `people` that is a Patient or RelatedPerson is in
    /// the compartment of the caller (`$find-mutual`).
    pub(crate) fn permit_participants<'a>(reach: &Reach, people: impl IntoIterator<Item = &'a str>) -> Outcome<()> {
        let Reach::Person(c) = reach else { return Ok(()) };
        for p in people {
            if is_participant_reference(p) && !c.has_person(p) {
                return Err(forbidden(format!("{p} is not in the compartment of {}", c.me)));
            }
        }
        Ok(())
    }

    /// Refuses unless the caller may act as `participant` (connecting, reading or syncing their
    /// calendar): themselves, or the patient they act for.
    pub(crate) fn permit_acting_for(reach: &Reach, participant: &str) -> Outcome<()> {
        match reach {
            Reach::Person(c) if !c.acts_for(participant) => {
                Err(forbidden(format!("{} may not act for {participant}", c.me)))
            }
            _ => Ok(()),
        }
    }

    /// [`UseCases::permit_participants`] for an Appointment a person holds, books or cancels:
    /// besides, one of its participants must be of their compartment (a person does not take a
    /// provider's time for nobody).
    pub(crate) fn permit_appointment(reach: &Reach, appointment: &Value) -> Outcome<()> {
        let actors = appointment_actors(appointment);
        Self::permit_participants(reach, actors.iter().map(String::as_str))?;
        match reach {
            Reach::Person(c) if !actors.iter().any(|a| c.has_person(a) || c.provider.contains(a)) => {
                Err(forbidden(format!("no participant of this Appointment is in the compartment of {}", c.me)))
            }
            _ => Ok(()),
        }
    }

    /// Narrows a search by the person of `c` to what they may read, before it runs; `None` when
    /// nothing of type `t` is theirs to search.
    pub(crate) fn narrowing(c: &Compartment, t: &str) -> Option<Narrowing> {
        let people = || c.people.iter().cloned().collect::<Vec<_>>();
        let ids_of = |t: &str| {
            c.people.iter().filter_map(|p| p.strip_prefix(&format!("{t}/")).map(String::from)).collect::<Vec<_>>()
        };
        Some(match t {
            _ if DIRECTORY.contains(&t) => Narrowing::None,
            "Patient" | "RelatedPerson" => Narrowing::Ids(AnyOf { values: ids_of(t), negate: false }),
            // An empty compartment matches nothing (an empty list of values would match any).
            "Appointment" | "Consent" | "Task" if c.people.is_empty() && c.provider.is_empty() => {
                Narrowing::Ids(AnyOf::default())
            }
            "Appointment" => Narrowing::Index(IndexFilter::any_exact("actor", c.appointment_actors())),
            "Consent" | "Task" if c.people.is_empty() => Narrowing::Ids(AnyOf::default()),
            "Consent" | "Task" => Narrowing::Index(IndexFilter::any_exact("patient", people())),
            "Schedule" => Narrowing::Participants(people()),
            "Slot" => Narrowing::Participants(c.people.iter().filter(|p| c.acts_for(p)).cloned().collect()),
            _ => return None,
        })
    }
}

/// How a person's search is narrowed.
#[derive(Debug, Clone)]
pub(crate) enum Narrowing {
    /// Not at all (the provider directory).
    None,
    /// To these ids.
    Ids(AnyOf),
    /// To resources with one of these indexed values.
    Index(IndexFilter),
    /// Schedules (and their Slots) of participants other than these are left out.
    Participants(Vec<String>),
}

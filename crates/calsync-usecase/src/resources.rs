//! FHIR resources: read, vread, create (conditional with `If-None-Exist`), update (with
//! `If-Match`), delete. Writes are validated as FHIR first; a Consent write re-checks the
//! consent of everyone the Consent names and purges withdrawn calendar connections at once.

use calsync_fhir::booking::Units;
use calsync_store::StoredResource;
use serde_json::Value;

use calsync_fhir::audit::Action;

use crate::access::Interaction;
use crate::compartment::{Reach, ScheduleActors};
use crate::{Context, Outcome, UseCaseError, UseCases};

/// The resource types calsync keeps; the router and the CapabilityStatement are built from it.
pub const RESOURCE_TYPES: &[&str] = &[
    "Appointment",
    "AuditEvent",
    "Consent",
    "Device",
    "HealthcareService",
    "Location",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Schedule",
    "Slot",
    "Task",
];

/// Types calsync writes itself and nobody writes through the API: the audit trail.
pub const WRITTEN_BY_CALSYNC: &[&str] = &["AuditEvent"];

/// Refuses a write of a type calsync writes itself, whoever asks.
fn writable_type(t: &str) -> Outcome<()> {
    if WRITTEN_BY_CALSYNC.contains(&t) {
        return Err(UseCaseError::Forbidden(format!("{t}s are written by calsync itself, never through the API")));
    }
    Ok(())
}

/// True when calsync keeps this resource type.
pub fn is_kept(resource_type: &str) -> bool {
    RESOURCE_TYPES.contains(&resource_type)
}

/// The resource type, if calsync keeps it.
pub fn kept_type(name: &str) -> Outcome<&str> {
    if is_kept(name) {
        Ok(name)
    } else {
        Err(UseCaseError::NotFound(format!("resource type {name:?} is not supported")))
    }
}

/// The id, if FHIR allows it: no resource can have another (not found, and the database never
/// sees it).
pub fn valid_id<'a>(resource_type: &str, id: &'a str) -> Outcome<&'a str> {
    if calsync_store::is_valid_id(id) {
        Ok(id)
    } else {
        Err(UseCaseError::NotFound(format!("{resource_type}/{id:?} is not known: ids are 1-64 of A-Z a-z 0-9 - .")))
    }
}

/// What a create did.
#[derive(Debug, Clone)]
pub struct Created {
    /// The resource as stored.
    pub resource: StoredResource,
    /// False when a conditional create found it already there.
    pub new: bool,
}

impl UseCases {
    /// The current version of `t/id`.
    pub async fn read(&self, cx: &Context, t: &str, id: &str) -> Outcome<StoredResource> {
        let t = kept_type(t)?;
        let reach = self.authorize(cx, t, Interaction::Read).await?;
        let stored = self.store.read(t, valid_id(t, id)?).await?;
        let mut schedules = ScheduleActors::new();
        self.visible_with(cx, &reach, &stored, &mut schedules).await?;
        self.audit_resources_with(cx, Action::Read, "read", [(t, &stored.content)], &mut schedules).await?;
        Ok(stored)
    }

    /// Refuses a resource outside the caller's compartment as if it did not exist (404), so that
    /// ids cannot be probed.
    pub(crate) async fn visible(&self, cx: &Context, reach: &Reach, stored: &StoredResource) -> Outcome<()> {
        self.visible_with(cx, reach, stored, &mut ScheduleActors::new()).await
    }

    /// [`UseCases::visible`], remembering the Schedules it looked up in `schedules`.
    async fn visible_with(
        &self,
        cx: &Context,
        reach: &Reach,
        stored: &StoredResource,
        schedules: &mut ScheduleActors,
    ) -> Outcome<()> {
        match reach {
            Reach::Person(c) if !self.may_read(c, &stored.resource_type, &stored.content, schedules).await? => {
                self.audit_refusal(
                    cx,
                    crate::audit::Done {
                        action: Action::Read,
                        subtype: "read",
                        patients: Vec::new(),
                        what: vec![format!("{}/{}", stored.resource_type, stored.id)],
                    },
                );
                Err(calsync_store::StoreError::NotFound(stored.resource_type.clone(), stored.id.clone()).into())
            }
            _ => Ok(()),
        }
    }

    /// Forgets the compartments remembered when a write of type `t` may have changed them.
    fn forget_compartments(&self, t: &str) {
        if crate::compartment::MEMBERSHIP.contains(&t) {
            self.compartments.forget();
        }
    }

    /// Permits the caller to write `value` (the version before or after a write) of type `t`.
    async fn writable(&self, reach: &Reach, t: &str, value: &Value) -> Outcome<()> {
        match reach {
            Reach::Person(c) => self.may_write(c, t, value).await,
            Reach::Everything => Ok(()),
        }
    }

    /// What the caller writes over, if it exists: checked as what they write.
    async fn current(&self, t: &str, id: &str) -> Outcome<Option<Value>> {
        match self.store.read(t, id).await {
            Ok(r) => Ok(Some(r.content)),
            Err(calsync_store::StoreError::NotFound(..) | calsync_store::StoreError::Gone(..)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Version `version` of `t/id`; the version that records a deletion is gone.
    pub async fn vread(&self, cx: &Context, t: &str, id: &str, version: i64) -> Outcome<StoredResource> {
        let t = kept_type(t)?;
        let reach = self.authorize(cx, t, Interaction::Read).await?;
        let stored = self.store.vread(t, valid_id(t, id)?, version).await?;
        let mut schedules = ScheduleActors::new();
        self.visible_with(cx, &reach, &stored, &mut schedules).await?;
        if stored.deleted {
            return Err(UseCaseError::Gone(format!("{t}/{id} version {version} records its deletion")));
        }
        self.audit_resources_with(cx, Action::Read, "vread", [(t, &stored.content)], &mut schedules).await?;
        Ok(stored)
    }

    /// Validates and stores a new resource under a server id. With `if_none_exist` (search
    /// criteria), nothing new when exactly one resource already matches.
    pub async fn create(&self, cx: &Context, t: &str, text: &str, if_none_exist: Option<&str>) -> Outcome<Created> {
        let t = kept_type(t)?;
        writable_type(t)?;
        let reach = self.authorize(cx, t, Interaction::Create).await?;
        let mut value = calsync_fhir::validate::resource(text, t)?;
        self.writable(&reach, t, &value).await?;
        if let Some(criteria) = if_none_exist {
            let (existing, total) = self.matching(cx, t, criteria, 2).await?;
            match existing.as_slice() {
                [] => {}
                [one] => return Ok(Created { resource: one.clone(), new: false }),
                _ => {
                    return Err(UseCaseError::VersionMismatch(format!(
                        "If-None-Exist {criteria:?} matches {total} resources"
                    )));
                }
            }
        }
        // The server assigns the id; a client's id is ignored on create.
        if let Some(map) = value.as_object_mut() {
            map.remove("id");
        }
        let stored = self.store.create(t, value, cx.now).await?;
        self.forget_compartments(t);
        if t == "Consent" {
            // A new Consent can deny (a nested deny, or a status other than active).
            self.consent_changed(cx, None, Some(&stored.content)).await;
        }
        Ok(Created { resource: stored, new: true })
    }

    /// Validates and writes a new version of `t/id` (the first, if unknown or deleted); with
    /// `if_match`, only over that version. Returns it and whether it was created.
    pub async fn update(
        &self,
        cx: &Context,
        t: &str,
        id: &str,
        text: &str,
        if_match: Option<i64>,
    ) -> Outcome<(StoredResource, bool)> {
        let t = kept_type(t)?;
        // SMART's `u` covers an update that creates (upsert).
        writable_type(t)?;
        let reach = self.authorize(cx, t, Interaction::Update).await?;
        let value = calsync_fhir::validate::resource(text, t)?;
        match value.get("id").and_then(Value::as_str) {
            Some(body_id) if body_id == id => {}
            Some(body_id) => {
                return Err(UseCaseError::Invalid(format!("body id {body_id:?} does not match the URL id {id:?}")));
            }
            None => return Err(UseCaseError::Invalid("an update must carry the resource id".into())),
        }
        if let Reach::Person(_) = reach {
            if let Some(before) = self.current(t, valid_id(t, id)?).await? {
                self.writable(&reach, t, &before).await?;
            }
            self.writable(&reach, t, &value).await?;
        }
        if t == "Slot" {
            return self.update_slot(cx, id, value, if_match).await;
        }
        let before = match t {
            "Consent" => self.store.read(t, id).await.ok().map(|r| r.content),
            _ => None,
        };
        let (stored, created) = self.store.update(t, id, value, if_match, cx.now).await?;
        self.forget_compartments(t);
        if t == "Consent" {
            self.consent_changed(cx, before.as_ref(), Some(&stored.content)).await;
        }
        Ok((stored, created))
    }

    /// A write of a Slot keeps what calsync holds or booked on it: while an appointment holds or
    /// booked a place, the Slot's time, Schedule, status and capacity stand (a write changing one
    /// is refused, naming the appointments), and its records of them carry over, so its status
    /// always follows its places whoever writes. One transaction, conditional on the version read.
    async fn update_slot(
        &self,
        cx: &Context,
        id: &str,
        mut value: Value,
        if_match: Option<i64>,
    ) -> Outcome<(StoredResource, bool)> {
        let txn = self.store.begin(cx.now).await?;
        let current = match txn.read("Slot", id).await {
            Ok(current) => Some(current),
            Err(calsync_store::StoreError::NotFound(..) | calsync_store::StoreError::Gone(..)) => None,
            Err(e) => return Err(e.into()),
        };
        let mut expected = if_match;
        if let Some(current) = &current {
            let units = Units::of(&current.content);
            let takers = units.takers(cx.now);
            if !takers.is_empty() {
                let stands = ["start", "end", "schedule", "status"].iter().all(|k| value[k] == current.content[k])
                    && Units::of(&value).capacity() == units.capacity();
                if !stands {
                    return Err(UseCaseError::Conflict(format!(
                        "Slot/{id} has places held or booked by {}: its time, Schedule, status and capacity stand \
                         until they are cancelled",
                        takers.join(", ")
                    )));
                }
                units.write(&mut value);
            }
            expected = Some(if_match.unwrap_or(current.version_id));
            if let Some(asked) = if_match
                && asked != current.version_id
            {
                return Err(UseCaseError::VersionMismatch(format!(
                    "If-Match names version {asked}, the current version is {}",
                    current.version_id
                )));
            }
        }
        let written = match txn.update("Slot", id, value, expected).await {
            // The version read changed under this write, though the caller named none.
            Err(calsync_store::StoreError::VersionConflict { .. }) if if_match.is_none() => {
                return Err(UseCaseError::Conflict(format!("Slot/{id} changed at the same time; try again")));
            }
            other => other?,
        };
        txn.commit().await?;
        Ok(written)
    }

    /// Deletes `t/id`; reads answer gone afterwards. Deleting what is not there changes nothing.
    pub async fn delete(&self, cx: &Context, t: &str, id: &str) -> Outcome<()> {
        let t = kept_type(t)?;
        writable_type(t)?;
        let reach = self.authorize(cx, t, Interaction::Delete).await?;
        let id = valid_id(t, id)?;
        if let (Reach::Person(c), Some(before)) = (&reach, self.current(t, id).await?) {
            // Deleting a Consent purges connections: the patient's own decision, not a caregiver's.
            if t == "Consent" && !c.me.starts_with("Patient/") {
                return Err(UseCaseError::Forbidden("only the patient, or a system token, deletes a Consent".into()));
            }
            self.writable(&reach, t, &before).await?;
        }
        let before = match t {
            "Consent" => self.store.read(t, id).await.ok().map(|r| r.content),
            _ => None,
        };
        self.store.delete(t, id, cx.now).await?;
        self.forget_compartments(t);
        if before.is_some() {
            self.consent_changed(cx, before.as_ref(), None).await;
        }
        Ok(())
    }

    /// Writes resources under their own ids in one transaction (`(type, id, resource)`, each
    /// validated first): new ones become version 1, changed ones get a new version, unchanged
    /// ones keep theirs. How many were written. For loading a directory or a demo.
    pub async fn put_resources(&self, cx: &Context, resources: Vec<(String, String, Value)>) -> Outcome<u64> {
        for (t, id, value) in &resources {
            kept_type(t)?;
            writable_type(t)?;
            self.permit_system(cx, t, Interaction::Update)?;
            valid_id(t, id)?;
            calsync_fhir::validate::resource(&value.to_string(), t)?;
        }
        let written = self.store.put_many(resources, cx.now).await?;
        self.compartments.forget();
        Ok(written)
    }

    /// After a Consent was written or deleted (`before` and `after` its versions): every
    /// participant either version names has their calendar connections re-checked, and those no
    /// longer permitted are purged at once. A failure here is logged; the next sync purges anyway.
    async fn consent_changed(&self, cx: &Context, before: Option<&Value>, after: Option<&Value>) {
        let mut named: Vec<&str> = before.into_iter().chain(after).flat_map(calsync_fhir::consent::named).collect();
        named.sort_unstable();
        named.dedup();
        match calsync_sync::connection::enforce_consent(&self.store, &named, cx.now).await {
            Ok(withdrawn) if !withdrawn.is_empty() => {
                tracing::info!(connections = withdrawn.len(), "consent withdrawn: connections purged")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "re-checking consent after a Consent write failed"),
        }
    }
}

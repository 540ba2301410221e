//! Booking a held or proposed Appointment in one transaction. The provider Slot must still be
//! takeable and every required participant still free (checked now, against their derived
//! Schedules); then the Appointment is booked, the Slot gives up a unit, each participant's
//! derived Schedule gets a busy Slot, and a Task records the booking. Two bookings that race for
//! the same Slot or participant cannot both commit: each writes a new version of the Slot and of
//! every participant's derived Schedule, conditional on the version it read.

use calsync_core::SlotStatus;
use calsync_fhir::availability::participant_constraints;
use calsync_store::StoreError;
use calsync_store::search::{Direction, IndexFilter, IndexTerm, Match, ResourceSearch, SortBy};
use serde_json::{Value, json};

use calsync_fhir::audit::Action;

use crate::access::Interaction;
use crate::offer::{Offer, Units, conflict, participant_slot_id, read_for_booking, text};
use crate::{Context, Outcome, UseCaseError, UseCases, participants};

/// Identifier system of the idempotency keys recorded on booking Tasks.
pub const IDEMPOTENCY_SYSTEM: &str = "https://calsync.example.org/fhir/idempotency-key";

/// Identifier system of who booked under a key (a digest of the caller's issuer and subject).
pub const IDEMPOTENCY_CALLER: &str = "https://calsync.example.org/fhir/idempotency-caller";

/// Identifier system of what was asked under a key (a digest of the request).
pub const IDEMPOTENCY_REQUEST: &str = "https://calsync.example.org/fhir/idempotency-request";

/// Who asked for a booking, and what, as digests: an idempotency key answers only the same.
struct Fingerprints {
    caller: String,
    body: String,
}

impl Fingerprints {
    fn of(caller: &crate::Caller, what: &Booking, comment: Option<&str>) -> Fingerprints {
        use crate::booking_link::digest;
        let who = match caller {
            crate::Caller::Anonymous => "anonymous".to_string(),
            crate::Caller::Operator => "operator".to_string(),
            crate::Caller::Bearer(p) => format!("{}\n{}", p.issuer, p.subject),
        };
        let asked = match what {
            Booking::Held(id) => format!("held\n{id}"),
            Booking::Proposed(a) => format!("proposed\n{a}"),
        };
        Fingerprints { caller: digest(&who), body: digest(&format!("{asked}\n{}", comment.unwrap_or(""))) }
    }
}

/// Longest idempotency key, in bytes.
pub const MAX_KEY: usize = 200;

/// What to book.
#[derive(Debug, Clone)]
pub enum Booking {
    /// A held Appointment, by id.
    Held(String),
    /// A proposed Appointment as `$find` offered it.
    Proposed(Value),
}

impl UseCases {
    /// Books `what`. With an idempotency key, a second request with the same key gets the
    /// Appointment the first one booked, and books nothing. Returns the booked Appointment.
    pub async fn book(&self, cx: &Context, what: Booking, key: Option<&str>) -> Outcome<Value> {
        self.book_noting(cx, what, key, None).await
    }

    /// [`UseCases::book`], with `comment` (IHE `$book`'s notes for the booking) written into the
    /// booked Appointment.
    pub async fn book_noting(
        &self,
        cx: &Context,
        what: Booking,
        key: Option<&str>,
        comment: Option<&str>,
    ) -> Outcome<Value> {
        self.permit(cx, "Appointment", Interaction::Create)?;
        let reach = self.authorize(cx, "Appointment", Interaction::Update).await?;
        let store = &self.store;
        let request = Fingerprints::of(&cx.caller, &what, comment);
        if let Some(key) = key {
            if key.is_empty() || key.len() > MAX_KEY {
                return Err(UseCaseError::Invalid(format!("Idempotency-Key must be 1 to {MAX_KEY} characters")));
            }
            if let Some(booked) = self.booked_with_key(key, &request).await? {
                return Ok(booked);
            }
        }
        let now = cx.now;
        // Everything that needs the connection pool is read before the transaction takes its
        // connection.
        let (existing, mut appointment) = match what {
            Booking::Held(id) => {
                let held = store.read("Appointment", &id).await?;
                (Some((id, held.version_id)), held.content)
            }
            Booking::Proposed(a) if a["status"] == "proposed" => {
                // What is stored must be FHIR, as any write's.
                calsync_fhir::validate::resource(&a.to_string(), "Appointment")?;
                (None, a)
            }
            Booking::Proposed(_) => {
                return Err(UseCaseError::element(
                    "Appointment.status",
                    "only a proposed or held Appointment can be booked",
                ));
            }
        };
        if existing.is_some() && appointment["status"] != "pending" && appointment["status"] != "proposed" {
            return Err(UseCaseError::Conflict(format!(
                "the Appointment is {}, not held",
                appointment["status"].as_str().unwrap_or("unknown")
            )));
        }
        Self::permit_appointment(&reach, &appointment)?;
        let offer = Offer::read(&appointment)?;
        let mut schedule_ids = Vec::new();
        for (reference, _) in &offer.people {
            let id = match participants::derived_schedules(store, reference).await?.into_iter().next() {
                Some(s) => s.id,
                // A participant without calendar data gets a derived Schedule for their bookings.
                None => participants::new_schedule_id(reference),
            };
            schedule_ids.push(id);
        }

        let txn = store.begin(now).await?;
        if let Some((id, version)) = &existing
            && read_for_booking(&txn, "Appointment", id).await?.version_id != *version
        {
            return Err(UseCaseError::Conflict(format!("Appointment/{id} changed at the same time; try again")));
        }
        let slot = read_for_booking(&txn, "Slot", &offer.slot).await?;
        let id = existing.as_ref().map_or_else(|| uuid::Uuid::new_v4().to_string(), |(id, _)| id.clone());
        // A hold of this appointment becomes its booking; an expired one is re-validated: the
        // booking goes ahead only if a unit is still free.
        let mut units = Units::of(&slot.content);
        units
            .take(&format!("Appointment/{id}"), None, now)
            .map_err(|why| UseCaseError::Conflict(format!("Slot/{} cannot be booked: {why}", offer.slot)))?;
        // Each participant: take their derived Schedule's version (the lock), then check their time.
        let mut derived = Vec::new();
        for ((reference, required), schedule_id) in offer.people.iter().zip(&schedule_ids) {
            let schedule = match txn.read("Schedule", schedule_id).await {
                Ok(s) => s,
                Err(StoreError::NotFound(..) | StoreError::Gone(..)) => {
                    let content = json!({"resourceType": "Schedule", "id": schedule_id, "active": true,
                        "actor": [{"reference": reference}]});
                    txn.update("Schedule", schedule_id, content, None).await.map_err(conflict)?.0
                }
                Err(e) => return Err(e.into()),
            };
            let touched = txn
                .update("Schedule", &schedule.id, schedule.content.clone(), Some(schedule.version_id))
                .await
                .map_err(conflict)?
                .0;
            if *required {
                let (_, constraints) = participant_constraints(&schedule.content).unwrap_or_default();
                let key = format!("Schedule/{}", schedule.id);
                let (from, to) =
                    (offer.interval.start - constraints.buffer_before, offer.interval.end + constraints.buffer_after);
                let blocks = |status: &str| match status.parse::<SlotStatus>().ok().and_then(SlotStatus::busy) {
                    Some(calsync_core::BusyStatus::BusyTentative) => constraints.tentative_is_busy,
                    Some(_) => true,
                    None => false,
                };
                let overlapping = txn.slots_overlapping(Some(&key), from, to).await?;
                if let Some(b) = overlapping.into_iter().find(|r| blocks(&r.status)) {
                    return Err(UseCaseError::Conflict(format!(
                        "{reference} is now busy from {} to {}: search again",
                        text(b.start),
                        text(b.end)
                    )));
                }
            }
            derived.push((reference.clone(), touched));
        }
        // The Appointment, booked.
        appointment["status"] = json!("booked");
        if let Some(c) = comment {
            appointment["comment"] = json!(c);
        }
        if let Some(list) = appointment["participant"].as_array_mut() {
            for p in list {
                p["status"] = json!("accepted");
            }
        }
        if let Some(o) = appointment.as_object_mut() {
            o.remove("extension");
            o.remove("meta");
        }
        appointment["id"] = json!(id);
        let version = existing.as_ref().map(|(_, version)| *version);
        let (booked, _) = txn.update("Appointment", &id, appointment, version).await.map_err(conflict)?;
        // The provider Slot: one unit taken (busy when it was the last).
        let mut taken = slot.content.clone();
        units.write(&mut taken);
        txn.update("Slot", &offer.slot, taken, Some(slot.version_id)).await.map_err(conflict)?;
        // Each participant's derived Schedule: a busy Slot for this appointment.
        for (n, (_, schedule)) in derived.iter().enumerate() {
            let id = participant_slot_id(&booked.id, n);
            let slot = json!({"resourceType": "Slot", "id": id, "schedule": {"reference": format!("Schedule/{}", schedule.id)},
                "status": "busy", "start": text(offer.interval.start), "end": text(offer.interval.end)});
            txn.update("Slot", &id, slot, None).await.map_err(conflict)?;
        }
        // The record of it (AppointmentCoordinationTask).
        let patient = offer.people.iter().find(|(r, _)| r.starts_with("Patient/")).map(|(r, _)| r.clone());
        let mut task = json!({"resourceType": "Task", "status": "completed", "intent": "order",
            "code": {"coding": [{"system": crate::booking_link::TASK_CODES, "code": "book-appointment"}]},
            "businessStatus": {"text": "booked"},
            "focus": {"reference": format!("Appointment/{}", booked.id)},
            "authoredOn": text(now)});
        if let Some(p) = patient {
            task["for"] = json!({"reference": p});
        }
        if let Some(key) = key {
            task["identifier"] = json!([{"system": IDEMPOTENCY_SYSTEM, "value": key},
                {"system": IDEMPOTENCY_CALLER, "value": request.caller},
                {"system": IDEMPOTENCY_REQUEST, "value": request.body}]);
        }
        txn.create("Task", task).await.map_err(conflict)?;
        txn.commit().await.map_err(conflict)?;
        tracing::info!(appointment = %booked.id, slot = %offer.slot, participants = derived.len(), "booked");
        self.audit_resources(cx, Action::Create, "$book", [("Appointment", &booked.content)]).await?;
        Ok(booked.content)
    }

    /// The Appointment an earlier booking with this idempotency key booked, when the same caller
    /// asked the same: the key of another caller is a 409, another request under it a 422.
    async fn booked_with_key(&self, key: &str, request: &Fingerprints) -> Outcome<Option<Value>> {
        let term = IndexTerm { system: Some(IDEMPOTENCY_SYSTEM.into()), value: Some(key.into()), how: Match::Exact };
        let search = ResourceSearch {
            index: vec![IndexFilter::Matches { param: "identifier".into(), terms: vec![term], negate: false }],
            ..Default::default()
        };
        let page = self.store.search_resources("Task", &search, (SortBy::Id, Direction::Ascending), None, 1).await?;
        let Some(task) = page.resources.first() else { return Ok(None) };
        let recorded = |system: &str| {
            task.content["identifier"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["system"] == system)
                .and_then(|i| i["value"].as_str())
        };
        // Bookings recorded before keys were scoped carry neither.
        if recorded(IDEMPOTENCY_CALLER).is_some_and(|c| c != request.caller) {
            return Err(UseCaseError::Conflict("this Idempotency-Key was used by another caller".into()));
        }
        if recorded(IDEMPOTENCY_REQUEST).is_some_and(|b| b != request.body) {
            return Err(UseCaseError::Unprocessable {
                message: "this Idempotency-Key was used with another request".into(),
                expression: None,
            });
        }
        let Some(focus) = task.content["focus"]["reference"].as_str().and_then(|r| r.strip_prefix("Appointment/"))
        else {
            return Ok(None);
        };
        Ok(Some(self.store.read("Appointment", focus).await?.content))
    }
}

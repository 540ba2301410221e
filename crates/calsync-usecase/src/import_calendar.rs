//! A participant's uploaded calendar (`$import-ics`): its busy windows over the next 180 days
//! replace the busy Slots an earlier upload put on their derived Schedule. Only start, end and
//! status are kept; a file that cannot be read is an error and the previous Slots stay.

use calsync_core::Interval;
use calsync_fhir::availability::{is_participant_schedule, participant_constraints};
use chrono::TimeDelta;

use calsync_fhir::audit::Action;

use crate::access::Interaction;
use crate::compartment::Reach;
use crate::{Context, Outcome, UseCaseError, UseCases};

/// The largest calendar file accepted, as for calendars calsync fetches.
pub const MAX_BYTES: usize = calsync_ical::budget::MAX_BYTES;

/// How far ahead an imported calendar is expanded.
const HORIZON_DAYS: i64 = 180;

/// What an import changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    /// Busy windows in the calendar over the horizon.
    pub busy: usize,
    /// Busy Slots written (new or changed status).
    pub added: usize,
    /// Busy Slots of an earlier import that are gone.
    pub removed: usize,
}

impl UseCases {
    /// Replaces the busy Slots an earlier import put on participant Schedule `id` with those of
    /// the iCalendar `text`, in one transaction. A calendar that cannot be read changes nothing.
    pub async fn import_calendar(&self, cx: &Context, id: &str, text: &str) -> Outcome<Imported> {
        let reach = self.authorize(cx, "Schedule", Interaction::Update).await?;
        let (store, now) = (&self.store, cx.now);
        let schedule = store.read("Schedule", id).await?;
        self.visible(cx, &reach, &schedule).await?;
        if let Reach::Person(c) = &reach {
            self.may_write(c, "Schedule", &schedule.content).await?;
        }
        if !is_participant_schedule(&schedule.content) {
            return Err(UseCaseError::Unprocessable {
                message: format!(
                    "Schedule/{id} is not a participant's Schedule (its actors must be Patients or RelatedPersons)"
                ),
                expression: Some("Schedule.actor".into()),
            });
        }
        let (zone, _) = participant_constraints(&schedule.content)
            .map_err(|m| UseCaseError::Unprocessable { message: m, expression: Some("Schedule.extension".into()) })?;
        let horizon = Interval::new(now - TimeDelta::days(1), now + TimeDelta::days(HORIZON_DAYS));
        // Expansion is CPU work, bounded by `calsync_ical::budget`: it runs off the request threads.
        let text = text.to_string();
        let zone = zone.unwrap_or(chrono_tz::UTC);
        let (busy, _) = tokio::task::spawn_blocking(move || calsync_ical::busy_intervals(&text, horizon, zone))
            .await
            .map_err(|e| UseCaseError::Internal(format!("reading the calendar stopped: {e}")))?
            .map_err(|e| UseCaseError::Invalid(format!("the calendar cannot be read: {e}")))?;
        let applied = calsync_sync::apply(store, id, "ics", &busy, horizon, now).await?;
        self.audit_resources(cx, Action::Update, "$import-ics", [("Schedule", &schedule.content)]).await?;
        Ok(Imported { busy: applied.busy, added: applied.added, removed: applied.removed })
    }
}

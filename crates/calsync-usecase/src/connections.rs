//! Participants' calendar connections: connect an ICS feed or a CalDAV calendar (Google and
//! Microsoft connect through OAuth, [`crate::connect`]), list a participant's, sync one now, sync
//! all, disconnect one (its busy Slots go with it). Credentials are sealed before they are stored
//! and never handed out.

use calsync_store::{CalendarConnection, ConnectionTally};
use calsync_sync::connection::{new_connection, source_of, sync_connection};
use serde_json::{Value, json};

use calsync_fhir::audit::Action;

use crate::access::Interaction;
use crate::audit::Done;
use crate::{Context, Outcome, UseCaseError, UseCases, participants};

/// A calendar to connect by its address: an ICS feed, or a CalDAV calendar with its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConnection {
    /// `Patient/…` or `RelatedPerson/…`.
    pub participant: String,
    /// `ics` or `caldav` (`google` and `microsoft` connect through OAuth).
    pub kind: String,
    /// The calendar's address: http(s) or webcal.
    pub url: String,
    /// CalDAV's account.
    pub username: Option<String>,
    /// CalDAV's password.
    pub password: Option<String>,
}

impl UseCases {
    /// Connects a participant's ICS or CalDAV calendar; it is due at once.
    pub async fn connect_calendar(&self, cx: &Context, new: NewConnection) -> Outcome<CalendarConnection> {
        // A connection writes the participant's derived Schedule.
        let reach = self.authorize(cx, "Schedule", Interaction::Update).await?;
        self.sync_settings()?;
        let participant = participants::known_participant(&self.store, &new.participant).await?;
        Self::permit_acting_for(&reach, &participant)?;
        let required = |value: &Option<String>, name: &str| {
            value
                .clone()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| UseCaseError::Invalid(format!("{name} is required")))
        };
        let secret = match new.kind.as_str() {
            "ics" => json!({"url": new.url}),
            "caldav" => json!({"url": new.url, "username": required(&new.username, "username")?,
                "password": required(&new.password, "password")?}),
            kind @ ("google" | "microsoft") => {
                return Err(UseCaseError::Invalid(format!(
                    "{kind} calendars connect through OAuth: send the participant's browser to /connect/{kind}/start?participant=..."
                )));
            }
            other => {
                return Err(UseCaseError::Invalid(format!(
                    "kind {other:?} is not one of ics, caldav, google, microsoft"
                )));
            }
        };
        let address = calsync_connect::ics::feed_url(&new.url)
            .map_err(|_| UseCaseError::Invalid("url must be an http(s) or webcal address".into()))?;
        self.egress.admit(&address).map_err(|refused| UseCaseError::element("url", refused.to_string()))?;
        let c = self.save_connection(cx, &participant, &new.kind, calsync_connect::host_of(&address), &secret).await?;
        tracing::info!(connection = %c.id, kind = %c.kind, "calendar connected");
        Ok(c)
    }

    /// Connects `participant` to a calendar of `kind` (`google`, `microsoft`, `ics`, `caldav`)
    /// whose credentials (`secret`: address, password or refresh token) the caller holds
    /// already: the demo's emulated calendars, tools. Sealed like any other.
    pub async fn connect_calendar_with(
        &self,
        cx: &Context,
        participant: &str,
        kind: &str,
        secret: &Value,
    ) -> Outcome<CalendarConnection> {
        let reach = self.authorize(cx, "Schedule", Interaction::Update).await?;
        self.sync_settings()?;
        let participant = participants::known_participant(&self.store, participant).await?;
        Self::permit_acting_for(&reach, &participant)?;
        let host = match kind {
            "google" | "microsoft" => self
                .authorizers
                .api_host(kind)
                .ok_or_else(|| UseCaseError::Invalid(format!("{kind} is not configured on this server")))?,
            _ => secret["url"]
                .as_str()
                .and_then(calsync_connect::address_host)
                .ok_or_else(|| UseCaseError::Invalid("the secret needs a url".into()))?,
        };
        self.save_connection(cx, &participant, kind, host, secret).await
    }

    /// Creates and stores a new connection of `participant` to a calendar of `kind` at `host`;
    /// `secret` is sealed. It is due at once.
    pub(crate) async fn save_connection(
        &self,
        cx: &Context,
        participant: &str,
        kind: &str,
        host: String,
        secret: &Value,
    ) -> Outcome<CalendarConnection> {
        let settings = self.sync_settings()?;
        let schedule = participants::derived_schedule(&self.store, participant, cx.now).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let c = new_connection(&settings.key, &id, participant, &schedule, kind, &host, secret, cx.now);
        self.store.save_calendar_connection(&c).await?;
        Ok(c)
    }

    /// A participant's connections, by id.
    pub async fn connections_of(&self, cx: &Context, participant: &str) -> Outcome<Vec<CalendarConnection>> {
        let reach = self.authorize(cx, "Schedule", Interaction::Read).await?;
        let (t, id) = crate::typed_reference(participant, &["Patient", "RelatedPerson"], "participant")?;
        let participant = format!("{t}/{id}");
        Self::permit_acting_for(&reach, &participant)?;
        let found = self.store.calendar_connections_of(&participant).await?;
        let what = found.iter().map(|c| c.schedule.clone()).collect();
        self.audit(cx, Done { action: Action::Read, subtype: "search-type", patients: vec![participant], what });
        Ok(found)
    }

    /// One connection.
    pub async fn connection(&self, cx: &Context, id: &str) -> Outcome<CalendarConnection> {
        let reach = self.authorize(cx, "Schedule", Interaction::Read).await?;
        // Only a FHIR-style id can name one (PostgreSQL refuses a NUL in any text).
        if !calsync_store::is_valid_id(id) {
            return Err(UseCaseError::NotFound(format!("connection {id:?} is not known")));
        }
        let c = crate::error::known(self.store.calendar_connection(id).await, || format!("connection {id}"))?;
        // Someone else's connection is not known to this caller.
        Self::permit_acting_for(&reach, &c.participant)
            .map_err(|_| UseCaseError::NotFound(format!("connection {id} is not known")))?;
        Ok(c)
    }

    /// Syncs one connection now, in this process.
    pub async fn sync_connection_now(&self, cx: &Context, id: &str) -> Outcome<CalendarConnection> {
        self.permit(cx, "Schedule", Interaction::Update)?;
        let settings = self.sync_settings()?;
        let id = self.connection(cx, id).await?.id;
        Ok(sync_connection(&self.store, settings, &id, cx.now).await?)
    }

    /// Makes every connection that syncs by itself due now and queues it for the worker (what
    /// the nightly run does); how many were queued.
    pub async fn sync_all_connections(&self, cx: &Context) -> Outcome<usize> {
        self.permit_system(cx, "Schedule", Interaction::Update)?;
        self.sync_settings()?;
        let jobs = self.jobs.as_ref().ok_or_else(|| UseCaseError::Unavailable("the job queue is not open".into()))?;
        let queued = jobs.sync_all(&self.store, cx.now).await.map_err(UseCaseError::Internal)?;
        tracing::info!(connections = queued, "sync of every connection requested");
        Ok(queued)
    }

    /// How many connections there are per state, how many synced since `since`, how many are
    /// still due at `since` (the progress of a run that started then).
    pub async fn connection_tally(
        &self,
        cx: &Context,
        since: chrono::DateTime<chrono::Utc>,
    ) -> Outcome<ConnectionTally> {
        self.permit_system(cx, "Schedule", Interaction::Read)?;
        Ok(self.store.connection_tally(since).await?)
    }

    /// Disconnects a calendar: its busy Slots go, then the connection.
    pub async fn disconnect_calendar(&self, cx: &Context, id: &str) -> Outcome<()> {
        self.permit(cx, "Schedule", Interaction::Update)?;
        let c = self.connection(cx, id).await?;
        let removed = calsync_sync::purge(&self.store, &c.schedule, &source_of(&c.id), cx.now).await?;
        self.store.delete_calendar_connection(&c.id).await?;
        tracing::info!(connection = %c.id, removed = removed.removed, "calendar disconnected");
        Ok(())
    }
}

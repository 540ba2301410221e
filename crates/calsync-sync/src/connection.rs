//! Syncing one calendar connection: consent first, then the connector, then [`crate::apply`].
//!
//! - Consent withdrawn or expired: the connection's busy Slots and its sealed credentials go,
//!   and the connection says so (`consent-withdrawn`).
//! - The calendar answered: its busy windows replace the connection's Slots (one transaction),
//!   the status is `ok`.
//! - It failed: the busy Slots stay as they were, the status says why. A transient failure is
//!   retried after a backoff; lost authorization waits for the participant (`needs-reconnect`).

use calsync_connect::caldav::{CalDav, CalDavAccount};
use calsync_connect::google::{Credentials, GoogleCalendar};
use calsync_connect::ics::IcsFeed;
use calsync_connect::microsoft::MicrosoftCalendar;
use calsync_connect::retry::Backoff;
use calsync_connect::secret::SecretKey;
use calsync_connect::{ConnectorError, Fetched, Validator};
use calsync_core::{BusyInterval, Interval};
use calsync_fhir::consent::{Decision, calendar_sync};
use calsync_store::search::{IndexFilter, ResourceSearch};
use calsync_store::{CalendarConnection, Store};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::Semaphore;

use crate::SyncError;

/// The connectors a sync may use; Google and Microsoft only when configured.
#[derive(Debug, Clone)]
pub struct Connectors {
    /// ICS feeds.
    pub ics: IcsFeed,
    /// CalDAV servers.
    pub caldav: CalDav,
    /// Google Calendar.
    pub google: Option<GoogleCalendar>,
    /// Microsoft Graph.
    pub microsoft: Option<MicrosoftCalendar>,
}

/// What a sync needs besides the store.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Seals and opens connections' credentials.
    pub key: SecretKey,
    /// The connectors.
    pub connectors: Connectors,
    /// How far ahead busy time is read.
    pub horizon: TimeDelta,
    /// The next regular sync after a good one.
    pub interval: TimeDelta,
    /// Delays after transient failures.
    pub backoff: Backoff,
    /// How many syncs may talk to each provider at once, in this process.
    pub limits: ProviderLimits,
}

/// At most so many syncs at once per provider (kind of connection), so a nightly run never
/// floods one provider: Graph throttles at 4 concurrent requests per mailbox and Google by
/// requests per minute, and a CalDAV server is often a small one.
#[derive(Debug, Clone)]
pub struct ProviderLimits {
    ics: Arc<Semaphore>,
    caldav: Arc<Semaphore>,
    google: Arc<Semaphore>,
    microsoft: Arc<Semaphore>,
}

impl ProviderLimits {
    /// The same limit for every provider.
    pub fn new(per_provider: usize) -> Self {
        Self::each(per_provider, per_provider, per_provider, per_provider)
    }

    /// A limit per provider (each at least 1).
    pub fn each(ics: usize, caldav: usize, google: usize, microsoft: usize) -> Self {
        let limit = |n: usize| Arc::new(Semaphore::new(n.max(1)));
        Self { ics: limit(ics), caldav: limit(caldav), google: limit(google), microsoft: limit(microsoft) }
    }

    fn of(&self, kind: &str) -> Option<&Arc<Semaphore>> {
        match kind {
            "ics" => Some(&self.ics),
            "caldav" => Some(&self.caldav),
            "google" => Some(&self.google),
            "microsoft" => Some(&self.microsoft),
            _ => None,
        }
    }

    /// Syncs of `kind` that may start now without waiting.
    pub fn available(&self, kind: &str) -> usize {
        self.of(kind).map_or(0, |s| s.available_permits())
    }
}

impl Default for ProviderLimits {
    fn default() -> Self {
        Self::new(8)
    }
}

/// A new connection of `participant` (whose derived Schedule is `schedule`) to a calendar of
/// `kind` at `host`, with `secret` (its address, password or refresh token) sealed under its
/// id, in state `new` and due at `due`.
#[allow(clippy::too_many_arguments)]
pub fn new_connection(
    key: &SecretKey,
    id: &str,
    participant: &str,
    schedule: &str,
    kind: &str,
    host: &str,
    secret: &Value,
    due: DateTime<Utc>,
) -> CalendarConnection {
    CalendarConnection {
        id: id.to_string(),
        participant: participant.to_string(),
        schedule: schedule.to_string(),
        kind: kind.to_string(),
        host: host.to_string(),
        secret: Some(key.seal(&secret.to_string(), id)),
        validator: None,
        state: "new".into(),
        reason: None,
        last_success_ms: None,
        next_run_ms: Some(due.timestamp_millis()),
        attempts: 0,
    }
}

/// The source key of a connection's Slots.
pub fn source_of(connection_id: &str) -> String {
    format!("c{}", &calsync_fhir::index::fnv(connection_id)[..12])
}

/// Syncs connection `id` at `now` and returns its new status (also saved).
pub async fn sync_connection(
    store: &Store,
    settings: &SyncSettings,
    id: &str,
    now: DateTime<Utc>,
) -> Result<CalendarConnection, SyncError> {
    let mut c = store.calendar_connection(id).await?;
    let horizon = Interval::new(now - TimeDelta::days(1), now + settings.horizon);
    let source = source_of(&c.id);
    if let Decision::Refused(reason) = calendar_sync(&consents_of(store, &c.participant).await?, &c.participant, now) {
        return withdraw(store, c, &reason, now).await;
    }
    let Some(sealed) = c.secret.clone() else {
        c.state = "needs-reconnect".into();
        c.reason = Some("no credentials are stored: connect the calendar again".into());
        store.save_calendar_connection(&c).await?;
        return Ok(c);
    };
    let mut secret: Value = settings
        .key
        .open(&sealed, &c.id)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(|| SyncError::Credentials(c.id.clone()))?;
    let fetched = {
        let _permit = match settings.limits.of(&c.kind) {
            Some(limit) => Some(limit.acquire().await.map_err(|_| SyncError::Stopped)?),
            None => None,
        };
        fetch(settings, &c, &mut secret, horizon).await
    };
    // A rotated refresh token replaces the stored one whatever else happened.
    c.secret = Some(settings.key.seal(&secret.to_string(), &c.id));
    match fetched {
        Ok(Fetched::Busy { busy, validator, .. }) => {
            crate::apply(store, &c.schedule, &source, &busy, horizon, now).await?;
            c.validator = Some(json!({"etag": validator.etag, "last_modified": validator.last_modified}).to_string());
            succeeded(&mut c, settings, now);
        }
        Ok(Fetched::NotModified) => succeeded(&mut c, settings, now),
        Err(e) => {
            c.attempts += 1;
            c.reason = Some(e.to_string());
            (c.state, c.next_run_ms) = match &e {
                ConnectorError::Transient { retry_after, .. } => {
                    let wait = settings.backoff.next_delay(c.attempts.max(1) as u32 - 1, *retry_after);
                    (
                        "error".into(),
                        Some((now + TimeDelta::from_std(wait).unwrap_or(settings.interval)).timestamp_millis()),
                    )
                }
                ConnectorError::Unauthorized(_) => ("needs-reconnect".into(), None),
                ConnectorError::Gone(_) | ConnectorError::Invalid(_) | ConnectorError::Refused(_) => {
                    ("error".into(), Some((now + settings.interval).timestamp_millis()))
                }
            };
            tracing::warn!(connection = %c.id, state = %c.state, "sync failed");
        }
    }
    store.save_calendar_connection(&c).await?;
    audit_sync(store, &c, now).await;
    Ok(c)
}

/// Consent no longer permits the connection: its busy Slots and credentials go, and it says so.
async fn withdraw(
    store: &Store,
    mut c: CalendarConnection,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<CalendarConnection, SyncError> {
    let purged = crate::purge(store, &c.schedule, &source_of(&c.id), now).await?;
    c.secret = None;
    c.validator = None;
    c.state = "consent-withdrawn".into();
    c.reason = Some(format!("{reason}; {} busy windows and the credentials were deleted", purged.removed));
    c.next_run_ms = None;
    store.save_calendar_connection(&c).await?;
    tracing::info!(connection = %c.id, removed = purged.removed, "consent withdrawn: connection purged");
    Ok(c)
}

/// Checks the consent of every connection of `participants` at `now` (after a Consent was
/// written or deleted) and withdraws those it no longer permits, at once rather than at their
/// next sync. Returns the connections withdrawn.
pub async fn enforce_consent(
    store: &Store,
    participants: &[&str],
    now: DateTime<Utc>,
) -> Result<Vec<CalendarConnection>, SyncError> {
    let mut withdrawn = Vec::new();
    for participant in participants {
        let connections = store.calendar_connections_of(participant).await?;
        if connections.iter().all(|c| c.state == "consent-withdrawn") {
            continue;
        }
        if let Decision::Refused(reason) = calendar_sync(&consents_of(store, participant).await?, participant, now) {
            for c in connections.into_iter().filter(|c| c.state != "consent-withdrawn") {
                withdrawn.push(withdraw(store, c, &reason, now).await?);
            }
        }
    }
    Ok(withdrawn)
}

fn succeeded(c: &mut CalendarConnection, settings: &SyncSettings, now: DateTime<Utc>) {
    c.state = "ok".into();
    c.reason = None;
    c.attempts = 0;
    c.last_success_ms = Some(now.timestamp_millis());
    c.next_run_ms = Some((now + settings.interval).timestamp_millis());
}

/// Consents naming the participant as patient or performer.
async fn consents_of(store: &Store, participant: &str) -> Result<Vec<Value>, SyncError> {
    let mut out = Vec::new();
    for param in ["patient", "performer"] {
        let search = ResourceSearch {
            index: vec![IndexFilter::any_exact(param, [participant.to_string()])],
            ..Default::default()
        };
        out.extend(store.find_resources("Consent", &search, 100).await?.into_iter().map(|r| r.content));
    }
    Ok(out)
}

/// Asks the connection's calendar. `secret` holds what the connection was sealed with
/// (`url`, `username`, `password`, `refresh_token`); a rotated refresh token is written back.
async fn fetch(
    settings: &SyncSettings,
    c: &CalendarConnection,
    secret: &mut Value,
    horizon: Interval,
) -> Result<Fetched, ConnectorError> {
    let text = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    let zone = chrono_tz::UTC;
    let busy = |busy: Vec<BusyInterval>| Fetched::Busy { busy, validator: Validator::default(), warnings: Vec::new() };
    match c.kind.as_str() {
        "ics" => {
            let previous: Option<Validator> =
                c.validator.as_deref().and_then(|v| serde_json::from_str::<Value>(v).ok()).map(|v| Validator {
                    etag: v["etag"].as_str().map(String::from),
                    last_modified: v["last_modified"].as_str().map(String::from),
                });
            settings.connectors.ics.fetch(&text(secret, "url"), previous.as_ref(), horizon, zone).await
        }
        "caldav" => {
            let account = CalDavAccount {
                url: text(secret, "url"),
                username: text(secret, "username"),
                password: text(secret, "password"),
            };
            Ok(busy(settings.connectors.caldav.busy(&account, horizon, zone).await?.0))
        }
        "google" | "microsoft" => {
            let mut credentials = Credentials { refresh_token: text(secret, "refresh_token"), access_token: None };
            let result = match (c.kind.as_str(), &settings.connectors.google, &settings.connectors.microsoft) {
                ("google", Some(g), _) => g.busy(&mut credentials, horizon).await,
                ("microsoft", _, Some(m)) => m.busy(&mut credentials, horizon).await,
                _ => Err(ConnectorError::Invalid(format!("{} is not configured on this server", c.kind))),
            };
            secret["refresh_token"] = json!(credentials.refresh_token);
            result.map(busy)
        }
        other => Err(ConnectorError::Invalid(format!("unknown connection kind {other:?}"))),
    }
}

/// Puts a sync of `c` on the audit trail: calsync read the participant's busy time, with their
/// consent. A trail that cannot be written is logged; the sync stands.
async fn audit_sync(store: &Store, c: &CalendarConnection, now: DateTime<Utc>) {
    use calsync_fhir::audit::{Action, Agent, Record, Result};
    let schedule = if c.schedule.contains('/') { c.schedule.clone() } else { format!("Schedule/{}", c.schedule) };
    let record = Record {
        action: Action::Update,
        subtype: "sync".into(),
        result: if c.state == "ok" { Result::Success } else { Result::Refused },
        agent: Agent { identity: ("urn:calsync".into(), "calendar sync".into()), ..Agent::default() },
        patients: vec![c.participant.clone()],
        what: vec![schedule],
        request: format!("sync-{}-{}", c.id, now.timestamp_millis()),
        recorded: now,
    };
    if let Err(e) = store.create("AuditEvent", calsync_fhir::audit::event(&record), now).await {
        tracing::error!(connection = %c.id, error = %e, "the sync could not be put on the audit trail");
    }
}

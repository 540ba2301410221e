//! `/connections`: participants' calendar connections (not FHIR resources: they hold sealed
//! credentials). Create one for an ICS feed or a CalDAV calendar, list a participant's with
//! their status, sync one now, delete one (its busy Slots go with it). Credentials are sealed
//! before they are stored and never returned. Google and Microsoft connect through OAuth
//! (`/connect/{provider}/start`, see [`crate::connect`]).

use actix_web::{HttpResponse, web};
use calsync_connect::caldav::CalDav;
use calsync_connect::egress::{Egress, Refused};
use calsync_connect::google::{GoogleCalendar, GoogleEndpoints};
use calsync_connect::ics::IcsFeed;
use calsync_connect::microsoft::{MicrosoftCalendar, MicrosoftEndpoints};
use calsync_connect::oauth::OAuthClient;
use calsync_connect::retry::Backoff;
use calsync_connect::secret::SecretKey;
use calsync_store::{CalendarConnection, Store, StoreError};
use calsync_sync::connection::{Connectors, ProviderLimits, SyncSettings, new_connection, source_of, sync_connection};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::outcome::ApiError;
use crate::{OAuthProvider, Settings};

/// Sync settings from the configuration: the secret key, and Google and Microsoft when their
/// OAuth clients are configured. `None` without a secret key (connections are then refused).
pub fn sync_settings(settings: &Settings) -> Result<Option<SyncSettings>, String> {
    let Some(key) = &settings.secret_key else { return Ok(None) };
    let key = SecretKey::from_base64(key).map_err(|e| format!("secret_key: {e}"))?;
    let timeout = std::time::Duration::from_secs(30);
    let url = |name: &str, text: &str| text.parse().map_err(|e| format!("{name}: {text:?} is not a URL: {e}"));
    let client = |p: &OAuthProvider| OAuthClient { id: p.client_id.clone(), secret: p.client_secret.clone() };
    let google = match &settings.google {
        Some(p) => Some(
            GoogleCalendar::new(
                GoogleEndpoints {
                    api: url("google.api_url", &p.api_url)?,
                    token: url("google.token_url", &p.token_url)?,
                },
                client(p),
                timeout,
            )
            .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let microsoft = match &settings.microsoft {
        Some(p) => Some(
            MicrosoftCalendar::new(
                MicrosoftEndpoints {
                    graph: url("microsoft.api_url", &p.api_url)?,
                    token: url("microsoft.token_url", &p.token_url)?,
                },
                client(p),
                timeout,
            )
            .map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    let egress = settings.egress.policy()?;
    let connectors = Connectors {
        ics: IcsFeed::new(timeout, egress.clone()).map_err(|e| e.to_string())?,
        caldav: CalDav::new(timeout, egress).map_err(|e| e.to_string())?,
        google,
        microsoft,
    };
    let sync = &settings.sync;
    Ok(Some(SyncSettings {
        key,
        connectors,
        horizon: TimeDelta::days(sync.horizon_days.max(1)),
        interval: TimeDelta::hours(sync.interval_hours.max(1)),
        backoff: Backoff::default(),
        limits: ProviderLimits::each(sync.limit_ics, sync.limit_caldav, sync.limit_google, sync.limit_microsoft),
    }))
}

/// Mounts the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/connections").route(web::post().to(create)).route(web::get().to(list)))
        .service(web::resource("/connections/$sync-all").route(web::post().to(sync_all)))
        .service(web::resource("/connections/{id}").route(web::get().to(read)).route(web::delete().to(delete)))
        .service(web::resource("/connections/{id}/$sync").route(web::post().to(sync_now)));
}

pub(crate) type Sync = web::Data<Option<SyncSettings>>;

/// The job queue (present whenever [`Sync`] is).
pub(crate) type Jobs = web::Data<Option<tokio::sync::Mutex<calsync_worker::Queue>>>;

pub(crate) fn configured(sync: &Sync) -> Result<&SyncSettings, ApiError> {
    sync.as_ref().as_ref().ok_or_else(|| {
        ApiError::Unavailable("calendar connections need a secret_key in the server's configuration".into())
    })
}

/// An instant in UTC milliseconds as FHIR instant text (null when none).
pub(crate) fn instant(ms: Option<i64>) -> Value {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
        .map_or(Value::Null, |t| json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
}

/// What clients see of a connection: never its credentials or address beyond the host.
pub(crate) fn view(c: &CalendarConnection) -> Value {
    json!({"id": c.id, "participant": c.participant, "schedule": format!("Schedule/{}", c.schedule),
        "kind": c.kind, "host": c.host, "state": c.state, "reason": c.reason,
        "lastSuccess": instant(c.last_success_ms), "nextRun": instant(c.next_run_ms)})
}

fn text<'a>(body: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    body[name]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("{name} is required")))
}

async fn create(
    cx: RequestContext,
    store: web::Data<Store>,
    sync: Sync,
    egress: web::Data<Egress>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let settings = configured(&sync)?;
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))?;
    let participant = known_participant(&store, text(&body, "participant")?).await?;
    let kind = text(&body, "kind")?;
    let url = text(&body, "url")?;
    let secret = match kind {
        "ics" => json!({"url": url}),
        "caldav" => json!({"url": url, "username": text(&body, "username")?, "password": text(&body, "password")?}),
        "google" | "microsoft" => {
            return Err(ApiError::BadRequest(format!(
                "{kind} calendars connect through OAuth: send the participant's browser to /connect/{kind}/start?participant=..."
            )));
        }
        other => {
            return Err(ApiError::BadRequest(format!("kind {other:?} is not one of ics, caldav, google, microsoft")));
        }
    };
    let address = calsync_connect::ics::feed_url(url)
        .map_err(|_| ApiError::BadRequest("url must be an http(s) or webcal address".into()))?;
    egress.admit(&address).map_err(|refused| refused_address(&refused, "url"))?;
    let c = connect(&store, settings, &participant, kind, calsync_connect::host_of(&address), &secret, cx.now).await?;
    tracing::info!(connection = %c.id, kind = %c.kind, "calendar connected");
    Ok(HttpResponse::Created().insert_header(("Location", format!("{}/connections/{}", cx.base, c.id))).json(view(&c)))
}

/// 422 for an address the egress policy refuses, naming the field.
pub(crate) fn refused_address(refused: &Refused, field: &str) -> ApiError {
    ApiError::Unprocessable { message: refused.to_string(), expression: Some(field.into()) }
}

/// Creates and stores a new connection of `participant` to a calendar of `kind` at `host`;
/// `secret` (address, password or refresh token) is sealed. It is due at once.
pub(crate) async fn connect(
    store: &Store,
    settings: &SyncSettings,
    participant: &str,
    kind: &str,
    host: String,
    secret: &Value,
    now: DateTime<Utc>,
) -> Result<CalendarConnection, ApiError> {
    let schedule = crate::operation::derived_schedule(store, participant, now).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let c = new_connection(&settings.key, &id, participant, &schedule, kind, &host, secret, now);
    store.save_calendar_connection(&c).await?;
    Ok(c)
}

/// `Patient/1` or `RelatedPerson/2`, known to the store.
pub(crate) async fn known_participant(store: &Store, reference: &str) -> Result<String, ApiError> {
    let (t, id) = crate::operation::typed_reference(reference, &["Patient", "RelatedPerson"], "participant")?;
    match store.read(&t, &id).await {
        Ok(_) => Ok(format!("{t}/{id}")),
        Err(StoreError::NotFound(..) | StoreError::Gone(..)) => {
            Err(ApiError::BadRequest(format!("participant {t}/{id} is not known")))
        }
        Err(e) => Err(e.into()),
    }
}

async fn list(
    store: web::Data<Store>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let participant = query.get("participant").ok_or_else(|| ApiError::BadRequest("participant is required".into()))?;
    let (t, id) = crate::operation::typed_reference(participant, &["Patient", "RelatedPerson"], "participant")?;
    let found = store.calendar_connections_of(&format!("{t}/{id}")).await?;
    Ok(HttpResponse::Ok().json(json!({"connections": found.iter().map(view).collect::<Vec<_>>()})))
}

async fn one(store: &Store, id: &str) -> Result<CalendarConnection, ApiError> {
    match store.calendar_connection(id).await {
        Ok(c) => Ok(c),
        Err(StoreError::NotFound(..)) => Err(ApiError::NotFound(format!("connection {id} is not known"))),
        Err(e) => Err(e.into()),
    }
}

async fn read(store: web::Data<Store>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(view(&one(&store, &path).await?)))
}

async fn sync_now(
    cx: RequestContext,
    store: web::Data<Store>,
    sync: Sync,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let settings = configured(&sync)?;
    let id = one(&store, &path).await?.id;
    let c = sync_connection(&store, settings, &id, cx.now).await?;
    Ok(HttpResponse::Ok().json(view(&c)))
}

/// `POST /connections/$sync-all`: every connection that syncs by itself becomes due now and is
/// queued for the worker (what the nightly run does). 202 with how many were queued.
async fn sync_all(
    cx: RequestContext,
    store: web::Data<Store>,
    sync: Sync,
    jobs: Jobs,
) -> Result<HttpResponse, ApiError> {
    configured(&sync)?;
    let queue = jobs.as_ref().as_ref().ok_or_else(|| ApiError::Unavailable("the job queue is not open".into()))?;
    let queued = queue.lock().await.sync_all(&store, cx.now).await.map_err(|e| ApiError::Internal(e.to_string()))?;
    tracing::info!(connections = queued, "sync of every connection requested");
    Ok(HttpResponse::Accepted().json(json!({"queued": queued})))
}

async fn delete(
    cx: RequestContext,
    store: web::Data<Store>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = one(&store, &path).await?;
    let removed = calsync_sync::purge(&store, &c.schedule, &source_of(&c.id), cx.now).await?;
    store.delete_calendar_connection(&c.id).await?;
    tracing::info!(connection = %c.id, removed = removed.removed, "calendar disconnected");
    Ok(HttpResponse::NoContent().finish())
}

//! Connecting a Google or Microsoft calendar through OAuth 2.0 (authorization code with PKCE):
//!
//! - `GET /connect/{provider}/start?participant=Patient/1` remembers the authorization (its
//!   PKCE verifier sealed, for ten minutes) and redirects the browser to the provider's consent
//!   page, asking for the least scopes (free/busy only).
//! - `GET /connect/{provider}/callback?code&state` takes that authorization once, exchanges the
//!   code for a refresh token, and creates the connection (sealed, due at once). A browser gets
//!   a short page; other clients the connection as JSON (201).

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_connect::ConnectorError;
use calsync_connect::authorize::{Authorizer, Provider};
use calsync_store::{PendingAuthorization, Store};
use chrono::TimeDelta;
use serde_json::json;

use crate::connections::{Sync, configured, connect, known_participant, view};
use crate::context::RequestContext;
use crate::outcome::ApiError;
use crate::{OAuthProvider, Settings};

/// How long the participant has to consent.
const AUTHORIZATION_LIFETIME: TimeDelta = TimeDelta::minutes(10);

/// The configured OAuth providers, and the address their callbacks come back to.
#[derive(Debug, Clone, Default)]
pub struct Authorizers {
    google: Option<(Authorizer, String)>,
    microsoft: Option<(Authorizer, String)>,
    public_url: Option<String>,
}

impl Authorizers {
    /// From the configuration's `[google]`, `[microsoft]` and `public_url`.
    pub fn from_settings(settings: &Settings) -> Result<Self, String> {
        let build = |provider: Provider, p: &Option<OAuthProvider>| -> Result<Option<(Authorizer, String)>, String> {
            let Some(p) = p else { return Ok(None) };
            let client =
                calsync_connect::oauth::OAuthClient { id: p.client_id.clone(), secret: p.client_secret.clone() };
            let authorizer =
                Authorizer::new(provider, &client, &p.authorize_url, &p.token_url, std::time::Duration::from_secs(30))
                    .map_err(|e| format!("[{}] {e}", provider.name()))?;
            let host = calsync_connect::address_host(&p.api_url)
                .ok_or_else(|| format!("[{}] api_url {:?} is not an http(s) address", provider.name(), p.api_url))?;
            Ok(Some((authorizer, host)))
        };
        Ok(Self {
            google: build(Provider::Google, &settings.google)?,
            microsoft: build(Provider::Microsoft, &settings.microsoft)?,
            public_url: settings.public_url.as_ref().map(|u| u.trim_end_matches('/').to_string()),
        })
    }

    fn of(&self, name: &str) -> Result<&(Authorizer, String), ApiError> {
        let provider = Provider::from_name(name)
            .ok_or_else(|| ApiError::NotFound(format!("no calendar provider {name:?}: google or microsoft")))?;
        match provider {
            Provider::Google => self.google.as_ref(),
            Provider::Microsoft => self.microsoft.as_ref(),
        }
        .ok_or_else(|| ApiError::NotFound(format!("{name} calendars are not configured on this server")))
    }

    /// The host a configured provider's calendar API is on.
    pub fn api_host(&self, name: &str) -> Option<String> {
        self.of(name).ok().map(|(_, host)| host.clone())
    }

    fn redirect_uri(&self, cx: &RequestContext, provider: &str) -> String {
        format!("{}/connect/{provider}/callback", self.public_base(cx))
    }

    /// This server's address for people and other servers: `public_url`, else as addressed.
    pub(crate) fn public_base(&self, cx: &RequestContext) -> String {
        self.public_url.clone().unwrap_or_else(|| cx.base.clone())
    }
}

/// Mounts the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/connect/{provider}/start").route(web::get().to(start)))
        .service(web::resource("/connect/{provider}/callback").route(web::get().to(callback)));
}

type Query = web::Query<std::collections::HashMap<String, String>>;

async fn start(
    cx: RequestContext,
    store: web::Data<Store>,
    sync: Sync,
    authorizers: web::Data<Authorizers>,
    path: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let settings = configured(&sync)?;
    let (authorizer, _) = authorizers.of(&path)?;
    let participant = query.get("participant").ok_or_else(|| ApiError::BadRequest("participant is required".into()))?;
    let participant = known_participant(&store, participant).await?;
    let started =
        authorizer.start(&authorizers.redirect_uri(&cx, &path)).map_err(|e| ApiError::Internal(e.to_string()))?;
    let pending = PendingAuthorization {
        verifier: settings.key.seal(&started.verifier, &started.state),
        state: started.state.clone(),
        provider: path.to_string(),
        participant,
        expires_ms: (cx.now + AUTHORIZATION_LIFETIME).timestamp_millis(),
    };
    store.save_pending_authorization(&pending, cx.now).await?;
    tracing::info!(provider = %path, "authorization started");
    Ok(HttpResponse::Found()
        .insert_header(("Location", started.url))
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}

async fn callback(
    req: HttpRequest,
    cx: RequestContext,
    store: web::Data<Store>,
    sync: Sync,
    authorizers: web::Data<Authorizers>,
    path: web::Path<String>,
    query: Query,
) -> Result<HttpResponse, ApiError> {
    let settings = configured(&sync)?;
    let (authorizer, host) = authorizers.of(&path)?;
    let state = query.get("state").ok_or_else(|| ApiError::BadRequest("state is required".into()))?;
    let pending = store.take_pending_authorization(state, cx.now).await?;
    let pending = pending
        .filter(|p| p.provider == path.as_str())
        .ok_or_else(|| ApiError::BadRequest("this authorization is unknown, used or expired: start again".into()))?;
    if let Some(error) = query.get("error") {
        return Err(ApiError::BadRequest(format!("{path} did not authorize calsync ({error}): nothing was connected")));
    }
    let code = query.get("code").ok_or_else(|| ApiError::BadRequest("code is required".into()))?;
    let verifier = settings
        .key
        .open(&pending.verifier, &pending.state)
        .map_err(|_| ApiError::Conflict("the authorization cannot be opened with this server's key".into()))?;
    let refresh_token =
        authorizer.finish(&authorizers.redirect_uri(&cx, &path), code, &verifier).await.map_err(|e| match e {
            ConnectorError::Transient { reason, .. } => ApiError::Unavailable(reason),
            other => ApiError::BadRequest(other.to_string()),
        })?;
    let secret = json!({"refresh_token": refresh_token});
    let c = connect(&store, settings, &pending.participant, &path, host.clone(), &secret, cx.now).await?;
    tracing::info!(connection = %c.id, kind = %c.kind, "calendar connected");
    let wants_html =
        req.headers().get("Accept").and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        return Ok(HttpResponse::Ok().content_type("text/html; charset=utf-8").body(format!(
            "<!doctype html><meta charset=utf-8><title>Calendar connected</title>\
             <p>Your {} calendar is connected. calsync reads only when you are busy, never what your events are.\
             <p>You can close this page.",
            if c.kind == "google" { "Google" } else { "Outlook" }
        )));
    }
    Ok(HttpResponse::Created().insert_header(("Location", format!("{}/connections/{}", cx.base, c.id))).json(view(&c)))
}

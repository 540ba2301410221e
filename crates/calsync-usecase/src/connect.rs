//! Connecting a Google or Microsoft calendar through OAuth 2.0 (authorization code with PKCE):
//! [`UseCases::start_authorization`] remembers the authorization (its PKCE verifier sealed, for
//! ten minutes) and gives the provider's consent page, asking for the least scopes (free/busy
//! only); [`UseCases::finish_authorization`] takes that authorization once, exchanges the code
//! for a refresh token, and creates the connection (sealed, due at once).

use calsync_connect::ConnectorError;
use calsync_connect::authorize::{Authorizer, Provider};
use calsync_store::{CalendarConnection, PendingAuthorization};
use chrono::TimeDelta;
use serde_json::json;

use crate::access::Interaction;
use crate::{Context, Outcome, UseCaseError, UseCases, participants};

/// How long the participant has to consent.
const AUTHORIZATION_LIFETIME: TimeDelta = TimeDelta::minutes(10);

/// The configured OAuth providers (each with the host of its calendar API), and the address
/// their callbacks come back to.
#[derive(Debug, Clone, Default)]
pub struct Authorizers {
    google: Option<(Authorizer, String)>,
    microsoft: Option<(Authorizer, String)>,
    public_url: Option<String>,
}

impl Authorizers {
    /// Google's and Microsoft's authorizers, if configured, and this server's public address
    /// (`https://calsync.example.org`; none: as each caller reached it).
    pub fn new(
        google: Option<(Authorizer, String)>,
        microsoft: Option<(Authorizer, String)>,
        public_url: Option<String>,
    ) -> Self {
        Authorizers { google, microsoft, public_url: public_url.map(|u| u.trim_end_matches('/').to_string()) }
    }

    fn of(&self, name: &str) -> Outcome<&(Authorizer, String)> {
        let provider = Provider::from_name(name)
            .ok_or_else(|| UseCaseError::NotFound(format!("no calendar provider {name:?}: google or microsoft")))?;
        match provider {
            Provider::Google => self.google.as_ref(),
            Provider::Microsoft => self.microsoft.as_ref(),
        }
        .ok_or_else(|| UseCaseError::NotFound(format!("{name} calendars are not configured on this server")))
    }

    /// The host a configured provider's calendar API is on.
    pub fn api_host(&self, name: &str) -> Option<String> {
        self.of(name).ok().map(|(_, host)| host.clone())
    }

    fn redirect_uri(&self, cx: &Context, provider: &str) -> String {
        format!("{}/connect/{provider}/callback", self.public_base(cx))
    }

    /// This server's address for people and other servers: `public_url`, else as addressed.
    pub fn public_base(&self, cx: &Context) -> String {
        self.public_url.clone().unwrap_or_else(|| cx.base.clone())
    }
}

/// How the consent page comes back: the authorization's `state`, and the provider's `code` or
/// `error`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Callback {
    /// The state the authorization was started with.
    pub state: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
    /// The provider's error (the participant declined).
    pub error: Option<String>,
    /// The binding [`Started`] gave the browser that started the authorization (a cookie).
    pub binding: Option<String>,
}

/// An authorization started: where to send the participant's browser, and the binding that
/// browser must bring back (kept in a cookie), so that a consent page sent to someone else
/// cannot attach their calendar to the participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The provider's consent page.
    pub url: String,
    /// A random value only that browser holds.
    pub binding: String,
}

/// What the code verifier is sealed with: the state, and the browser's binding.
fn sealed_with(state: &str, binding: &str) -> String {
    format!("{state}\n{binding}")
}

impl UseCases {
    /// Starts connecting `participant`'s calendar at `provider` (`google`, `microsoft`): the
    /// address of the provider's consent page to send their browser to.
    pub async fn start_authorization(&self, cx: &Context, provider: &str, participant: &str) -> Outcome<Started> {
        let reach = self.authorize(cx, "Schedule", Interaction::Update).await?;
        let settings = self.sync_settings()?;
        let (authorizer, _) = self.authorizers.of(provider)?;
        let participant = participants::known_participant(&self.store, participant).await?;
        Self::permit_acting_for(&reach, &participant)?;
        let started = authorizer
            .start(&self.authorizers.redirect_uri(cx, provider))
            .map_err(|e| UseCaseError::Internal(e.to_string()))?;
        let binding = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let pending = PendingAuthorization {
            verifier: settings.key.seal(&started.verifier, &sealed_with(&started.state, &binding)),
            state: started.state.clone(),
            provider: provider.to_string(),
            participant,
            expires_ms: (cx.now + AUTHORIZATION_LIFETIME).timestamp_millis(),
        };
        self.store.save_pending_authorization(&pending, cx.now).await?;
        tracing::info!(provider = %provider, "authorization started");
        Ok(Started { url: started.url, binding })
    }

    /// The consent page came back: the authorization is taken (once), the code exchanged, and
    /// the calendar connected.
    pub async fn finish_authorization(
        &self,
        cx: &Context,
        provider: &str,
        back: &Callback,
    ) -> Outcome<CalendarConnection> {
        let settings = self.sync_settings()?;
        let (authorizer, host) = self.authorizers.of(provider)?;
        let state = back.state.as_deref().ok_or_else(|| UseCaseError::Invalid("state is required".into()))?;
        let pending = self.store.take_pending_authorization(state, cx.now).await?;
        let pending = pending.filter(|p| p.provider == provider).ok_or_else(|| {
            UseCaseError::Invalid("this authorization is unknown, used or expired: start again".into())
        })?;
        if let Some(error) = &back.error {
            return Err(UseCaseError::Invalid(format!(
                "{provider} did not authorize calsync ({error}): nothing was connected"
            )));
        }
        let code = back.code.as_deref().ok_or_else(|| UseCaseError::Invalid("code is required".into()))?;
        // Opens only with the binding of the browser that started it (and this server's key).
        let binding = back.binding.as_deref().unwrap_or_default();
        let verifier = settings.key.open(&pending.verifier, &sealed_with(&pending.state, binding)).map_err(|_| {
            UseCaseError::Invalid(
                "this authorization was started in another browser (or with another server key): nothing was \
                 connected; start again from the browser that will give consent"
                    .into(),
            )
        })?;
        let refresh_token = authorizer
            .finish(&self.authorizers.redirect_uri(cx, provider), code, &verifier)
            .await
            .map_err(|e| match e {
                ConnectorError::Transient { reason, .. } => UseCaseError::Unavailable(reason),
                other => UseCaseError::Invalid(other.to_string()),
            })?;
        let secret = json!({"refresh_token": refresh_token});
        let c = self.save_connection(cx, &pending.participant, provider, host.clone(), &secret).await?;
        tracing::info!(connection = %c.id, kind = %c.kind, "calendar connected");
        Ok(c)
    }
}

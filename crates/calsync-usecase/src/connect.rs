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
}

impl UseCases {
    /// Starts connecting `participant`'s calendar at `provider` (`google`, `microsoft`): the
    /// address of the provider's consent page to send their browser to.
    pub async fn start_authorization(&self, cx: &Context, provider: &str, participant: &str) -> Outcome<String> {
        self.permit(cx, "Schedule", Interaction::Update)?;
        let settings = self.sync_settings()?;
        let (authorizer, _) = self.authorizers.of(provider)?;
        let participant = participants::known_participant(&self.store, participant).await?;
        let started = authorizer
            .start(&self.authorizers.redirect_uri(cx, provider))
            .map_err(|e| UseCaseError::Internal(e.to_string()))?;
        let pending = PendingAuthorization {
            verifier: settings.key.seal(&started.verifier, &started.state),
            state: started.state.clone(),
            provider: provider.to_string(),
            participant,
            expires_ms: (cx.now + AUTHORIZATION_LIFETIME).timestamp_millis(),
        };
        self.store.save_pending_authorization(&pending, cx.now).await?;
        tracing::info!(provider = %provider, "authorization started");
        Ok(started.url)
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
        let verifier = settings
            .key
            .open(&pending.verifier, &pending.state)
            .map_err(|_| UseCaseError::Conflict("the authorization cannot be opened with this server's key".into()))?;
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

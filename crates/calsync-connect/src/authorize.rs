//! Connecting a Google or Microsoft calendar: the OAuth 2.0 authorization-code grant with PKCE
//! (S256), on the `oauth2` crate. [`Authorizer::start`] gives the address to send the
//! participant's browser to, with the least scopes calsync needs; [`Authorizer::finish`]
//! exchanges the code the provider sent back for a refresh token.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse, TokenUrl,
};

use crate::ConnectorError;
use crate::oauth::OAuthClient;

/// A calendar provider that connects through OAuth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Google Calendar.
    Google,
    /// Microsoft Graph (Outlook).
    Microsoft,
}

impl Provider {
    /// `google` or `microsoft` (a connection's kind, and the path segment of `/connect/…`).
    pub fn name(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Microsoft => "microsoft",
        }
    }

    /// The provider a name stands for.
    pub fn from_name(name: &str) -> Option<Provider> {
        match name {
            "google" => Some(Provider::Google),
            "microsoft" => Some(Provider::Microsoft),
            _ => None,
        }
    }

    /// The least scopes that read free/busy time: Google's `calendar.freebusy`; Graph's
    /// `Calendars.ReadBasic` (no subjects, bodies or attendees) with `offline_access` for a
    /// refresh token.
    pub fn scopes(self) -> &'static [&'static str] {
        match self {
            Provider::Google => &["https://www.googleapis.com/auth/calendar.freebusy"],
            Provider::Microsoft => &["offline_access", "Calendars.ReadBasic"],
        }
    }
}

/// Where to send the browser, and what the callback needs back.
#[derive(Clone)]
pub struct Started {
    /// The provider's consent page with every parameter.
    pub url: String,
    /// The OAuth `state`: random, single use, binds the callback to this start.
    pub state: String,
    /// The PKCE code verifier (a secret until the exchange: keep it sealed).
    pub verifier: String,
}

impl std::fmt::Debug for Started {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Started { .. }")
    }
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// The authorization-code grant for one provider.
#[derive(Clone)]
pub struct Authorizer {
    provider: Provider,
    client: Client,
    http: reqwest::Client,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").field("provider", &self.provider).finish_non_exhaustive()
    }
}

impl Authorizer {
    /// The grant at the provider's `authorize_url` and `token_url`, as `client`.
    pub fn new(
        provider: Provider,
        client: &OAuthClient,
        authorize_url: &str,
        token_url: &str,
        timeout: std::time::Duration,
    ) -> Result<Self, ConnectorError> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| ConnectorError::Invalid(format!("{what}: {e}"));
        let client = BasicClient::new(ClientId::new(client.id.clone()))
            .set_client_secret(ClientSecret::new(client.secret.clone()))
            .set_auth_uri(AuthUrl::new(authorize_url.to_string()).map_err(|e| invalid("authorize_url", &e))?)
            .set_token_uri(TokenUrl::new(token_url.to_string()).map_err(|e| invalid("token_url", &e))?)
            // Google and Microsoft both take the client's credentials in the form body.
            .set_auth_type(AuthType::RequestBody);
        // No redirects from the token endpoint (the oauth2 crate's advice against SSRF).
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| invalid("HTTP client", &e))?;
        Ok(Self { provider, client, http })
    }

    /// The provider this grant is for.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The consent page address for a callback at `redirect_uri`.
    pub fn start(&self, redirect_uri: &str) -> Result<Started, ConnectorError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| ConnectorError::Invalid(format!("redirect URI: {e}")))?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(CsrfToken::new_random)
            .set_redirect_uri(std::borrow::Cow::Owned(redirect))
            .add_scopes(self.provider.scopes().iter().map(|s| Scope::new(s.to_string())))
            .set_pkce_challenge(challenge);
        if self.provider == Provider::Google {
            // Without both, Google gives no refresh token after the first consent.
            request = request.add_extra_param("access_type", "offline").add_extra_param("prompt", "consent");
        }
        let (url, state) = request.url();
        Ok(Started { url: url.to_string(), state: state.secret().clone(), verifier: verifier.secret().clone() })
    }

    /// Exchanges `code` (sent to `redirect_uri`) and the start's `verifier` for a refresh token.
    pub async fn finish(&self, redirect_uri: &str, code: &str, verifier: &str) -> Result<String, ConnectorError> {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| ConnectorError::Invalid(format!("redirect URI: {e}")))?;
        let provider = self.provider.name();
        let token = self
            .client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_redirect_uri(std::borrow::Cow::Owned(redirect))
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_string()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => ConnectorError::Unauthorized(format!(
                    "{provider} refused the authorization code: {}",
                    r.error().as_ref()
                )),
                RequestTokenError::Request(_) => ConnectorError::Transient {
                    reason: format!("{provider}'s token endpoint could not be reached"),
                    retry_after: None,
                },
                RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
                    ConnectorError::Invalid(format!("{provider}'s token endpoint sent an answer that is not OAuth"))
                }
            })?;
        token.refresh_token().map(|t| t.secret().clone()).ok_or_else(|| {
            ConnectorError::Unauthorized(format!("{provider} granted no refresh token (offline access was not given)"))
        })
    }
}

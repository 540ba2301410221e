//! The OAuth 2.0 pieces Google and Microsoft share: the client calsync is registered as, a
//! connection's credentials, and the refresh grant.

use reqwest::Url;
use serde_json::Value;

use crate::{ConnectorError, host_of, retry, transport_error};

/// The OAuth client calsync is registered as.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    /// `client_id`.
    pub id: String,
    /// `client_secret` (never logged).
    pub secret: String,
}

/// A connection's credentials: the long-lived refresh token and, once fetched, an access token.
#[derive(Clone, Default)]
pub struct Credentials {
    /// Refresh token (kept sealed at rest by the caller; never logged).
    pub refresh_token: String,
    /// The current access token, if any.
    pub access_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

/// The refresh grant at `token_url`: the endpoint's JSON answer on success. `invalid_grant`
/// (revoked, expired, unused) and a refused client are [`ConnectorError::Unauthorized`], never to
/// be retried; 429 and 5xx are transient.
pub(crate) async fn refresh_grant(
    http: &reqwest::Client,
    token_url: &Url,
    client: &OAuthClient,
    refresh_token: &str,
    scope: Option<&str>,
    provider: &str,
) -> Result<Value, ConnectorError> {
    let host = host_of(token_url);
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client.id.as_str()),
        ("client_secret", client.secret.as_str()),
    ];
    form.extend(scope.map(|s| ("scope", s)));
    let response = http.post(token_url.clone()).form(&form).send().await.map_err(|e| transport_error(&e, &host))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return if body["access_token"].is_string() {
            Ok(body)
        } else {
            Err(ConnectorError::Invalid(format!("{host} sent no access_token")))
        };
    }
    match body["error"].as_str() {
        Some("invalid_grant" | "interaction_required" | "consent_required") => Err(ConnectorError::Unauthorized(
            format!("{provider} revoked or expired the grant: the participant must reconnect"),
        )),
        Some("invalid_client" | "unauthorized_client") => {
            Err(ConnectorError::Unauthorized(format!("{host} does not accept calsync's OAuth client")))
        }
        _ if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS => {
            Err(ConnectorError::Transient {
                reason: format!("{host} answered {status}"),
                retry_after: retry::retry_after(&headers),
            })
        }
        _ => Err(ConnectorError::Invalid(format!("{host} answered {status} to a token refresh"))),
    }
}

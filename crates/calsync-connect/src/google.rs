//! Google Calendar: `freeBusy` over the horizon in chunks of at most 90 days, with an access
//! token from the OAuth 2.0 refresh grant (least scope: `calendar.freebusy`). Only busy ranges
//! ever arrive: no titles, attendees or places.

use std::time::Duration;

use calsync_core::{BusyInterval, BusyStatus, Interval};
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Url;
use serde_json::{Value, json};

pub use crate::oauth::{Credentials, OAuthClient};
use crate::{ConnectorError, host_of, retry, transport_error};

/// The OAuth scope calsync asks Google for: free/busy only.
pub const SCOPE: &str = "https://www.googleapis.com/auth/calendar.freebusy";

/// The longest range one freeBusy request may span.
pub const MAX_CHUNK: TimeDelta = TimeDelta::days(90);

/// Where Google is: the real service, or an emulator.
#[derive(Debug, Clone)]
pub struct GoogleEndpoints {
    /// Calendar API base (`https://www.googleapis.com`).
    pub api: Url,
    /// OAuth token endpoint (`https://oauth2.googleapis.com/token`).
    pub token: Url,
}

/// Reads free/busy from Google Calendar.
#[derive(Debug, Clone)]
pub struct GoogleCalendar {
    client: reqwest::Client,
    endpoints: GoogleEndpoints,
    oauth: OAuthClient,
}

impl GoogleCalendar {
    /// A connector for `endpoints` as OAuth client `oauth`; each request gives up after `timeout`.
    pub fn new(endpoints: GoogleEndpoints, oauth: OAuthClient, timeout: Duration) -> Result<Self, ConnectorError> {
        let client = crate::http_client(timeout)?;
        Ok(GoogleCalendar { client, endpoints, oauth })
    }

    /// The primary calendar's busy ranges over `horizon`. Refreshes the access token when there
    /// is none or Google refuses it (once per call); a refused refresh grant (`invalid_grant`:
    /// revoked, expired, unused) is [`ConnectorError::Unauthorized`] and must not be retried.
    pub async fn busy(
        &self,
        credentials: &mut Credentials,
        horizon: Interval,
    ) -> Result<Vec<BusyInterval>, ConnectorError> {
        let mut busy = Vec::new();
        let mut refreshed = false;
        if credentials.access_token.is_none() {
            credentials.access_token = Some(self.refresh(&credentials.refresh_token).await?);
            refreshed = true;
        }
        let mut start = horizon.start;
        while start < horizon.end {
            let end = (start + MAX_CHUNK).min(horizon.end);
            let token = credentials.access_token.clone().unwrap_or_default();
            match self.free_busy(&token, Interval::new(start, end)).await {
                Ok(mut chunk) => {
                    busy.append(&mut chunk);
                    start = end;
                }
                Err(Refused::AccessToken) if !refreshed => {
                    credentials.access_token = Some(self.refresh(&credentials.refresh_token).await?);
                    refreshed = true;
                }
                Err(Refused::AccessToken) => {
                    return Err(ConnectorError::Unauthorized("Google refused a fresh access token".into()));
                }
                Err(Refused::Other(e)) => return Err(e),
            }
        }
        Ok(busy)
    }

    /// A new access token from the refresh grant.
    async fn refresh(&self, refresh_token: &str) -> Result<String, ConnectorError> {
        let body = crate::oauth::refresh_grant(
            &self.client,
            &self.endpoints.token,
            &self.oauth,
            refresh_token,
            None,
            "Google",
        )
        .await?;
        Ok(body["access_token"].as_str().unwrap_or_default().to_string())
    }

    async fn free_busy(&self, access_token: &str, range: Interval) -> Result<Vec<BusyInterval>, Refused> {
        let url =
            self.endpoints.api.join("calendar/v3/freeBusy").map_err(|_| {
                Refused::Other(ConnectorError::Invalid("the Google API address cannot take a path".into()))
            })?;
        let host = host_of(&url);
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let request = json!({"timeMin": stamp(range.start), "timeMax": stamp(range.end), "timeZone": "UTC",
            "items": [{"id": "primary"}]});
        let response = self
            .client
            .post(url)
            .bearer_auth(access_token)
            .json(&request)
            .send()
            .await
            .map_err(|e| Refused::Other(transport_error(&e, &host)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let reason = body["error"]["errors"][0]["reason"].as_str().unwrap_or_default().to_string();
        if !status.is_success() {
            let said = format!("{host} answered {status} {reason}");
            return Err(match status.as_u16() {
                401 => Refused::AccessToken,
                403 if matches!(reason.as_str(), "rateLimitExceeded" | "userRateLimitExceeded") => {
                    Refused::Other(ConnectorError::Transient {
                        reason: said,
                        retry_after: retry::retry_after(&headers),
                    })
                }
                403 => Refused::Other(ConnectorError::Unauthorized(said)),
                404 | 410 => Refused::Other(ConnectorError::Gone(said)),
                429 | 500..=599 => Refused::Other(ConnectorError::Transient {
                    reason: said,
                    retry_after: retry::retry_after(&headers),
                }),
                _ => Refused::Other(ConnectorError::Invalid(said)),
            });
        }
        let calendar = &body["calendars"]["primary"];
        if let Some(e) = calendar["errors"].as_array().and_then(|e| e.first()) {
            let reason = e["reason"].as_str().unwrap_or("unknown");
            return Err(Refused::Other(match reason {
                "notFound" => ConnectorError::Gone(format!("{host}: the primary calendar is not found")),
                _ => {
                    ConnectorError::Transient { reason: format!("{host}: calendar error {reason}"), retry_after: None }
                }
            }));
        }
        let at = |v: &Value| v.as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc());
        calendar["busy"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| match (at(&b["start"]), at(&b["end"])) {
                (Some(start), Some(end)) => {
                    Ok(BusyInterval { interval: Interval::new(start, end), status: BusyStatus::Busy })
                }
                _ => Err(Refused::Other(ConnectorError::Invalid(format!("{host} sent a busy range without times")))),
            })
            .collect()
    }
}

/// Why one freeBusy request failed.
enum Refused {
    /// 401: the access token is not (or no longer) accepted.
    AccessToken,
    /// Anything else.
    Other(ConnectorError),
}

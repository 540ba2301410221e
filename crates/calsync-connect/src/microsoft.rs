//! Microsoft Graph (Outlook): `calendarView` over the horizon with
//! `$select=showAs,start,end,isAllDay,isCancelled` (never subjects) and
//! `Prefer: outlook.timezone="UTC"`, following `@odata.nextLink`. busy, oof and tentative block;
//! free, workingElsewhere and unknown do not. Every token refresh returns a new refresh token,
//! which replaces the stored one (the caller persists [`Credentials`] after each call).

use std::time::Duration;

use calsync_core::{BusyInterval, BusyStatus, Interval};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use reqwest::Url;
use serde_json::Value;

pub use crate::oauth::{Credentials, OAuthClient};
use crate::{ConnectorError, host_of, retry, transport_error};

/// The OAuth scopes calsync asks Microsoft for.
pub const SCOPES: &str = "offline_access Calendars.ReadBasic";

/// The fields calsync reads of an event: no subject, body, attendees or location.
pub const SELECT: &str = "showAs,start,end,isAllDay,isCancelled";

/// Where Microsoft is: the real service, or an emulator.
#[derive(Debug, Clone)]
pub struct MicrosoftEndpoints {
    /// Graph base (`https://graph.microsoft.com/`).
    pub graph: Url,
    /// OAuth v2.0 token endpoint (`https://login.microsoftonline.com/common/oauth2/v2.0/token`).
    pub token: Url,
}

/// Reads busy time from Outlook calendars through Microsoft Graph.
#[derive(Debug, Clone)]
pub struct MicrosoftCalendar {
    client: reqwest::Client,
    endpoints: MicrosoftEndpoints,
    oauth: OAuthClient,
}

/// Pages followed at most in one call (999 events each).
const MAX_PAGES: usize = 1000;

impl MicrosoftCalendar {
    /// A connector for `endpoints` as OAuth client `oauth`; each request gives up after `timeout`.
    pub fn new(endpoints: MicrosoftEndpoints, oauth: OAuthClient, timeout: Duration) -> Result<Self, ConnectorError> {
        let client = crate::http_client(timeout)?;
        Ok(MicrosoftCalendar { client, endpoints, oauth })
    }

    /// The busy windows of the signed-in user's calendar over `horizon`. Refreshes the access
    /// token when there is none or Graph refuses it (once per call).
    pub async fn busy(
        &self,
        credentials: &mut Credentials,
        horizon: Interval,
    ) -> Result<Vec<BusyInterval>, ConnectorError> {
        let mut refreshed = false;
        if credentials.access_token.is_none() {
            self.refresh(credentials).await?;
            refreshed = true;
        }
        let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut first = self
            .endpoints
            .graph
            .join("v1.0/me/calendarView")
            .map_err(|_| ConnectorError::Invalid("the Graph address cannot take a path".into()))?;
        first
            .query_pairs_mut()
            .append_pair("startDateTime", &stamp(horizon.start))
            .append_pair("endDateTime", &stamp(horizon.end))
            .append_pair("$select", SELECT)
            .append_pair("$top", "999");
        let mut busy = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(ConnectorError::Invalid("Graph kept sending pages".into()));
            }
            let token = credentials.access_token.clone().unwrap_or_default();
            match self.page(&url, &token).await {
                Ok((mut windows, link)) => {
                    busy.append(&mut windows);
                    next = link;
                }
                Err(None) if !refreshed => {
                    self.refresh(credentials).await?;
                    refreshed = true;
                    next = Some(url);
                }
                Err(None) => return Err(ConnectorError::Unauthorized("Graph refused a fresh access token".into())),
                Err(Some(e)) => return Err(e),
            }
        }
        Ok(busy)
    }

    /// Refreshes the access token; the new refresh token replaces the used one.
    async fn refresh(&self, credentials: &mut Credentials) -> Result<(), ConnectorError> {
        let body = crate::oauth::refresh_grant(
            &self.client,
            &self.endpoints.token,
            &self.oauth,
            &credentials.refresh_token,
            Some(SCOPES),
            "Microsoft",
        )
        .await?;
        credentials.access_token = body["access_token"].as_str().map(String::from);
        if let Some(rotated) = body["refresh_token"].as_str() {
            credentials.refresh_token = rotated.to_string();
        }
        Ok(())
    }

    /// One page: its busy windows and the next page's address. `Err(None)`: the access token
    /// was refused.
    async fn page(&self, url: &Url, token: &str) -> Result<(Vec<BusyInterval>, Option<Url>), Option<ConnectorError>> {
        let host = host_of(url);
        let response = self
            .client
            .get(url.clone())
            .bearer_auth(token)
            .header("Prefer", "outlook.timezone=\"UTC\"")
            .send()
            .await
            .map_err(|e| Some(transport_error(&e, &host)))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let said = format!("{host} answered {status} {}", body["error"]["code"].as_str().unwrap_or_default());
            return Err(match status.as_u16() {
                401 => None,
                403 => Some(ConnectorError::Unauthorized(said)),
                404 | 410 => Some(ConnectorError::Gone(said)),
                429 | 500..=599 => {
                    Some(ConnectorError::Transient { reason: said, retry_after: retry::retry_after(&headers) })
                }
                _ => Some(ConnectorError::Invalid(said)),
            });
        }
        let mut windows = Vec::new();
        for event in body["value"].as_array().into_iter().flatten() {
            if event["isCancelled"].as_bool() == Some(true) {
                continue;
            }
            let status = match event["showAs"].as_str() {
                Some("busy") => BusyStatus::Busy,
                Some("oof") => BusyStatus::BusyUnavailable,
                Some("tentative") => BusyStatus::BusyTentative,
                _ => continue,
            };
            let (Some(start), Some(end)) = (graph_time(&event["start"]), graph_time(&event["end"])) else {
                return Err(Some(ConnectorError::Invalid(format!("{host} sent an event without readable times"))));
            };
            windows.push(BusyInterval { interval: Interval::new(start, end), status });
        }
        let next = match body["@odata.nextLink"].as_str() {
            Some(link) => Some(
                Url::parse(link).map_err(|_| Some(ConnectorError::Invalid(format!("{host} sent a bad nextLink"))))?,
            ),
            None => None,
        };
        Ok((windows, next))
    }
}

/// A Graph `dateTimeTimeZone`: UTC as asked, or a named zone (IANA or Windows) if the server
/// ignored the preference.
fn graph_time(v: &Value) -> Option<DateTime<Utc>> {
    let local = NaiveDateTime::parse_from_str(v["dateTime"].as_str()?, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let zone = v["timeZone"].as_str().unwrap_or("UTC");
    if zone.eq_ignore_ascii_case("UTC") {
        return Some(local.and_utc());
    }
    let tz = calsync_ical::tz::iana(zone).or_else(|| calsync_ical::tz::windows(zone))?;
    tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn graph_times_in_utc_iana_and_windows_zones() {
        let utc = json!({"dateTime": "2026-03-15T12:00:00.0000000", "timeZone": "UTC"});
        assert_eq!(graph_time(&utc), Some(Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0).unwrap()));
        let pacific = json!({"dateTime": "2026-03-15T05:00:00.0000000", "timeZone": "Pacific Standard Time"});
        assert_eq!(
            graph_time(&pacific),
            Some(Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0).unwrap()),
            "PDT after 8 March"
        );
        let berlin = json!({"dateTime": "2026-03-15T13:00:00", "timeZone": "Europe/Berlin"});
        assert_eq!(graph_time(&berlin), Some(Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0).unwrap()));
        assert_eq!(graph_time(&json!({"dateTime": "yesterday", "timeZone": "UTC"})), None);
    }
}

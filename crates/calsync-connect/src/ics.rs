//! ICS feeds (a subscription URL, `webcal://` or `https://`): a conditional GET (`ETag`,
//! `Last-Modified`), then the core's iCalendar engine turns the feed into busy windows.

use std::time::Duration;

use calsync_core::Interval;
use chrono_tz::Tz;
use reqwest::header;

use crate::egress::{Egress, EgressClient};
use crate::{ConnectorError, Fetched, Validator, host_of, status_error, transport_error};

/// Reads ICS feeds over HTTP.
#[derive(Debug, Clone)]
pub struct IcsFeed {
    client: EgressClient,
}

impl IcsFeed {
    /// A reader whose every request gives up after `timeout`, reaching only what `egress` permits.
    pub fn new(timeout: Duration, egress: Egress) -> Result<IcsFeed, ConnectorError> {
        let client = crate::egress_client(timeout, egress)?;
        Ok(IcsFeed { client })
    }

    /// The busy windows of the feed at `url` over `horizon`, dates and floating times read in
    /// `zone`; [`Fetched::NotModified`] when `previous` still holds.
    pub async fn fetch(
        &self,
        url: &str,
        previous: Option<&Validator>,
        horizon: Interval,
        zone: Tz,
    ) -> Result<Fetched, ConnectorError> {
        let url = feed_url(url)?;
        let host = host_of(&url);
        let mut request = self
            .client
            .get(url)
            .map_err(|r| ConnectorError::from(&r))?
            .header(header::ACCEPT, "text/calendar, */*;q=0.5");
        if let Some(v) = previous {
            if let Some(etag) = &v.etag {
                request = request.header(header::IF_NONE_MATCH, etag);
            }
            if let Some(modified) = &v.last_modified {
                request = request.header(header::IF_MODIFIED_SINCE, modified);
            }
        }
        let response = request.send().await.map_err(|e| transport_error(&e, &host))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified);
        }
        if !status.is_success() {
            return Err(status_error(status, response.headers(), &host));
        }
        let text =
            |name: header::HeaderName| response.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
        let validator = Validator { etag: text(header::ETAG), last_modified: text(header::LAST_MODIFIED) };
        let body = crate::calendar_text(response, &host).await?;
        let (busy, warnings) = crate::read_calendars(vec![body], horizon, zone, format!("the feed at {host}")).await?;
        Ok(Fetched::Busy { busy, validator, warnings: warnings.iter().map(ToString::to_string).collect() })
    }
}

/// `webcal://` is how calendar apps spell an `https://` subscription.
pub fn feed_url(url: &str) -> Result<reqwest::Url, ConnectorError> {
    let rewritten = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("webcal") || scheme.eq_ignore_ascii_case("webcals") => {
            format!("https://{rest}")
        }
        _ => url.to_string(),
    };
    let parsed =
        reqwest::Url::parse(&rewritten).map_err(|_| ConnectorError::Invalid("the feed address is not a URL".into()))?;
    match parsed.scheme() {
        "http" | "https" => Ok(parsed),
        other => Err(ConnectorError::Invalid(format!("feeds are read over http(s), not {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webcal_means_https_and_other_schemes_are_refused() {
        assert_eq!(feed_url("webcal://example.org/cal.ics?t=1").unwrap().as_str(), "https://example.org/cal.ics?t=1");
        assert_eq!(feed_url("http://127.0.0.1:9/x.ics").unwrap().scheme(), "http");
        assert!(matches!(feed_url("file:///etc/passwd"), Err(ConnectorError::Invalid(_))));
        assert!(matches!(feed_url("not a url"), Err(ConnectorError::Invalid(_))));
    }
}

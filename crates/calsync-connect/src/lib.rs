//! The connectors of calsync: the only crate that talks to participants' external calendars.
//!
//! A connector fetches one connection's busy windows over a horizon and nothing else: start,
//! end and status. What it fetched is classified so the sync worker knows what to do next:
//! - new busy windows (apply them);
//! - nothing changed (keep what is stored);
//! - a transient failure (retry later, honouring `Retry-After`; see [`retry`]);
//! - lost authorization (needs reconnect);
//! - a calendar that is gone;
//! - an unreadable calendar (report it; the previous busy data stays);
//! - an address the server may not reach ([`egress`]: not public, and not allowed).
//!
//! Connectors get a base URL and credentials only: they cannot tell a real provider from the
//! emulators the tests run. Feed URLs often carry secret tokens, so errors name the host only.

pub mod authorize;
pub mod caldav;
pub mod egress;
pub mod google;
pub mod ics;
pub mod microsoft;
pub mod oauth;
pub mod retry;
pub mod secret;

use std::time::Duration;

use calsync_core::{BusyInterval, Interval};
use chrono_tz::Tz;

/// What a server said about the version of a calendar, for the next conditional request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validator {
    /// `ETag`.
    pub etag: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<String>,
}

/// A successful fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The busy windows over the horizon, and how to ask for changes next time.
    Busy {
        /// Busy windows (start, end, status).
        busy: Vec<BusyInterval>,
        /// For the next conditional request.
        validator: Validator,
        /// What was read inexactly (an unknown zone, a rule cut short), for the connection's
        /// status; never event content.
        warnings: Vec<String>,
    },
    /// Nothing changed since the validator given.
    NotModified,
}

/// Why a fetch failed, and so what the worker does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Try again later: a timeout, a refused connection, 429 or 5xx. `retry_after` is what the
    /// server asked for, if anything.
    #[error("temporarily unavailable: {reason}")]
    Transient {
        /// Human-readable, without secrets.
        reason: String,
        /// `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// The credentials are refused (401, 403): the connection needs reconnecting.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// The calendar is gone (404, 410).
    #[error("calendar not found: {0}")]
    Gone(String),
    /// The answer cannot be read as a calendar; the previous busy data must stay.
    #[error("unreadable calendar: {0}")]
    Invalid(String),
    /// The calendar's address is not one this server reaches ([`egress::Egress`]); the previous
    /// busy data stays.
    #[error("address refused: {0}")]
    Refused(String),
}

/// How every connector's HTTP client is built: a timeout per request (and for connecting) and
/// calsync's user agent.
pub(crate) fn http_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("calsync/", env!("CARGO_PKG_VERSION")))
}

/// The HTTP client of a connector whose addresses the server's configuration gives (Google,
/// Microsoft).
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, ConnectorError> {
    http_builder(timeout).build().map_err(cannot_build)
}

/// The HTTP client of a connector whose addresses participants give (ICS, CalDAV): it reaches
/// only what `egress` permits.
pub(crate) fn egress_client(timeout: Duration, egress: egress::Egress) -> Result<egress::EgressClient, ConnectorError> {
    egress::EgressClient::new(http_builder(timeout), egress).map_err(cannot_build)
}

fn cannot_build(e: reqwest::Error) -> ConnectorError {
    ConnectorError::Invalid(format!("cannot build an HTTP client: {e}"))
}

/// The host of a calendar address (`https://`, `http://` or `webcal://`), the part of it that
/// may be shown and stored in the clear; `None` when it is not such an address.
pub fn address_host(address: &str) -> Option<String> {
    ics::feed_url(address).ok().map(|u| host_of(&u))
}

/// `host[:port]` of a URL, for messages that must not carry tokens in paths or queries.
pub fn host_of(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => "the calendar server".to_string(),
    }
}

impl From<&egress::Refused> for ConnectorError {
    fn from(refused: &egress::Refused) -> ConnectorError {
        ConnectorError::Refused(refused.to_string())
    }
}

/// Classifies an HTTP status that is not a success.
pub(crate) fn status_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    host: &str,
) -> ConnectorError {
    use reqwest::StatusCode as S;
    match status {
        S::UNAUTHORIZED | S::FORBIDDEN => ConnectorError::Unauthorized(format!("{host} answered {status}")),
        S::NOT_FOUND | S::GONE => ConnectorError::Gone(format!("{host} answered {status}")),
        S::TOO_MANY_REQUESTS | S::REQUEST_TIMEOUT => ConnectorError::Transient {
            reason: format!("{host} answered {status}"),
            retry_after: retry::retry_after(headers),
        },
        s if s.is_server_error() => ConnectorError::Transient {
            reason: format!("{host} answered {status}"),
            retry_after: retry::retry_after(headers),
        },
        s => ConnectorError::Invalid(format!("{host} answered {s}")),
    }
}

/// A calendar's answer (an ICS feed, a CalDAV report) larger than this is refused as unreadable,
/// not read into memory: the iCalendar engine's limit.
pub const MAX_CALENDAR_BYTES: usize = calsync_ical::budget::MAX_BYTES;

/// The text of `response` from `host`, at most [`MAX_CALENDAR_BYTES`] of UTF-8.
pub(crate) async fn calendar_text(mut response: reqwest::Response, host: &str) -> Result<String, ConnectorError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| transport_error(&e, host))? {
        if body.len() + chunk.len() > MAX_CALENDAR_BYTES {
            return Err(ConnectorError::Invalid(format!(
                "the answer of {host} is larger than {MAX_CALENDAR_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| ConnectorError::Invalid(format!("the answer of {host} is not UTF-8 text")))
}

/// The busy windows of one person's calendars (`texts`) over `horizon`, read on a blocking
/// thread: expansion is CPU work (bounded by [`calsync_ical::budget`]) that must not hold up the
/// async workers. `what` says what was sent, for the error.
pub(crate) async fn read_calendars(
    texts: Vec<String>,
    horizon: Interval,
    zone: Tz,
    what: String,
) -> Result<(Vec<BusyInterval>, Vec<calsync_ical::Warning>), ConnectorError> {
    let read = tokio::task::spawn_blocking(move || {
        calsync_ical::busy_intervals_of(texts.iter().map(String::as_str), horizon, zone)
    })
    .await
    .map_err(|_| ConnectorError::Invalid(format!("{what} could not be read")))?;
    read.map_err(|e| ConnectorError::Invalid(format!("{what} cannot be read: {e}")))
}

/// Classifies a failure to get an answer at all.
pub(crate) fn transport_error(e: &reqwest::Error, host: &str) -> ConnectorError {
    if let Some(refused) = egress::Refused::in_chain(e) {
        return refused.into();
    }
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "refused the connection"
    } else {
        "broke off the answer"
    };
    ConnectorError::Transient { reason: format!("{host} {what}"), retry_after: None }
}

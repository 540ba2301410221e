//! CalDAV (RFC 4791: iCloud, Fastmail, Nextcloud, Radicale): a `free-busy-query` REPORT on the
//! calendar collection; when the server refuses it, a `calendar-query` REPORT for the events in
//! the range, expanded by the core's iCalendar engine. Either way only busy time is kept.

use std::time::Duration;

use calsync_core::{BusyInterval, Interval};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use reqwest::{Method, Url};

use crate::egress::{Egress, EgressClient};
use crate::{ConnectorError, host_of, status_error, transport_error};

/// A calendar collection and who may read it.
#[derive(Clone)]
pub struct CalDavAccount {
    /// The calendar collection (`https://caldav.example.org/user/calendar/`).
    pub url: String,
    /// User name.
    pub username: String,
    /// Password or app password (kept encrypted at rest by the caller; never logged).
    pub password: String,
}

impl std::fmt::Debug for CalDavAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CalDavAccount { .. }")
    }
}

/// Which REPORT answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// `free-busy-query`: the server computed the busy time.
    FreeBusy,
    /// `calendar-query`: calsync expanded the events.
    CalendarQuery,
}

/// Reads busy time from CalDAV servers.
#[derive(Debug, Clone)]
pub struct CalDav {
    client: EgressClient,
}

impl CalDav {
    /// A reader whose every request gives up after `timeout`, reaching only what `egress` permits.
    pub fn new(timeout: Duration, egress: Egress) -> Result<CalDav, ConnectorError> {
        let client = crate::egress_client(timeout, egress)?;
        Ok(CalDav { client })
    }

    /// The busy windows of the collection over `horizon` (floating times and dates in `zone`),
    /// and which REPORT gave them.
    pub async fn busy(
        &self,
        account: &CalDavAccount,
        horizon: Interval,
        zone: Tz,
    ) -> Result<(Vec<BusyInterval>, Answered), ConnectorError> {
        match self.free_busy(account, horizon, zone).await? {
            Some(busy) => Ok((busy, Answered::FreeBusy)),
            None => Ok((self.calendar_query(account, horizon, zone).await?, Answered::CalendarQuery)),
        }
    }

    /// The server's own free/busy answer; `None` when it does not support the REPORT.
    pub async fn free_busy(
        &self,
        account: &CalDavAccount,
        horizon: Interval,
        zone: Tz,
    ) -> Result<Option<Vec<BusyInterval>>, ConnectorError> {
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav"><C:time-range start="{}" end="{}"/></C:free-busy-query>"#,
            stamp(horizon.start),
            stamp(horizon.end)
        );
        let (status, content_type, text, host) = self.report(account, "1", body).await?;
        if matches!(status.as_u16(), 400 | 403 | 405 | 415 | 422 | 501)
            || (status.is_success() && !content_type.contains("text/calendar"))
        {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(status, &reqwest::header::HeaderMap::new(), &host));
        }
        let (busy, _) = crate::read_calendars(vec![text], horizon, zone, format!("the free/busy {host} sent")).await?;
        Ok(Some(busy))
    }

    /// The events in the range, expanded here.
    pub async fn calendar_query(
        &self,
        account: &CalDavAccount,
        horizon: Interval,
        zone: Tz,
    ) -> Result<Vec<BusyInterval>, ConnectorError> {
        let body = format!(
            r#"<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="{}" end="{}"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"#,
            stamp(horizon.start),
            stamp(horizon.end)
        );
        let (status, _, text, host) = self.report(account, "1", body).await?;
        if !status.is_success() {
            return Err(status_error(status, &reqwest::header::HeaderMap::new(), &host));
        }
        let calendars = calendar_data(&text)
            .map_err(|e| ConnectorError::Invalid(format!("{host} sent a multistatus that cannot be read: {e}")))?;
        let (busy, _) = crate::read_calendars(calendars, horizon, zone, format!("the events {host} sent")).await?;
        Ok(busy)
    }

    async fn report(
        &self,
        account: &CalDavAccount,
        depth: &str,
        body: String,
    ) -> Result<(reqwest::StatusCode, String, String, String), ConnectorError> {
        let url =
            Url::parse(&account.url).map_err(|_| ConnectorError::Invalid("the CalDAV address is not a URL".into()))?;
        let host = host_of(&url);
        let method = Method::from_bytes(b"REPORT").expect("REPORT is a method");
        let response = self
            .client
            .request(method, url)
            .map_err(|r| ConnectorError::from(&r))?
            .basic_auth(&account.username, Some(&account.password))
            .header("Depth", depth)
            .header(reqwest::header::CONTENT_TYPE, "application/xml; charset=utf-8")
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(&e, &host))?;
        let status = response.status();
        if matches!(status.as_u16(), 401 | 404 | 410 | 429) || status.is_server_error() && status.as_u16() != 501 {
            return Err(status_error(status, response.headers(), &host));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let text = crate::calendar_text(response, &host).await?;
        Ok((status, content_type, text, host))
    }
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// The text of every `calendar-data` element of a multistatus answer, whatever its prefix.
fn calendar_data(xml: &str) -> Result<Vec<String>, String> {
    use quick_xml::Reader;
    use quick_xml::events::Event;
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(e) if e.local_name().as_ref() == b"calendar-data" => current = Some(String::new()),
            Event::Text(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(&t.unescape().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(&String::from_utf8_lossy(&t.into_inner()));
                }
            }
            Event::End(e) if e.local_name().as_ref() == b"calendar-data" => out.extend(current.take()),
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_data_is_found_under_any_prefix_escaped_or_in_cdata() {
        let xml = r#"<?xml version="1.0"?><multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<response><href>/a.ics</href><propstat><prop><C:calendar-data>BEGIN:VCALENDAR&#13;
X:a&amp;b
END:VCALENDAR</C:calendar-data></prop></propstat></response>
<response><href>/b.ics</href><propstat><prop><cal:calendar-data xmlns:cal="urn:ietf:params:xml:ns:caldav"><![CDATA[BEGIN:VCALENDAR
END:VCALENDAR]]></cal:calendar-data></prop></propstat></response></multistatus>"#;
        let found = calendar_data(xml).unwrap();
        assert_eq!(found.len(), 2);
        assert!(found[0].contains("X:a&b"));
        assert!(found[1].starts_with("BEGIN:VCALENDAR"));
        assert!(calendar_data("<a><b></a>").is_err());
    }
}

//! Writing iCalendar: the confirmation of a booked appointment (RFC 5545, METHOD:PUBLISH).
//!
//! An invitation carries time, place and provider only: no participant names, no notes.
//! Lines are folded at 75 octets (on character boundaries) and text values escaped.

use chrono::{DateTime, Utc};

/// Where an appointment stands, as iCalendar's STATUS says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Booked.
    Confirmed,
    /// Held or proposed.
    Tentative,
    /// Cancelled.
    Cancelled,
}

/// One appointment as a calendar event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Globally unique and stable across updates (`{id}@{host}`).
    pub uid: String,
    /// Goes up with each change so calendars replace the older copy.
    pub sequence: i64,
    /// When this version was written.
    pub stamp: DateTime<Utc>,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// Status.
    pub status: InvitationStatus,
    /// The title (e.g. "Appointment with Dr. Okafor").
    pub summary: String,
    /// The place, if known.
    pub location: Option<String>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A TEXT value with `\`, `;`, `,` and line breaks escaped (RFC 5545 §3.3.11).
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A content line folded to at most 75 octets per physical line, ending in CRLF.
fn folded(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

impl Invitation {
    /// The VCALENDAR text.
    pub fn to_ics(&self) -> String {
        let status = match self.status {
            InvitationStatus::Confirmed => "CONFIRMED",
            InvitationStatus::Tentative => "TENTATIVE",
            InvitationStatus::Cancelled => "CANCELLED",
        };
        let mut lines = vec![
            "BEGIN:VCALENDAR".to_string(),
            "VERSION:2.0".into(),
            "PRODID:-//calsync//appointment confirmation//EN".into(),
            "CALSCALE:GREGORIAN".into(),
            format!("METHOD:{}", if self.status == InvitationStatus::Cancelled { "CANCEL" } else { "PUBLISH" }),
            "BEGIN:VEVENT".into(),
            format!("UID:{}", escaped(&self.uid)),
            format!("SEQUENCE:{}", self.sequence.max(0)),
            format!("DTSTAMP:{}", utc(self.stamp)),
            format!("DTSTART:{}", utc(self.start)),
            format!("DTEND:{}", utc(self.end)),
            format!("STATUS:{status}"),
            format!("SUMMARY:{}", escaped(&self.summary)),
        ];
        if let Some(place) = &self.location {
            lines.push(format!("LOCATION:{}", escaped(place)));
        }
        lines.push("TRANSP:OPAQUE".into());
        lines.push("END:VEVENT".into());
        lines.push("END:VCALENDAR".into());
        let mut out = String::new();
        for line in &lines {
            folded(line, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Calendar, EventStatus};
    use calsync_core::Interval;
    use chrono::TimeZone;

    fn invitation(status: InvitationStatus) -> Invitation {
        Invitation {
            uid: "a1@calsync".into(),
            sequence: 2,
            stamp: Utc.with_ymd_and_hms(2026, 12, 1, 8, 0, 0).unwrap(),
            start: Utc.with_ymd_and_hms(2026, 12, 7, 14, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2026, 12, 7, 14, 30, 0).unwrap(),
            status,
            summary: "Appointment with Dr. Okafor; cardiology, follow-up".into(),
            location: Some(format!("Riverside Clinic, 12 River St, Boston — {}", "Ünïcödé ".repeat(12))),
        }
    }

    #[test]
    fn lines_are_folded_at_75_octets_and_text_is_escaped() {
        let ics = invitation(InvitationStatus::Confirmed).to_ics();
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{line:?} is {} octets", line.len());
        }
        let unfolded = ics.replace("\r\n ", "");
        assert!(unfolded.contains("SUMMARY:Appointment with Dr. Okafor\\; cardiology\\, follow-up\r\n"), "{unfolded}");
        assert!(unfolded.contains("Ünïcödé Ünïcödé"), "folding keeps characters whole");
        assert!(unfolded.contains("\r\nSTATUS:CONFIRMED\r\n") && unfolded.contains("\r\nMETHOD:PUBLISH\r\n"));
    }

    #[test]
    fn our_engine_reads_the_invitation_back_as_the_same_time() {
        for (status, busy) in [(InvitationStatus::Confirmed, true), (InvitationStatus::Cancelled, false)] {
            let i = invitation(status);
            let calendar = Calendar::parse(&i.to_ics()).unwrap();
            let horizon = Interval::new(i.start - chrono::TimeDelta::days(1), i.end + chrono::TimeDelta::days(1));
            let expansion = calendar.expand(horizon, chrono_tz::UTC).unwrap();
            let occurrences = &expansion.occurrences;
            assert_eq!(occurrences.len(), 1);
            assert_eq!(Interval::new(occurrences[0].start, occurrences[0].end), Interval::new(i.start, i.end));
            assert_eq!(occurrences[0].status == EventStatus::Cancelled, !busy);
            assert_eq!(occurrences[0].busy().is_some(), busy);
        }
    }
}

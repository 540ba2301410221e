//! Reading provider availability: NDJSON (SMART Scheduling Links) or a FHIR Bundle.

use std::collections::BTreeMap;
use std::fmt;

use calsync_core::ProviderSlot;
use fhirbolt::model::r4::Resource;
use fhirbolt::model::r4::resources as res;

use crate::{provider_slot, qualified};

/// A line (or resource) that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// The file or URL it came from.
    pub source: String,
    /// 1-based line (1 for a single JSON document).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.message)
    }
}

/// What a provider Schedule says about who and where.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleInfo {
    /// `Schedule.actor` references (Location, PractitionerRole, HealthcareService, ...).
    pub actors: Vec<String>,
}

/// Provider availability read so far: Slots for matching, Schedules and Location names for
/// building Appointments and showing places, and every problem met on the way.
#[derive(Debug, Clone, Default)]
pub struct ProviderData {
    /// Slots, as the matching core sees them.
    pub slots: Vec<ProviderSlot>,
    /// Schedules by `Schedule/id`.
    pub schedules: BTreeMap<String, ScheduleInfo>,
    /// Location names by `Location/id`.
    pub locations: BTreeMap<String, String>,
    /// Lines skipped, with their reason.
    pub problems: Vec<LineProblem>,
}

impl ProviderData {
    /// Reads a file's text: one JSON resource or Bundle, or NDJSON (one resource per line).
    pub fn read(&mut self, source: &str, text: &str) {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok() {
            self.read_json_document(source, text);
        } else {
            self.read_ndjson(source, text);
        }
    }

    /// Reads NDJSON: every non-blank line is one resource. Bad lines are recorded and skipped.
    pub fn read_ndjson(&mut self, source: &str, text: &str) {
        for (i, line) in text.lines().enumerate() {
            if !line.trim().is_empty() {
                self.read_resource_text(source, i + 1, line);
            }
        }
    }

    /// Reads one JSON document: a resource, or a Bundle whose entries are read in turn.
    pub fn read_json_document(&mut self, source: &str, text: &str) {
        self.read_resource_text(source, 1, text);
    }

    fn read_resource_text(&mut self, source: &str, line: usize, text: &str) {
        match fhirbolt::json::from_str::<Resource>(text, None) {
            Ok(resource) => self.add(source, line, resource),
            Err(e) => self.problem(source, line, format!("not a FHIR R4 resource: {e}")),
        }
    }

    fn problem(&mut self, source: &str, line: usize, message: String) {
        self.problems.push(LineProblem { source: source.to_string(), line, message });
    }

    fn add(&mut self, source: &str, line: usize, resource: Resource) {
        match resource {
            Resource::Slot(slot) => match provider_slot(&slot) {
                Ok(s) => self.slots.push(s),
                Err(message) => self.problem(source, line, message),
            },
            Resource::Schedule(s) => self.add_schedule(source, line, &s),
            Resource::Location(l) => {
                if let Some(id) = l.id.as_ref().and_then(|i| i.value.clone()) {
                    let name = l.name.as_ref().and_then(|n| n.value.clone()).unwrap_or_else(|| id.clone());
                    self.locations.insert(qualified("Location", &id), name);
                }
            }
            Resource::Bundle(b) => {
                for entry in b.entry {
                    if let Some(r) = entry.resource {
                        self.add(source, line, r);
                    }
                }
            }
            // Other resources (PractitionerRole, Device, ...) do not change availability.
            _ => {}
        }
    }

    fn add_schedule(&mut self, source: &str, line: usize, s: &res::Schedule) {
        let Some(id) = s.id.as_ref().and_then(|i| i.value.clone()) else {
            return self.problem(source, line, "Schedule without id".into());
        };
        let actors = s.actor.iter().filter_map(|a| a.reference.as_ref().and_then(|r| r.value.clone())).collect();
        self.schedules.insert(qualified("Schedule", &id), ScheduleInfo { actors });
    }

    /// The display name of the first Location among a Schedule's actors.
    pub fn place_of(&self, schedule: &str) -> Option<&str> {
        self.schedules
            .get(&qualified("Schedule", schedule))?
            .actors
            .iter()
            .find_map(|a| self.locations.get(a))
            .map(String::as_str)
    }
}

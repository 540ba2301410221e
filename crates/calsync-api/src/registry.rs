//! The resources this server keeps and what can be done with them. The router and the
//! CapabilityStatement are both built from [`RESOURCES`], so they cannot drift apart.

/// A REST interaction of FHIR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// GET [type]/[id]
    Read,
    /// GET [type]/[id]/_history/[vid]
    Vread,
    /// POST [type]
    Create,
    /// PUT [type]/[id]
    Update,
    /// DELETE [type]/[id]
    Delete,
    /// GET [type]?... and POST [type]/_search
    SearchType,
}

impl Interaction {
    /// The code used in CapabilityStatement.rest.resource.interaction.
    pub fn code(self) -> &'static str {
        match self {
            Interaction::Read => "read",
            Interaction::Vread => "vread",
            Interaction::Create => "create",
            Interaction::Update => "update",
            Interaction::Delete => "delete",
            Interaction::SearchType => "search-type",
        }
    }
}

/// Interactions every resource type supports today.
pub const INTERACTIONS: &[Interaction] = &[
    Interaction::Read,
    Interaction::Vread,
    Interaction::Create,
    Interaction::Update,
    Interaction::Delete,
    Interaction::SearchType,
];

/// The resource types calsync keeps.
pub const RESOURCES: &[&str] = &[
    "Appointment",
    "Consent",
    "Device",
    "HealthcareService",
    "Location",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "RelatedPerson",
    "Schedule",
    "Slot",
    "Task",
];

/// True when the server keeps this resource type.
pub fn is_supported(resource_type: &str) -> bool {
    RESOURCES.contains(&resource_type)
}

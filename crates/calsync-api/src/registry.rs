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

/// The interactions of `resource_type`: all of them, but reads and searches only for what
/// calsync writes itself (the audit trail).
pub fn interactions_of(resource_type: &str) -> impl Iterator<Item = &'static Interaction> + '_ {
    let read_only = calsync_usecase::resources::WRITTEN_BY_CALSYNC.contains(&resource_type);
    INTERACTIONS
        .iter()
        .filter(move |i| !read_only || matches!(i, Interaction::Read | Interaction::Vread | Interaction::SearchType))
}

/// The resource types calsync keeps (the use cases' list).
pub use calsync_usecase::resources::{RESOURCE_TYPES as RESOURCES, is_kept as is_supported};

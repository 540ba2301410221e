//! Who a bearer token says is calling, and what its SMART on FHIR scopes permit.
//!
//! Scopes are read as SMART App Launch 2 writes them (`patient/Appointment.cruds`,
//! `user/Slot.rs`, `system/*.cruds`: the letters a subset of `cruds`, in that order) and as
//! version 1 did (`patient/*.read` = `rs`, `user/Patient.write` = `cud`, `system/*.*` = `cruds`).
//! A scope narrowed by a query (`patient/Observation.rs?category=…`) is not supported and grants
//! nothing; a malformed scope grants nothing; the other scopes (`openid`, `fhirUser`,
//! `launch/patient`, `offline_access`) grant no data.

/// One interaction a scope can permit (SMART's letters `c r u d s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    /// `c`: create.
    Create,
    /// `r`: read, vread, history of an instance.
    Read,
    /// `u`: update.
    Update,
    /// `d`: delete.
    Delete,
    /// `s`: search.
    Search,
}

impl Interaction {
    const ORDER: [(char, Interaction); 5] = [
        ('c', Interaction::Create),
        ('r', Interaction::Read),
        ('u', Interaction::Update),
        ('d', Interaction::Delete),
        ('s', Interaction::Search),
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Whose data a scope reaches: the patient in context, what the user may see, or what the
/// client system may (no user).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// `patient/`.
    Patient,
    /// `user/`.
    User,
    /// `system/`.
    System,
}

/// One resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Scope {
    level: Level,
    /// `None`: every resource type (`*`).
    resource_type: Option<String>,
    /// The interactions, one bit each.
    interactions: u8,
}

/// The scopes a token carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes {
    resources: Vec<Scope>,
    /// The scope text as granted, for audit and the token's answer.
    text: String,
}

impl Scopes {
    /// Reads a space-separated scope string.
    pub fn parse(text: &str) -> Scopes {
        let resources = text.split_whitespace().filter_map(resource_scope).collect();
        Scopes { resources, text: text.split_whitespace().collect::<Vec<_>>().join(" ") }
    }

    /// The scopes as granted.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when a scope of `level` permits `interaction` on `resource_type`.
    pub fn allow(&self, level: Level, resource_type: &str, interaction: Interaction) -> bool {
        self.resources.iter().any(|s| {
            s.level == level
                && s.resource_type.as_deref().is_none_or(|t| t == resource_type)
                && s.interactions & interaction.bit() != 0
        })
    }

    /// True when any scope of `level` is granted (a token with only `patient/` scopes acts for
    /// its patient alone).
    pub fn has_level(&self, level: Level) -> bool {
        self.resources.iter().any(|s| s.level == level)
    }
}

/// One scope read, if it is a resource scope calsync supports.
fn resource_scope(text: &str) -> Option<Scope> {
    let (level, rest) = text.split_once('/')?;
    let level = match level {
        "patient" => Level::Patient,
        "user" => Level::User,
        "system" => Level::System,
        _ => return None,
    };
    if rest.contains('?') {
        return None;
    }
    let (resource_type, permissions) = rest.split_once('.')?;
    let resource_type = match resource_type {
        "*" => None,
        t if !t.is_empty()
            && t.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && t.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Some(t.to_string())
        }
        _ => return None,
    };
    let interactions = match permissions {
        // Version 1.
        "read" => Interaction::Read.bit() | Interaction::Search.bit(),
        "write" => Interaction::Create.bit() | Interaction::Update.bit() | Interaction::Delete.bit(),
        "*" => 0b1_1111,
        letters => v2_letters(letters)?,
    };
    Some(Scope { level, resource_type, interactions })
}

/// `cruds` letters, a subset in that order; anything else is no scope.
fn v2_letters(letters: &str) -> Option<u8> {
    if letters.is_empty() {
        return None;
    }
    let mut bits = 0;
    let mut next = 0;
    for c in letters.chars() {
        let at = Interaction::ORDER[next..].iter().position(|(l, _)| *l == c)? + next;
        bits |= Interaction::ORDER[at].1.bit();
        next = at + 1;
    }
    Some(bits)
}

/// Who a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's issuer (`iss`).
    pub issuer: String,
    /// The subject (`sub`).
    pub subject: String,
    /// The client application (`client_id`), if the token says.
    pub client: Option<String>,
    /// What its scopes permit.
    pub scopes: Scopes,
    /// The person it acts as (`fhirUser`), as `Type/id`: a Patient, RelatedPerson, Practitioner
    /// or PractitionerRole.
    pub user: Option<String>,
    /// The patient in context (`patient`), as `Patient/id`.
    pub patient: Option<String>,
}

impl Principal {
    /// `fhirUser` as a relative reference: `Patient/x` from `Patient/x` or
    /// `https://host/fhir/Patient/x`, when it names one of the person types.
    pub fn person_reference(fhir_user: &str) -> Option<String> {
        let key = calsync_fhir::index::reference_key(fhir_user)?;
        let (t, id) = key.split_once('/')?;
        let person = matches!(t, "Patient" | "RelatedPerson" | "Practitioner" | "PractitionerRole");
        (person && calsync_store::is_valid_id(id)).then_some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Interaction::*;

    #[test]
    fn v2_scopes_permit_their_letters_in_order_only() {
        let s = Scopes::parse("patient/Appointment.cruds user/Slot.rs system/*.r");
        assert!(s.allow(Level::Patient, "Appointment", Delete));
        assert!(s.allow(Level::User, "Slot", Search));
        assert!(!s.allow(Level::User, "Slot", Update));
        assert!(!s.allow(Level::Patient, "Slot", Read), "another type");
        assert!(!s.allow(Level::User, "Appointment", Read), "another level");
        assert!(s.allow(Level::System, "Consent", Read));
        assert!(!s.allow(Level::System, "Consent", Search));
        // Out of order, unknown letters, empty, narrowed, malformed: nothing.
        for bad in [
            "patient/Slot.sr",
            "patient/Slot.rx",
            "patient/Slot.",
            "patient/Slot.rs?status=free",
            "patient/slot.rs",
            "nurse/Slot.rs",
            "patientSlot.rs",
            "patient/.rs",
        ] {
            let s = Scopes::parse(bad);
            assert!(!s.allow(Level::Patient, "Slot", Read) && !s.allow(Level::Patient, "Slot", Search), "{bad}");
        }
    }

    #[test]
    fn v1_scopes_read_as_v2() {
        let s = Scopes::parse("patient/*.read user/Patient.write system/Slot.*");
        assert!(s.allow(Level::Patient, "Consent", Read) && s.allow(Level::Patient, "Consent", Search));
        assert!(!s.allow(Level::Patient, "Consent", Create));
        assert!(s.allow(Level::User, "Patient", Create) && s.allow(Level::User, "Patient", Delete));
        assert!(!s.allow(Level::User, "Patient", Read));
        assert!([Create, Read, Update, Delete, Search].iter().all(|i| s.allow(Level::System, "Slot", *i)));
        assert!(Scopes::parse("openid fhirUser launch/patient offline_access").resources.is_empty());
        assert_eq!(Scopes::parse("  openid   patient/*.rs ").as_str(), "openid patient/*.rs");
    }

    #[test]
    fn fhir_user_is_read_relative_or_absolute() {
        assert_eq!(Principal::person_reference("Patient/maria").as_deref(), Some("Patient/maria"));
        assert_eq!(
            Principal::person_reference("https://ehr.example/fhir/RelatedPerson/ana").as_deref(),
            Some("RelatedPerson/ana")
        );
        assert_eq!(Principal::person_reference("Observation/1"), None);
        assert_eq!(Principal::person_reference("Patient/"), None);
        assert_eq!(Principal::person_reference("Patient/a b"), None);
    }
}

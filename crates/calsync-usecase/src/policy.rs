//! Who may do what: one policy, checked by every use case for the caller it is given, deny by
//! default.
//!
//! - The operator (the command line) may do everything.
//! - Without a token: nothing, unless the deployment runs without authorization
//!   (`[auth] mode = "none"`, a development setting production refuses).
//! - A token whose scopes are `system/` scopes and which names no person (a back-end service, an
//!   administrator): what its scopes permit, on everything.
//! - A token naming a person (`fhirUser`), or carrying only `patient/` or `user/` scopes: what
//!   its scopes permit, on the types a person may reach (below), within their compartment
//!   ([`crate::compartment`]): instance by instance, and searches narrowed before they run.
//!
//! Public without a token, and so not checked here: the CapabilityStatement, the SMART
//! configuration, OperationDefinitions and SearchParameters, and the SMART Scheduling Links feed.

use crate::access::{Interaction, Level, Principal};
use crate::compartment::Reach;
use crate::{Caller, Context, Outcome, UseCaseError, UseCases};

/// The provider directory: readable by every authenticated caller its scopes permit.
pub const DIRECTORY: [&str; 5] = ["Location", "Organization", "HealthcareService", "Practitioner", "PractitionerRole"];

/// What a person's token may read or search, scopes permitting, within their compartment.
pub const PERSON_READS: [&str; 12] = [
    "Location",
    "Organization",
    "HealthcareService",
    "Practitioner",
    "PractitionerRole",
    "Schedule",
    "Slot",
    "Appointment",
    "Patient",
    "RelatedPerson",
    "Consent",
    "Task",
];

/// What a person's token may create, update or delete, scopes permitting, within their
/// compartment (Appointments through `$hold`, `$book` and `$cancel` only).
pub const PERSON_WRITES: [&str; 6] = ["Schedule", "Slot", "Appointment", "Patient", "RelatedPerson", "Consent"];

/// The token is a service's: system scopes, no person.
pub(crate) fn is_system(p: &Principal) -> bool {
    p.user.is_none() && p.scopes.has_level(Level::System)
}

fn interaction_words(i: Interaction) -> &'static str {
    match i {
        Interaction::Create => "create",
        Interaction::Read => "read",
        Interaction::Update => "update",
        Interaction::Delete => "delete",
        Interaction::Search => "search",
    }
}

impl UseCases {
    /// Permits `interaction` on `resource_type` to the caller of `cx`, or says why not: 401
    /// without a token, 403 with one that does not permit it.
    pub fn permit(&self, cx: &Context, resource_type: &str, interaction: Interaction) -> Outcome<()> {
        permit_rule(&cx.caller, self.open, resource_type, interaction, false)
    }

    /// [`UseCases::permit`], and how far the caller reaches for the instance checks that follow.
    pub async fn authorize(&self, cx: &Context, resource_type: &str, interaction: Interaction) -> Outcome<Reach> {
        self.permit(cx, resource_type, interaction)?;
        self.reach(cx).await
    }

    /// Permits what only a service may do (publishers, syncing every connection, audit): a
    /// system token whose scopes permit `interaction` on `resource_type`, or the operator.
    pub fn permit_system(&self, cx: &Context, resource_type: &str, interaction: Interaction) -> Outcome<()> {
        permit_rule(&cx.caller, self.open, resource_type, interaction, true)
    }
}

/// [`UseCases::permit`] and [`UseCases::permit_system`] without the use cases.
pub(crate) fn permit_rule(
    caller: &Caller,
    open: bool,
    resource_type: &str,
    interaction: Interaction,
    system_only: bool,
) -> Outcome<()> {
    let p = match caller {
        Caller::Operator => return Ok(()),
        Caller::Anonymous if open => return Ok(()),
        Caller::Anonymous => return Err(UseCaseError::Unauthenticated("a bearer token is required".into())),
        Caller::Bearer(p) => p,
    };
    let what = interaction_words(interaction);
    if is_system(p) {
        return if p.scopes.allow(Level::System, resource_type, interaction) {
            Ok(())
        } else {
            Err(UseCaseError::Forbidden(format!("this token's scopes do not permit to {what} {resource_type}")))
        };
    }
    if system_only {
        return Err(UseCaseError::Forbidden(format!("only a system token may {what} {resource_type}")));
    }
    let scoped = [Level::User, Level::Patient].iter().any(|l| p.scopes.allow(*l, resource_type, interaction));
    if !scoped {
        return Err(UseCaseError::Forbidden(format!("this token's scopes do not permit to {what} {resource_type}")));
    }
    let reachable = match interaction {
        Interaction::Read | Interaction::Search => PERSON_READS.contains(&resource_type),
        Interaction::Create | Interaction::Update | Interaction::Delete => PERSON_WRITES.contains(&resource_type),
    };
    if reachable {
        Ok(())
    } else {
        Err(UseCaseError::Forbidden(format!("a person's token may not {what} {resource_type}: system tokens only")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Scopes;

    fn bearer(scope: &str, user: Option<&str>) -> Caller {
        Caller::Bearer(Principal {
            issuer: "i".into(),
            subject: "s".into(),
            client: None,
            scopes: Scopes::parse(scope),
            user: user.map(String::from),
            patient: None,
        })
    }

    /// The policy's answer, as a status.
    fn decide(caller: Caller, open: bool, t: &str, i: Interaction, system_only: bool) -> Result<(), &'static str> {
        match permit_rule(&caller, open, t, i, system_only) {
            Ok(()) => Ok(()),
            Err(UseCaseError::Unauthenticated(_)) => Err("401"),
            Err(UseCaseError::Forbidden(_)) => Err("403"),
            Err(_) => Err("other"),
        }
    }

    #[test]
    fn deny_by_default() {
        use Interaction::*;
        assert_eq!(decide(Caller::Operator, false, "Slot", Delete, true), Ok(()));
        assert_eq!(decide(Caller::Anonymous, false, "Slot", Read, false), Err("401"));
        assert_eq!(decide(Caller::Anonymous, true, "Slot", Read, false), Ok(()));
        let system = || bearer("system/*.cruds", None);
        assert_eq!(decide(system(), false, "Slot", Delete, true), Ok(()));
        assert_eq!(decide(bearer("system/Slot.rs", None), false, "Slot", Update, false), Err("403"));
        assert_eq!(decide(bearer("system/Slot.rs", None), false, "Appointment", Read, false), Err("403"));
        let maria = || bearer("patient/*.cruds user/*.rs", Some("Patient/maria"));
        assert_eq!(decide(maria(), false, "Location", Search, false), Ok(()));
        assert_eq!(decide(maria(), false, "Location", Update, false), Err("403"));
        assert_eq!(decide(maria(), false, "Patient", Read, false), Ok(()), "then the compartment decides");
        assert_eq!(decide(maria(), false, "Device", Read, false), Err("403"), "not a person's");
        assert_eq!(decide(maria(), false, "Location", Read, true), Err("403"), "system only");
        assert_eq!(
            decide(bearer("patient/Slot.rs", Some("Patient/maria")), false, "Location", Read, false),
            Err("403")
        );
        // A person's token with system scopes is still a person's.
        assert_eq!(decide(bearer("system/*.cruds", Some("Practitioner/p")), false, "Slot", Read, false), Err("403"));
    }
}

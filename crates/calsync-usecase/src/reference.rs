//! References as callers give them.

use crate::UseCaseError;

/// A `Type/id` reference to one of `types`, from `Type/id` or an absolute URL; `what` names the
/// parameter in the error.
pub fn typed_reference(value: &str, types: &[&str], what: &str) -> Result<(String, String), UseCaseError> {
    let invalid = || UseCaseError::Invalid(format!("{what} {value:?} is not a reference (Type/id)"));
    let key = calsync_fhir::index::reference_key(value).ok_or_else(invalid)?;
    let (t, id) = key.split_once('/').ok_or_else(invalid)?;
    if !types.contains(&t) || !calsync_store::is_valid_id(id) {
        return Err(UseCaseError::Invalid(format!("{what} {value:?} must refer to {}", types.join(" or "))));
    }
    Ok((t.to_string(), id.to_string()))
}

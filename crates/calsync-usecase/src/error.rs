//! What a use case fails with: one error type for every caller (HTTP, CLI, page, assistant),
//! each variant a kind of failure a caller can act on.

use calsync_fhir::validate::Invalid;
use calsync_store::StoreError;

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum UseCaseError {
    /// The request itself is wrong (a parameter, a reference, a value out of range).
    #[error("{0}")]
    Invalid(String),
    /// No such resource, connection or publisher.
    #[error("{0}")]
    NotFound(String),
    /// The resource was deleted.
    #[error("{0}")]
    Gone(String),
    /// The request conflicts with the current state (a Slot taken meanwhile, a used hand-off).
    #[error("{0}")]
    Conflict(String),
    /// The version the caller based its change on is not the current one.
    #[error("{0}")]
    VersionMismatch(String),
    /// A resource is not valid; `expression` names the element.
    #[error("{message}")]
    Unprocessable {
        /// What is wrong.
        message: String,
        /// Where (`Appointment.start`).
        expression: Option<String>,
    },
    /// This deployment is not configured for it (no secret key for connections) or a service
    /// it needs is away.
    #[error("{0}")]
    Unavailable(String),
    /// No credentials, or credentials that are not valid (401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known and not permitted this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Asked again too soon: the same request is welcome after `retry_after`.
    #[error("{message}")]
    TooSoon {
        /// What may not be done so often.
        message: String,
        /// When to ask again.
        retry_after: std::time::Duration,
    },
    /// Our fault. The detail is for the log, never for the caller.
    #[error("internal error")]
    Internal(String),
}

impl UseCaseError {
    /// A 422-kind error naming the element.
    pub fn element(expression: impl Into<String>, message: impl Into<String>) -> Self {
        UseCaseError::Unprocessable { message: message.into(), expression: Some(expression.into()) }
    }
}

/// What the store `found`, or that `what` (`connection 7`) is not known.
pub(crate) fn known<T>(found: Result<T, StoreError>, what: impl FnOnce() -> String) -> Result<T, UseCaseError> {
    match found {
        Ok(t) => Ok(t),
        Err(StoreError::NotFound(..)) => Err(UseCaseError::NotFound(format!("{} is not known", what()))),
        Err(e) => Err(e.into()),
    }
}

impl From<StoreError> for UseCaseError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(t, id) => UseCaseError::NotFound(format!("{t}/{id} is not known")),
            StoreError::Gone(t, id) => UseCaseError::Gone(format!("{t}/{id} was deleted")),
            StoreError::VersionConflict { expected, current } => UseCaseError::VersionMismatch(format!(
                "If-Match names version {expected}, the current version is {current}"
            )),
            e @ StoreError::Concurrent(..) => UseCaseError::Conflict(e.to_string()),
            StoreError::Invalid(m) => UseCaseError::Unprocessable { message: m, expression: None },
            StoreError::Database(e) => UseCaseError::Internal(e.to_string()),
        }
    }
}

impl From<calsync_sync::SyncError> for UseCaseError {
    fn from(e: calsync_sync::SyncError) -> Self {
        use calsync_sync::SyncError;
        match e {
            SyncError::Store(e) => e.into(),
            SyncError::NotParticipant(_) => UseCaseError::element("Schedule.actor", e.to_string()),
            SyncError::Credentials(_) => UseCaseError::Conflict(e.to_string()),
            SyncError::BadSource(_) => UseCaseError::Internal(e.to_string()),
            SyncError::Stopped => UseCaseError::Unavailable(e.to_string()),
        }
    }
}

impl From<Invalid> for UseCaseError {
    fn from(e: Invalid) -> Self {
        match e {
            Invalid::Malformed(m) => UseCaseError::Invalid(m),
            Invalid::Element { expression, message } => UseCaseError::Unprocessable {
                message: format!("{expression}: {message}"),
                expression: Some(expression),
            },
        }
    }
}

impl From<calsync_links::LinksError> for UseCaseError {
    fn from(e: calsync_links::LinksError) -> Self {
        match e {
            calsync_links::LinksError::Invalid(m) => UseCaseError::Invalid(m),
            calsync_links::LinksError::Store(e) => e.into(),
        }
    }
}

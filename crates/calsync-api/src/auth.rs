//! Who is calling: the bearer token of a request, verified (`Authorization: Bearer …`). A
//! request without one is anonymous; one with a token that is not valid is a 401 whatever it
//! asks. What a caller may do is the use cases' policy (`calsync_usecase::policy`).

use calsync_auth::Verifier;
use calsync_usecase::{Caller, UseCaseError};

/// How this server authenticates callers.
#[derive(Debug, Default)]
pub struct Authenticator {
    /// None: tokens are not read (`[auth] mode = "none"`).
    verifier: Option<Verifier>,
}

impl Authenticator {
    /// Tokens checked by `verifier`.
    pub fn with(verifier: Verifier) -> Self {
        Authenticator { verifier: Some(verifier) }
    }

    /// No tokens read: every caller is anonymous (the policy then decides, open or not).
    pub fn none() -> Self {
        Authenticator { verifier: None }
    }

    /// The caller an `Authorization` header names.
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Caller, UseCaseError> {
        let (Some(verifier), Some(value)) = (&self.verifier, authorization) else { return Ok(Caller::Anonymous) };
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => token.trim(),
            _ => return Err(UseCaseError::Unauthenticated("the Authorization header is not a bearer token".into())),
        };
        verifier.verify(token).await.map(Caller::Bearer).map_err(|e| UseCaseError::Unauthenticated(e.to_string()))
    }
}

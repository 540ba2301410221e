//! How the server authenticates callers, from `[auth]`: no tokens (`none`), its own development
//! issuer (`development`), or a configured issuer's JWKS (`issuer`).

use std::time::Duration;

use calsync_api::auth::Authenticator;
use calsync_api::edge::{Edge, Smart};
use calsync_auth::{Issuer, Keys, RemoteKeys, Verifier};

use crate::settings::{AuthMode, Settings};

/// The `iss` of the development issuer's tokens.
pub const DEVELOPMENT_ISSUER: &str = "urn:calsync:development";

/// The `aud` of the development issuer's tokens.
pub const DEVELOPMENT_AUDIENCE: &str = "calsync";

/// The development issuer of a deployment: its key is derived from the deployment's
/// `secret_key` (or a fixed seed without one), so the server and `calsync token` agree.
pub fn development_issuer(settings: &Settings) -> Issuer {
    let seed = settings.secret_key.as_deref().unwrap_or("calsync development issuer without a secret key");
    Issuer::from_seed(DEVELOPMENT_ISSUER, DEVELOPMENT_AUDIENCE, seed.as_bytes())
}

/// How the server is reached and who may call it, from `settings`: the authenticator, the
/// public address, the trusted proxies, and the SMART endpoints it publishes.
pub fn edge(settings: &Settings) -> Result<Edge, String> {
    let auth = &settings.auth;
    let smart = match auth.mode() {
        AuthMode::None => Smart::default(),
        AuthMode::Development => {
            let issuer = development_issuer(settings);
            Smart {
                issuer: Some(issuer.issuer().to_string()),
                jwks_uri: Some("/.well-known/jwks.json".into()),
                development_jwks: Some(issuer.jwks()),
                ..Smart::default()
            }
        }
        AuthMode::Issuer => Smart {
            issuer: auth.issuer.clone(),
            authorize: auth.authorize_url.clone(),
            token: auth.token_url.clone(),
            jwks_uri: auth.jwks_url.clone(),
            development_jwks: None,
        },
    };
    let trusted_proxies = settings
        .trusted_proxies
        .iter()
        .map(|p| p.parse().map_err(|_| format!("trusted_proxies: {p:?} is not an IP address")))
        .collect::<Result<_, _>>()?;
    Ok(Edge {
        authenticator: authenticator(settings)?,
        public_url: settings.public_url.clone(),
        trusted_proxies,
        smart,
    })
}

/// The authenticator `settings` describe.
pub fn authenticator(settings: &Settings) -> Result<Authenticator, String> {
    let auth = &settings.auth;
    Ok(match auth.mode() {
        AuthMode::None => Authenticator::none(),
        AuthMode::Development => {
            let issuer = development_issuer(settings);
            Authenticator::with(Verifier::new(issuer.issuer(), issuer.audience(), Keys::Fixed(issuer.key_set())))
        }
        AuthMode::Issuer => {
            let issuer = auth.issuer.clone().ok_or("[auth] mode = \"issuer\" needs issuer")?;
            let jwks = auth.jwks_url.clone().ok_or("[auth] mode = \"issuer\" needs jwks_url")?;
            let audience = auth
                .audience
                .clone()
                .or_else(|| settings.public_url.clone())
                .ok_or("[auth] mode = \"issuer\" needs audience (or public_url)")?;
            // Reached directly, like an OAuth provider's token endpoint: not through the egress
            // policy, which is for addresses that come from outside.
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| format!("the JWKS client: {e}"))?;
            Authenticator::with(Verifier::new(issuer, audience, Keys::Remote(RemoteKeys::new(jwks, client))))
        }
    })
}

/// Who a development token acts as: a system (no person) or a person of the demo's data.
pub fn development_grant(who: &str, scope: Option<&str>, patient: Option<&str>) -> Result<calsync_auth::Grant, String> {
    if who == "system" {
        return Ok(calsync_auth::Grant {
            subject: "system".into(),
            scope: scope.unwrap_or("system/*.cruds").into(),
            client_id: Some("calsync-cli".into()),
            ..Default::default()
        });
    }
    let person = calsync_usecase::access::Principal::person_reference(who).filter(|p| p == who).ok_or_else(|| {
        format!("{who:?}: expected system or Patient/…, RelatedPerson/…, Practitioner/…, PractitionerRole/…")
    })?;
    let (kind, id) = person.split_once('/').unwrap_or_default();
    // What a patient-facing app asks for: everything in the patient's compartment, and reading
    // the provider directory; a practitioner's app, what the practitioner's user may do.
    let default_scope = match kind {
        "Patient" | "RelatedPerson" => "openid fhirUser launch/patient patient/*.cruds user/*.rs",
        _ => "openid fhirUser user/*.cruds",
    };
    let patient = match (kind, patient) {
        (_, Some(p)) => Some(p.trim_start_matches("Patient/").to_string()),
        ("Patient", None) => Some(id.to_string()),
        _ => None,
    };
    Ok(calsync_auth::Grant {
        subject: person.clone(),
        scope: scope.unwrap_or(default_scope).into(),
        fhir_user: Some(person),
        patient,
        client_id: Some("calsync-cli".into()),
    })
}

/// A token of this deployment's development issuer (`calsync token`).
pub fn development_token(
    settings: &Settings,
    grant: &calsync_auth::Grant,
    lifetime: Duration,
) -> Result<String, String> {
    if settings.auth.mode() != AuthMode::Development {
        return Err("this deployment does not issue its own tokens ([auth] names an issuer, or mode is none)".into());
    }
    Ok(development_issuer(settings).mint(grant, chrono::Utc::now().timestamp(), lifetime))
}

//! How the server authenticates callers, from `[auth]`: no tokens (`none`), its own development
//! issuer (`development`), or a configured issuer's JWKS (`issuer`).

use std::time::Duration;

use calsync_api::auth::Authenticator;
use calsync_api::edge::{Edge, Smart};
use calsync_api::sign_in::SignIn;
pub use calsync_auth::Grant;
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
    let mut sign_in = None;
    let smart = match auth.mode() {
        AuthMode::None => Smart::default(),
        AuthMode::Development => {
            let issuer = development_issuer(settings);
            let smart = Smart {
                issuer: Some(issuer.issuer().to_string()),
                authorize: Some("/auth/authorize".into()),
                token: Some("/auth/token".into()),
                jwks_uri: Some("/.well-known/jwks.json".into()),
                development_jwks: Some(issuer.jwks()),
            };
            sign_in = Some(SignIn::new(issuer));
            smart
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
        sign_in,
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

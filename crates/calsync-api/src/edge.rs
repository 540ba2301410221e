//! What the server needs to know about how it is reached: the tokens it accepts, its public
//! address, the proxies whose `X-Forwarded-*` headers it believes, and the SMART endpoints it
//! publishes.

use std::net::IpAddr;

use actix_web::HttpRequest;
use serde_json::Value;

use crate::auth::Authenticator;

/// How the server is reached and who may call it.
#[derive(Debug, Default)]
pub struct Edge {
    /// Reads bearer tokens.
    pub authenticator: Authenticator,
    /// The server's address for people and other servers (`https://calsync.example.org`):
    /// every absolute URL in an answer starts with it.
    pub public_url: Option<String>,
    /// Proxies whose `Forwarded` and `X-Forwarded-*` headers say the scheme and host a client
    /// used; from anyone else they are ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// What `/.well-known/smart-configuration` and the CapabilityStatement publish.
    pub smart: Smart,
    /// The development issuer's sign-in (`CALSYNC_ENV=local`); none with an outside issuer.
    pub sign_in: Option<crate::sign_in::SignIn>,
}

/// The authorization server's endpoints, absolute or relative to this server's address (the
/// development issuer's are this server's own).
#[derive(Debug, Clone, Default)]
pub struct Smart {
    /// The `iss` of accepted tokens.
    pub issuer: Option<String>,
    /// Where apps send people to sign in and consent.
    pub authorize: Option<String>,
    /// Where apps exchange codes and credentials for tokens.
    pub token: Option<String>,
    /// The issuer's keys.
    pub jwks_uri: Option<String>,
    /// The development issuer's key set, served at `/.well-known/jwks.json` (none otherwise).
    pub development_jwks: Option<Value>,
}

impl Edge {
    /// This server's address as its clients name it: `public_url`, else the scheme and host of
    /// the request (as a trusted proxy forwarded them, or as the request itself says).
    pub fn base(&self, req: &HttpRequest) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        let peer = req.peer_addr().map(|a| a.ip());
        if peer.is_some_and(|ip| self.trusted_proxies.contains(&ip)) {
            let info = req.connection_info();
            return format!("{}://{}", info.scheme(), info.host());
        }
        let host = req
            .headers()
            .get(actix_web::http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .map(String::from)
            .unwrap_or_else(|| req.app_config().host().to_string());
        let scheme = if req.app_config().secure() { "https" } else { "http" };
        format!("{scheme}://{host}")
    }

    /// `endpoint` made absolute against `base`.
    pub fn absolute(base: &str, endpoint: &str) -> String {
        if endpoint.starts_with('/') { format!("{base}{endpoint}") } else { endpoint.to_string() }
    }
}

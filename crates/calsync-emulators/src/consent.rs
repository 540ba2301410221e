//! The authorization-code grant with PKCE as both providers run it: the consent page (which
//! consents at once, as the account the test or demo chose) redirects back with a code; the
//! token endpoint takes that code once, with the verifier whose S256 hash was the challenge.

use std::collections::HashMap;

use base64::Engine;
use sha2::Digest;

/// A code handed out by the consent page, until the token endpoint takes it.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// The account that consented.
    pub account: String,
    /// The redirect URI it was sent to (the exchange must name the same).
    pub redirect_uri: String,
    /// The PKCE challenge (S256).
    pub challenge: String,
    /// Whether a refresh token comes with it (Google: `access_type=offline&prompt=consent`;
    /// Microsoft: the `offline_access` scope).
    pub offline: bool,
}

/// The consent side of an emulator.
#[derive(Debug, Default)]
pub struct Consent {
    /// The account that consents at the next visit of the consent page; none: the user declines
    /// (`error=access_denied`).
    pub next_account: Option<String>,
    /// The scope of every authorization request, for tests of least privilege.
    pub requested_scopes: Vec<String>,
    codes: HashMap<String, IssuedCode>,
    issued: usize,
}

/// What the consent page answers: where to send the browser.
pub enum Answer {
    /// Back to the client with `code` (or `error`) and `state`.
    Redirect(String),
    /// No redirect is possible (unknown client or redirect URI): an error page.
    Refuse(String),
}

impl Consent {
    /// The consent page for `query` from client `client_id`; `offline` says whether the request
    /// asked for a refresh token the provider's way.
    pub fn authorize(&mut self, query: &HashMap<String, String>, client_id: &str, offline: bool) -> Answer {
        let field = |k: &str| query.get(k).map(String::as_str).unwrap_or_default();
        if field("client_id") != client_id {
            return Answer::Refuse("invalid_client: the OAuth client was not found".into());
        }
        let redirect = field("redirect_uri");
        if !(redirect.starts_with("http://") || redirect.starts_with("https://")) {
            return Answer::Refuse("redirect_uri_mismatch".into());
        }
        self.requested_scopes.push(field("scope").to_string());
        let back = |params: &[(&str, &str)]| {
            let mut url = redirect.to_string();
            for (k, v) in params {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&format!("{k}={}", form_encode(v)));
            }
            Answer::Redirect(url)
        };
        let state = field("state");
        if field("response_type") != "code" {
            return back(&[("error", "unsupported_response_type"), ("state", state)]);
        }
        if field("code_challenge_method") != "S256" || field("code_challenge").len() < 43 {
            return back(&[
                ("error", "invalid_request"),
                ("error_description", "PKCE S256 is required"),
                ("state", state),
            ]);
        }
        let Some(account) = self.next_account.clone() else {
            return back(&[("error", "access_denied"), ("state", state)]);
        };
        self.issued += 1;
        let code = format!("4/emulated-code-{}", self.issued);
        self.codes.insert(
            code.clone(),
            IssuedCode { account, redirect_uri: redirect.into(), challenge: field("code_challenge").into(), offline },
        );
        back(&[("code", &code), ("state", state)])
    }

    /// Takes `code` for the token endpoint: once, with the same redirect URI and a verifier
    /// that hashes to the challenge. `None`: `invalid_grant`.
    pub fn exchange(&mut self, code: &str, redirect_uri: &str, verifier: &str) -> Option<IssuedCode> {
        let issued = self.codes.remove(code)?;
        let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        (issued.redirect_uri == redirect_uri && hash == issued.challenge).then_some(issued)
    }
}

/// `application/x-www-form-urlencoded` for one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The HTTP answer of the consent page: a 302, or a 400 error page.
pub fn respond(answer: Answer) -> actix_web::HttpResponse {
    match answer {
        Answer::Redirect(url) => actix_web::HttpResponse::Found().insert_header(("Location", url)).finish(),
        Answer::Refuse(message) => actix_web::HttpResponse::BadRequest().content_type("text/plain").body(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn a_code_is_taken_once_with_the_right_verifier_only() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        // RFC 7636 appendix B: the S256 challenge of that verifier.
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        let mut consent = Consent { next_account: Some("ann".into()), ..Default::default() };
        let q = query(&[
            ("client_id", "calsync"),
            ("redirect_uri", "http://127.0.0.1/cb"),
            ("response_type", "code"),
            ("scope", "s"),
            ("state", "st ate"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ]);
        let Answer::Redirect(url) = consent.authorize(&q, "calsync", true) else { panic!("no redirect") };
        assert!(url.starts_with("http://127.0.0.1/cb?code=4%2Femulated-code-1&state=st+ate"), "{url}");
        assert!(consent.exchange("4/emulated-code-1", "http://127.0.0.1/cb", "wrong").is_none());
        // The failed attempt used the code up, as a provider does.
        assert!(consent.exchange("4/emulated-code-1", "http://127.0.0.1/cb", verifier).is_none());
        let Answer::Redirect(_) = consent.authorize(&q, "calsync", true) else { panic!("no redirect") };
        assert_eq!(consent.exchange("4/emulated-code-2", "http://127.0.0.1/cb", verifier).unwrap().account, "ann");
    }

    #[test]
    fn without_pkce_or_consent_the_client_gets_an_error() {
        let mut consent = Consent::default();
        let q = query(&[
            ("client_id", "calsync"),
            ("redirect_uri", "http://h/cb"),
            ("response_type", "code"),
            ("state", "s"),
        ]);
        let Answer::Redirect(url) = consent.authorize(&q, "calsync", true) else { panic!() };
        assert!(url.contains("error=invalid_request"), "{url}");
        let Answer::Refuse(_) = consent.authorize(&q, "someone-else", true) else { panic!() };
    }
}

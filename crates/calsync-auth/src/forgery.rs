//! Tokens a server must refuse, made from a good one: for tests of every verifier of ours (the
//! crate's, and the server's over HTTP), so that both try the same attacks.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::{Grant, Issuer};

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// Tokens for `grant` that a verifier trusting `issuer` (and its audience) must refuse, each
/// with its name and a word the refusal's reason contains: expired, not yet valid, another
/// audience, another issuer, an unknown key, `alg: none`, HS256 signed with the public key, a
/// tampered payload, truncated, not a JWT, empty, and without `exp`, `sub` or `aud`.
pub fn forgeries(issuer: &Issuer, grant: &Grant, now: i64) -> Vec<(&'static str, String, &'static str)> {
    let lifetime = Duration::from_secs(300);
    let good = issuer.mint(grant, now, lifetime);
    let parts: Vec<&str> = good.split('.').collect();
    let seed = format!("another key than {}", issuer.kid);
    let other = Issuer::from_seed(issuer.issuer(), issuer.audience(), seed.as_bytes());
    let wrong_aud = Issuer { audience: "https://elsewhere.example".into(), ..issuer.clone() };
    let wrong_iss = Issuer { issuer: "https://evil.example".into(), ..issuer.clone() };
    let payload: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts[1]).expect("a JWT payload"),
    )
    .expect("JSON claims");
    let mut tampered = payload.clone();
    tampered["fhirUser"] = json!("Patient/someone-else");
    tampered["scope"] = json!("system/*.cruds");
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    // HS256 signed with the public key as the secret: the classic key-confusion attack.
    let public = serde_json::to_vec(&issuer.jwk).expect("a JWK");
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(issuer.kid.clone());
    let hs = jsonwebtoken::encode(
        &hs_header,
        &payload,
        &jsonwebtoken::EncodingKey::from_secret(&public).expect("an HMAC key"),
    )
    .expect("an HS256 token");
    let mut early = payload.clone();
    early["nbf"] = json!(now + 3_600);
    let without = |claim: &str| {
        let mut claims = payload.clone();
        claims.as_object_mut().map(|c| c.remove(claim));
        issuer.sign(&claims)
    };
    vec![
        ("expired", issuer.mint(grant, now - 3_600, lifetime), "expired"),
        ("not yet valid", issuer.sign(&early), "not valid yet"),
        ("wrong audience", wrong_aud.mint(grant, now, lifetime), "audience"),
        ("wrong issuer", wrong_iss.mint(grant, now, lifetime), "issuer"),
        ("unknown key", other.mint(grant, now, lifetime), "unknown key"),
        ("alg none", format!("{none_header}.{}.", parts[1]), "algorithm"),
        ("HS256 with the public key", hs, "algorithm"),
        (
            "tampered payload",
            format!("{}.{}.{}", parts[0], b64(tampered.to_string().as_bytes()), parts[2]),
            "signature",
        ),
        ("truncated", good[..good.len() - 20].to_string(), ""),
        ("not a JWT", "abc".into(), "not a JWT"),
        ("empty", String::new(), "not a JWT"),
        ("without exp", without("exp"), ""),
        ("without sub", without("sub"), ""),
        ("without aud", without("aud"), ""),
    ]
}

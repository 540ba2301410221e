//! SMART on FHIR bearer tokens.
//!
//! - [`Verifier`]: checks a JWT access token of the configured issuer against its signing keys
//!   (a JWKS read from the issuer, cached, read again when a token names an unknown key, at most
//!   once a minute) and says who it names ([`Principal`]). RS256, RS384, ES256 and ES384 only;
//!   `alg: none` and HMAC are refused; `exp`, `iss`, `aud` and `sub` are required, with 60 s of
//!   leeway for clocks.
//! - [`Issuer`]: the development issuer of a local deployment, which signs tokens with an ES256
//!   key derived from the deployment's secret, so that the server and `calsync token` agree.
//!
//! Nothing here decides what a caller may do: the use cases do (`calsync_usecase::access`).

use std::time::{Duration, Instant};

use base64::Engine;
use calsync_usecase::access::{Principal, Scopes};
mod forgery;
pub use forgery::forgeries;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The signature algorithms accepted.
const ALGORITHMS: [Algorithm; 4] = [Algorithm::RS256, Algorithm::RS384, Algorithm::ES256, Algorithm::ES384];

/// Clock leeway for `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 60;

/// The shortest time between two reads of a remote JWKS.
const REFRESH: Duration = Duration::from_secs(60);

/// Why a token is not accepted. The text is safe to show to its bearer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the bearer token is not accepted: {0}")]
pub struct TokenError(pub String);

fn refused(why: impl Into<String>) -> TokenError {
    TokenError(why.into())
}

/// The claims calsync reads.
#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    /// Checked by the JWT library (required); kept to know until when the token is valid.
    exp: f64,
    #[serde(default)]
    scope: Option<String>,
    /// Some issuers write the scopes as `scp`, a list or a string.
    #[serde(default)]
    scp: Option<Value>,
    #[serde(default, rename = "fhirUser")]
    fhir_user: Option<String>,
    #[serde(default)]
    patient: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

/// Where the issuer's signing keys come from.
#[derive(Debug)]
pub enum Keys {
    /// A key set given (the development issuer's, a test's).
    Fixed(JwkSet),
    /// The issuer's JWKS URL, read when needed.
    Remote(RemoteKeys),
}

/// A remote JWKS and what was last read of it.
#[derive(Debug)]
pub struct RemoteKeys {
    url: String,
    client: reqwest::Client,
    cached: tokio::sync::RwLock<(JwkSet, Option<Instant>)>,
}

impl RemoteKeys {
    /// The JWKS at `url`, read with `client` (which must give up after a while).
    pub fn new(url: impl Into<String>, client: reqwest::Client) -> Self {
        RemoteKeys { url: url.into(), client, cached: tokio::sync::RwLock::new((JwkSet { keys: Vec::new() }, None)) }
    }

    /// Reads the key set again unless it was read less than [`REFRESH`] ago.
    async fn refresh(&self) -> Result<(), TokenError> {
        let mut cached = self.cached.write().await;
        if cached.1.is_some_and(|at| at.elapsed() < REFRESH) {
            return Ok(());
        }
        cached.1 = Some(Instant::now());
        let fetched = async {
            let answer = self.client.get(&self.url).send().await?.error_for_status()?;
            answer.json::<JwkSet>().await
        };
        match fetched.await {
            Ok(set) => {
                cached.0 = set;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "the issuer's signing keys could not be read");
                Err(refused("the issuer's signing keys could not be read"))
            }
        }
    }
}

/// Tokens remembered as verified at most: a client sends the same token with every request
/// until it expires, and checking its signature again each time cost more than the search it
/// carried (ES256 in pure Rust).
pub const VERIFIED_TOKENS: usize = 10_000;

/// Checks tokens of one issuer for one audience.
#[derive(Debug)]
pub struct Verifier {
    issuer: String,
    audience: String,
    keys: Keys,
    /// Tokens verified already, by the SHA-256 of their bytes: who they name and until when
    /// (`exp`, Unix seconds).
    verified: std::sync::Mutex<std::collections::HashMap<[u8; 32], (Principal, i64)>>,
}

impl Verifier {
    /// A verifier of `issuer`'s tokens for `audience`, signed by `keys`.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, keys: Keys) -> Self {
        Verifier { issuer: issuer.into(), audience: audience.into(), keys, verified: Default::default() }
    }

    /// The issuer whose tokens are accepted.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Who the token names, if it is valid. A token verified before is taken from memory while
    /// it has not expired (the same bytes, the same signature: nothing to check again but time).
    pub async fn verify(&self, token: &str) -> Result<Principal, TokenError> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        if let Some((who, exp)) = self.verified.lock().unwrap_or_else(|e| e.into_inner()).get(&digest)
            && now <= exp + LEEWAY_SECONDS as i64
        {
            return Ok(who.clone());
        }
        let (who, exp) = self.verify_signed(token).await?;
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= VERIFIED_TOKENS {
            verified.retain(|_, (_, e)| now <= *e + LEEWAY_SECONDS as i64);
            if verified.len() >= VERIFIED_TOKENS {
                verified.clear();
            }
        }
        verified.insert(digest, (who.clone(), exp));
        Ok(who)
    }

    /// [`Verifier::verify`] without memory: the signature, the claims, and `exp`.
    async fn verify_signed(&self, token: &str) -> Result<(Principal, i64), TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| match written_algorithm(token) {
            Some(alg) => refused(format!("algorithm {alg:?} is not accepted (RS256, RS384, ES256, ES384)")),
            None => refused("it is not a JWT"),
        })?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(refused(format!("algorithm {:?} is not accepted (RS256, RS384, ES256, ES384)", header.alg)));
        }
        let jwk = match self.key(header.kid.as_deref()).await {
            Some(jwk) => jwk,
            None => {
                if let Keys::Remote(remote) = &self.keys {
                    remote.refresh().await?;
                }
                self.key(header.kid.as_deref()).await.ok_or_else(|| refused("it is signed by an unknown key"))?
            }
        };
        if jwk.common.key_algorithm.is_some_and(|a| a.to_string() != format!("{:?}", header.alg)) {
            return Err(refused("its algorithm is not its key's"));
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| refused("its key cannot be used"))?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims =
            jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| refused(describe(&e)))?.claims;
        let scope = match (claims.scope, claims.scp) {
            (Some(s), _) => s,
            (None, Some(Value::String(s))) => s,
            (None, Some(Value::Array(list))) => list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
            _ => String::new(),
        };
        let user = match claims.fhir_user {
            Some(u) => Some(Principal::person_reference(&u).ok_or_else(|| refused("its fhirUser is not a person"))?),
            None => None,
        };
        let patient = match claims.patient {
            Some(p) => {
                let id = p.strip_prefix("Patient/").unwrap_or(&p);
                Some(
                    Principal::person_reference(&format!("Patient/{id}"))
                        .ok_or_else(|| refused("its patient is not an id"))?,
                )
            }
            None => None,
        };
        let who = Principal {
            issuer: claims.iss,
            subject: claims.sub,
            client: claims.client_id,
            scopes: Scopes::parse(&scope),
            user,
            patient,
        };
        Ok((who, claims.exp as i64))
    }

    async fn key(&self, kid: Option<&str>) -> Option<Jwk> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        match &self.keys {
            Keys::Fixed(set) => find(set),
            Keys::Remote(remote) => find(&remote.cached.read().await.0),
        }
    }
}

/// The `alg` a token's header names, when the JWT library does not know it (`none`).
fn written_algorithm(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header.trim_end_matches('=')).ok()?;
    let header: Value = serde_json::from_slice(&bytes).ok()?;
    header["alg"].as_str().map(|a| a.chars().take(16).collect())
}

/// What is wrong with a token, in words its bearer can act on (never the token itself).
fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "it has expired".into(),
        ErrorKind::ImmatureSignature => "it is not valid yet".into(),
        ErrorKind::InvalidAudience => "it is for another audience".into(),
        ErrorKind::InvalidIssuer => "it is from another issuer".into(),
        ErrorKind::InvalidSignature => "its signature does not match".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("it has no {c}"),
        ErrorKind::InvalidAlgorithm => "its algorithm is not its key's".into(),
        _ => "it cannot be read".into(),
    }
}

/// What a token grants, for [`Issuer::mint`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// `sub`.
    pub subject: String,
    /// `scope`, space-separated.
    pub scope: String,
    /// `fhirUser` (`Patient/maria`), if the token acts as a person.
    pub fhir_user: Option<String>,
    /// `patient`, the patient in context (an id).
    pub patient: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
}

impl Grant {
    /// What a development token grants acting as `who`: `system` (no person) or a person
    /// (`Patient/…`, `RelatedPerson/…`, `Practitioner/…`, `PractitionerRole/…`), with `scope`
    /// or the scopes such an app asks for, and `patient` in context (a patient's own by default).
    pub fn acting_as(who: &str, scope: Option<&str>, patient: Option<&str>) -> Result<Grant, String> {
        if who == "system" {
            return Ok(Grant {
                subject: "system".into(),
                scope: scope.unwrap_or("system/*.cruds").into(),
                client_id: Some("calsync-cli".into()),
                ..Default::default()
            });
        }
        let person =
            calsync_usecase::access::Principal::person_reference(who).filter(|p| p == who).ok_or_else(|| {
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
        Ok(Grant {
            subject: person.clone(),
            scope: scope.unwrap_or(default_scope).into(),
            fhir_user: Some(person),
            patient,
            client_id: Some("calsync-cli".into()),
        })
    }
}

#[derive(Serialize)]
struct Minted<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: i64,
    exp: i64,
    scope: &'a str,
    #[serde(rename = "fhirUser", skip_serializing_if = "Option::is_none")]
    fhir_user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patient: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
}

/// A token issuer with one ES256 key: the development issuer of a local deployment, and the
/// tests' own.
#[derive(Clone)]
pub struct Issuer {
    issuer: String,
    audience: String,
    kid: String,
    signing: EncodingKey,
    jwk: Value,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").field("issuer", &self.issuer).field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer named `issuer` signing for `audience` with a key derived from `seed` (the same
    /// seed, the same key: a server and `calsync token` sharing a secret agree).
    pub fn from_seed(issuer: impl Into<String>, audience: impl Into<String>, seed: &[u8]) -> Issuer {
        use p256::elliptic_curve::sec1::ToSec1Point;
        use p256::pkcs8::EncodePrivateKey;
        use sha2::Digest;
        let mut material = sha2::Sha256::digest([b"calsync token issuer\0".as_slice(), seed].concat());
        // A scalar out of range for P-256 (about 2^-128 of seeds): hash again until one fits.
        let secret = loop {
            if let Ok(s) = p256::SecretKey::from_slice(&material) {
                break s;
            }
            material = sha2::Sha256::digest(material);
        };
        let der = secret.to_pkcs8_der().expect("a P-256 key encodes");
        let point = secret.public_key().to_sec1_point(false);
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let (x, y) = (point.x().expect("an uncompressed point"), point.y().expect("an uncompressed point"));
        let kid = hex(&sha2::Sha256::digest([x.as_slice(), y.as_slice()].concat())[..8]);
        let jwk = json!({"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64.encode(x), "y": b64.encode(y)});
        Issuer {
            issuer: issuer.into(),
            audience: audience.into(),
            kid,
            signing: EncodingKey::from_ec_der(der.as_bytes()),
            jwk,
        }
    }

    /// Its name (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience it signs for (`aud`).
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Its public keys as a JWKS document.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// Its public keys as a key set a [`Verifier`] takes.
    pub fn key_set(&self) -> JwkSet {
        serde_json::from_value(self.jwks()).expect("a JWKS it wrote")
    }

    /// A token for `grant`, issued at `now` (Unix seconds) and valid for `lifetime`.
    pub fn mint(&self, grant: &Grant, now: i64, lifetime: Duration) -> String {
        let claims = Minted {
            iss: &self.issuer,
            aud: &self.audience,
            sub: &grant.subject,
            iat: now,
            exp: now + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2),
            scope: &grant.scope,
            fhir_user: grant.fhir_user.as_deref(),
            patient: grant.patient.as_deref(),
            client_id: grant.client_id.as_deref(),
        };
        self.sign(&claims)
    }

    /// `claims` signed as they are (tests write the odd ones).
    pub fn sign(&self, claims: &impl Serialize) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).expect("claims of plain data sign")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! The development issuer's authorization server (`CALSYNC_ENV=local`): a SMART app signs a
//! person in exactly as it would against a real one, with the authorization code flow and PKCE.
//! `GET /auth/authorize` is a login page listing the people of the data (pick one, or decline);
//! `POST /auth/token` exchanges the code for a token of the development issuer. Absent (404)
//! wherever an outside issuer is configured.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use calsync_auth::{Grant, Issuer};
use calsync_usecase::search::SearchRequest;
use calsync_usecase::{Caller, UseCases};
use serde_json::{Value, json};
use sha2::Digest;

use crate::edge::Edge;
use crate::outcome::ApiError;

/// How long a code may wait for its exchange.
const CODE_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::seconds(120);

/// How long a token is valid.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Codes waiting for their exchange at most (older ones go first).
const MAX_PENDING: usize = 1_000;

/// People listed on the login page at most, per type.
const LISTED: u64 = 50;

/// The development issuer, and the codes it gave out.
#[derive(Debug)]
pub struct SignIn {
    issuer: Issuer,
    codes: Mutex<HashMap<String, Pending>>,
}

#[derive(Debug, Clone)]
struct Pending {
    grant: Grant,
    client_id: String,
    redirect_uri: String,
    challenge: String,
    expires: chrono::DateTime<chrono::Utc>,
}

impl SignIn {
    /// Sign-in with `issuer`'s tokens.
    pub fn new(issuer: Issuer) -> SignIn {
        SignIn { issuer, codes: Mutex::new(HashMap::new()) }
    }
}

/// Mounts the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/authorize").route(web::get().to(login_page)).route(web::post().to(signed_in)))
        .service(web::resource("/auth/token").route(web::post().to(token)));
}

/// What an authorization request carries.
#[derive(Debug, Clone)]
struct Asked {
    client_id: String,
    redirect_uri: String,
    scope: Option<String>,
    state: Option<String>,
    challenge: String,
}

fn asked(given: &HashMap<String, String>, base: &str) -> Result<Asked, ApiError> {
    let field = |name: &str| given.get(name).filter(|v| !v.is_empty()).cloned();
    if field("response_type").as_deref() != Some("code") {
        return Err(ApiError::bad_request("response_type must be code"));
    }
    let client_id = field("client_id").ok_or_else(|| ApiError::bad_request("client_id is required"))?;
    let redirect_uri = field("redirect_uri").ok_or_else(|| ApiError::bad_request("redirect_uri is required"))?;
    // A developer's app: on this machine, or on this server.
    let url = url::Url::parse(&redirect_uri).map_err(|_| ApiError::bad_request("redirect_uri is not a URL"))?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let here = redirect_uri.starts_with(&format!("{base}/"));
    if !(matches!(url.scheme(), "http" | "https") && (local || here)) {
        return Err(ApiError::bad_request("redirect_uri must be on this machine or this server (development issuer)"));
    }
    if field("code_challenge_method").as_deref() != Some("S256") {
        return Err(ApiError::bad_request("PKCE is required: code_challenge_method must be S256"));
    }
    let challenge = field("code_challenge").ok_or_else(|| ApiError::bad_request("code_challenge is required"))?;
    Ok(Asked { client_id, redirect_uri, scope: field("scope"), state: field("state"), challenge })
}

fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A person's name as written (`given family`), or their reference.
fn name_of(resource: &Value, reference: &str) -> String {
    let name = &resource["name"][0];
    let given = name["given"].as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(" ");
    let written = format!("{} {}", given, name["family"].as_str().unwrap_or_default()).trim().to_string();
    if written.is_empty() { reference.to_string() } else { written }
}

/// The people a developer can sign in as: Patients, RelatedPersons, Practitioners.
async fn people(cases: &UseCases, base: &str) -> Result<Vec<(String, String)>, ApiError> {
    let cx = cases.context(Caller::Operator, base);
    let mut found = Vec::new();
    for t in ["Patient", "RelatedPerson", "Practitioner"] {
        let request = SearchRequest::parse(t, &[("_count".into(), LISTED.to_string())], false, cx.now)?;
        for entry in cases.search(&cx, &request).await?.matches {
            let resource: Value = serde_json::from_str(&entry.json).unwrap_or_default();
            let reference = format!("{t}/{}", entry.id);
            found.push((name_of(&resource, &reference), reference));
        }
    }
    Ok(found)
}

async fn login_page(
    req: HttpRequest,
    edge: web::Data<Edge>,
    cases: web::Data<UseCases>,
    query: web::Query<HashMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    edge.sign_in.as_ref().ok_or_else(not_here)?;
    let base = edge.base(&req);
    asked(&query, &base)?;
    let hidden: String = query
        .iter()
        .map(|(k, v)| format!("<input type=hidden name=\"{}\" value=\"{}\">", escaped(k), escaped(v)))
        .collect();
    let choices: String = people(&cases, &base)
        .await?
        .iter()
        .enumerate()
        .map(|(n, (name, reference))| {
            format!(
                "<li><label><input type=radio name=person value=\"{r}\"{checked}> {name} <small>({r})</small></label>",
                r = escaped(reference),
                name = escaped(name),
                checked = if n == 0 { " checked" } else { "" }
            )
        })
        .collect();
    let page = format!(
        "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <title>Sign in to calsync (development)</title>\
         <main><h1>Sign in to calsync</h1>\
         <p>Development sign-in: pick who you are. A real deployment signs people in with its own identity provider.\
         <p>The app <strong>{client}</strong> asks for: <code>{scope}</code>\
         <form method=post action=\"/auth/authorize\">{hidden}<fieldset><legend>Who are you?</legend><ul>{choices}</ul></fieldset>\
         <button name=decision value=allow>Sign in and allow</button> <button name=decision value=deny>Decline</button></form></main>",
        client = escaped(query.get("client_id").map(String::as_str).unwrap_or_default()),
        scope = escaped(query.get("scope").map(String::as_str).unwrap_or("(the default scopes)")),
    );
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Security-Policy", "default-src 'none'; form-action 'self'"))
        .body(page))
}

async fn signed_in(
    req: HttpRequest,
    edge: web::Data<Edge>,
    cases: web::Data<UseCases>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let sign_in = edge.sign_in.as_ref().ok_or_else(not_here)?;
    let form = form_of(&body);
    let base = edge.base(&req);
    let asked = asked(&form, &base)?;
    let mut back =
        url::Url::parse(&asked.redirect_uri).map_err(|_| ApiError::bad_request("redirect_uri is not a URL"))?;
    if form.get("decision").map(String::as_str) != Some("allow") {
        back.query_pairs_mut().append_pair("error", "access_denied");
    } else {
        let person = form.get("person").ok_or_else(|| ApiError::bad_request("pick who you are"))?;
        let cx = cases.context(Caller::Operator, base.clone());
        let (t, id) = person.split_once('/').ok_or_else(|| ApiError::bad_request("person is Type/id"))?;
        let stored = cases.read(&cx, t, id).await?;
        // A caregiver acts for the patient they care for.
        let cares_for = stored.content["patient"]["reference"].as_str().map(String::from);
        let mut grant =
            Grant::acting_as(person, asked.scope.as_deref(), cares_for.as_deref()).map_err(ApiError::bad_request)?;
        grant.client_id = Some(asked.client_id.clone());
        let code = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let now = chrono::Utc::now();
        let mut codes = sign_in.codes.lock().unwrap_or_else(|e| e.into_inner());
        codes.retain(|_, p| p.expires > now);
        if codes.len() >= MAX_PENDING {
            return Err(ApiError::from(calsync_usecase::UseCaseError::Unavailable(
                "too many sign-ins are waiting for their code exchange: try again in a minute".into(),
            )));
        }
        let pending = Pending {
            grant,
            client_id: asked.client_id,
            redirect_uri: asked.redirect_uri,
            challenge: asked.challenge,
            expires: now + CODE_LIFETIME,
        };
        codes.insert(code.clone(), pending);
        back.query_pairs_mut().append_pair("code", &code);
    }
    if let Some(state) = &asked.state {
        back.query_pairs_mut().append_pair("state", state);
    }
    Ok(HttpResponse::Found()
        .insert_header(("Location", back.to_string()))
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}

/// An OAuth error answer (RFC 6749 §5.2).
fn oauth_error(error: &str, description: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({"error": error, "error_description": description}))
}

async fn token(edge: web::Data<Edge>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let sign_in = edge.sign_in.as_ref().ok_or_else(not_here)?;
    let form = form_of(&body);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "authorization_code" {
        return Ok(oauth_error("unsupported_grant_type", "only authorization_code (with PKCE)"));
    }
    let pending = sign_in.codes.lock().unwrap_or_else(|e| e.into_inner()).remove(field("code"));
    let Some(pending) = pending.filter(|p| p.expires > chrono::Utc::now()) else {
        return Ok(oauth_error("invalid_grant", "the code is unknown, used or expired"));
    };
    if pending.client_id != field("client_id") || pending.redirect_uri != field("redirect_uri") {
        return Ok(oauth_error("invalid_grant", "client_id and redirect_uri must be those of the authorization"));
    }
    let verifier = field("code_verifier");
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    if verifier.len() < 43 || challenge != pending.challenge {
        return Ok(oauth_error("invalid_grant", "the code_verifier does not match the code_challenge"));
    }
    let grant = &pending.grant;
    let access = sign_in.issuer.mint(grant, chrono::Utc::now().timestamp(), TOKEN_LIFETIME);
    let mut answer = json!({"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME.as_secs(),
        "scope": grant.scope});
    if let Some(patient) = &grant.patient {
        answer["patient"] = json!(patient);
    }
    if let Some(person) = &grant.fhir_user {
        answer["fhirUser"] = json!(person);
    }
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(answer))
}

/// A form body's fields (`application/x-www-form-urlencoded`), read after the sign-in is known
/// to be here; a repeated field keeps its first value.
fn form_of(body: &[u8]) -> HashMap<String, String> {
    let mut fields = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        fields.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    fields
}

fn not_here() -> ApiError {
    ApiError::not_found("this server does not sign people in: its issuer does (see /.well-known/smart-configuration)")
}

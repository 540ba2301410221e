//! The Google Calendar API v3 as calsync uses it: `GET /o/oauth2/v2/auth` (the consent page),
//! `POST /token` (authorization code with PKCE, and refresh) and `POST /calendar/v3/freeBusy`,
//! with Google's error bodies.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// The longest freeBusy range Google accepts.
pub const MAX_RANGE_DAYS: i64 = 90;

/// A fault the next request(s) to freeBusy get instead of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After` seconds.
    RateLimited { retry_after: u64 },
    /// 403 `rateLimitExceeded`.
    QuotaExceeded,
    /// 500 `backendError`.
    Backend,
    /// 401 `authError`: the access token is no longer valid.
    AccessTokenExpired,
}

/// One emulated Google account.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// Busy ranges of the primary calendar (freeBusy knows nothing else about events).
    pub busy: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The emulator's state, shared with the test that scripts it.
#[derive(Debug, Default)]
pub struct State {
    /// OAuth client id and secret the token endpoint accepts.
    pub client: (String, String),
    /// Refresh token → account id; removing one revokes it.
    pub refresh_tokens: HashMap<String, String>,
    /// Live access tokens → account id.
    pub access_tokens: HashMap<String, String>,
    /// Accounts by id.
    pub accounts: HashMap<String, Account>,
    /// Faults for the next freeBusy requests, in order.
    pub faults: VecDeque<Fault>,
    /// freeBusy requests answered (faults included), for tests.
    pub requests: usize,
    /// The consent page and its codes.
    pub consent: crate::consent::Consent,
    issued: usize,
}

/// A handle on a running emulator's state.
pub type Shared = Arc<Mutex<State>>;

impl State {
    /// A state with one OAuth client.
    pub fn new(client_id: &str, client_secret: &str) -> Shared {
        Arc::new(Mutex::new(State { client: (client_id.into(), client_secret.into()), ..Default::default() }))
    }

    /// Adds an account reachable with `refresh_token`.
    pub fn add_account(&mut self, id: &str, refresh_token: &str, account: Account) {
        self.accounts.insert(id.into(), account);
        self.refresh_tokens.insert(refresh_token.into(), id.into());
    }
}

/// Mounts the emulator's routes.
pub fn routes(state: Shared) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .route("/o/oauth2/v2/auth", web::get().to(authorize))
            .route("/token", web::post().to(token))
            .route("/calendar/v3/freeBusy", web::post().to(free_busy));
    }
}

fn google_error(status: u16, reason: &str, message: &str) -> HttpResponse {
    let code =
        actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(code).json(json!({"error": {
        "errors": [{"domain": if reason == "authError" { "global" } else { "usageLimits" }, "reason": reason, "message": message}],
        "code": status, "message": message}}))
}

async fn token(state: web::Data<Shared>, form: web::Form<HashMap<String, String>>) -> HttpResponse {
    let mut s = state.lock().expect("emulator state");
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if (field("client_id"), field("client_secret")) != (s.client.0.as_str(), s.client.1.as_str()) {
        return HttpResponse::Unauthorized()
            .json(json!({"error": "invalid_client", "error_description": "The OAuth client was not found."}));
    }
    if field("grant_type") == "authorization_code" {
        let Some(code) = s.consent.exchange(field("code"), field("redirect_uri"), field("code_verifier")) else {
            return HttpResponse::BadRequest()
                .json(json!({"error": "invalid_grant", "error_description": "Bad Request"}));
        };
        s.issued += 1;
        let access = format!("ya29.emulated-{}-{}", code.account, s.issued);
        s.access_tokens.insert(access.clone(), code.account.clone());
        let mut answer = json!({"access_token": access, "expires_in": 3599,
            "scope": "https://www.googleapis.com/auth/calendar.freebusy", "token_type": "Bearer"});
        if code.offline {
            let refresh = format!("1//emulated-{}-{}", code.account, s.issued);
            s.refresh_tokens.insert(refresh.clone(), code.account);
            answer["refresh_token"] = json!(refresh);
        }
        return HttpResponse::Ok().json(answer);
    }
    if field("grant_type") != "refresh_token" {
        return HttpResponse::BadRequest()
            .json(json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}));
    }
    let Some(account) = s.refresh_tokens.get(field("refresh_token")).cloned() else {
        return HttpResponse::BadRequest()
            .json(json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}));
    };
    s.issued += 1;
    let access = format!("ya29.emulated-{}-{}", account, s.issued);
    s.access_tokens.insert(access.clone(), account);
    HttpResponse::Ok().json(json!({"access_token": access, "expires_in": 3599,
        "scope": "https://www.googleapis.com/auth/calendar.freebusy", "token_type": "Bearer"}))
}

/// The consent page: consents at once as `consent.next_account`. A refresh token comes only
/// with `access_type=offline` and `prompt=consent`.
async fn authorize(state: web::Data<Shared>, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let mut s = state.lock().expect("emulator state");
    let offline = query.get("access_type").map(String::as_str) == Some("offline")
        && query.get("prompt").map(String::as_str) == Some("consent");
    let client = s.client.0.clone();
    crate::consent::respond(s.consent.authorize(&query, &client, offline))
}

async fn free_busy(req: HttpRequest, state: web::Data<Shared>, body: web::Json<Value>) -> HttpResponse {
    let mut s = state.lock().expect("emulator state");
    s.requests += 1;
    let bearer =
        req.headers().get("Authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(account) = bearer.and_then(|t| s.access_tokens.get(t)).cloned() else {
        return google_error(401, "authError", "Invalid Credentials");
    };
    match s.faults.pop_front() {
        Some(Fault::RateLimited { retry_after }) => {
            let mut r = google_error(429, "rateLimitExceeded", "Rate Limit Exceeded");
            r.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(retry_after));
            return r;
        }
        Some(Fault::QuotaExceeded) => return google_error(403, "rateLimitExceeded", "Rate Limit Exceeded"),
        Some(Fault::Backend) => return google_error(500, "backendError", "Backend Error"),
        Some(Fault::AccessTokenExpired) => {
            s.access_tokens.retain(|_, a| *a != account);
            return google_error(401, "authError", "Invalid Credentials");
        }
        None => {}
    }
    let time = |k: &str| body[k].as_str().and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc());
    let (Some(min), Some(max)) = (time("timeMin"), time("timeMax")) else {
        return google_error(400, "badRequest", "Bad Request");
    };
    if max <= min {
        return google_error(400, "timeRangeEmpty", "The specified time range is empty.");
    }
    if max - min > chrono::TimeDelta::days(MAX_RANGE_DAYS) {
        return google_error(400, "timeRangeTooLong", "The requested time range is too long.");
    }
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut calendars = serde_json::Map::new();
    for item in body["items"].as_array().into_iter().flatten() {
        let Some(id) = item["id"].as_str() else { continue };
        let entry = if id == "primary" || id == account {
            let busy: Vec<Value> = s.accounts[&account]
                .busy
                .iter()
                .filter(|(a, b)| *a < max && *b > min)
                .map(|(a, b)| json!({"start": stamp((*a).max(min)), "end": stamp((*b).min(max))}))
                .collect();
            json!({"busy": busy})
        } else {
            json!({"errors": [{"domain": "global", "reason": "notFound"}], "busy": []})
        };
        calendars.insert(id.to_string(), entry);
    }
    HttpResponse::Ok().json(json!({"kind": "calendar#freeBusy", "timeMin": stamp(min), "timeMax": stamp(max),
        "calendars": calendars}))
}

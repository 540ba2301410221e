//! Microsoft Graph as calsync uses it: the v2.0 token endpoint (`POST /{tenant}/oauth2/v2.0/token`,
//! refresh grant, a new refresh token on every refresh) and `GET /v1.0/me/calendarView` with
//! `$select`, `$top`, `@odata.nextLink` paging (10 per page unless `$top` says otherwise) and
//! `Prefer: outlook.timezone`. Graph's error bodies; scripted faults.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// One calendar event as Graph stores it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Start and end.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// free | tentative | busy | oof | workingElsewhere | unknown.
    pub show_as: String,
    /// All-day.
    pub all_day: bool,
    /// Cancelled.
    pub cancelled: bool,
    /// Subject: only sent when `$select` asks for it (calsync never does).
    pub subject: String,
}

/// A fault the next calendarView request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `TooManyRequests` with `Retry-After` seconds.
    Throttled { retry_after: u64 },
    /// 503 `ServiceNotAvailable`.
    Unavailable,
    /// 401 `InvalidAuthenticationToken`.
    AccessTokenExpired,
}

/// The emulator's state, shared with the test that scripts it.
#[derive(Debug, Default)]
pub struct State {
    /// OAuth client id and secret.
    pub client: (String, String),
    /// Valid refresh tokens → mailbox; each refresh replaces the used one.
    pub refresh_tokens: HashMap<String, String>,
    /// Access tokens → mailbox.
    pub access_tokens: HashMap<String, String>,
    /// Events by mailbox.
    pub mailboxes: HashMap<String, Vec<Event>>,
    /// What the next calendarView requests get, in order: a fault, or `None` for a normal
    /// answer (so a fault can hit the second page of a listing).
    pub faults: VecDeque<Option<Fault>>,
    /// calendarView pages served.
    pub pages: usize,
    /// Every `$select` asked for.
    pub selects: Vec<String>,
    /// Server-driven paging: at most this many events per page, whatever `$top` says.
    pub max_page: Option<usize>,
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
}

/// Mounts the emulator's routes.
pub fn routes(state: Shared) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .route("/{tenant}/oauth2/v2.0/authorize", web::get().to(authorize))
            .route("/{tenant}/oauth2/v2.0/token", web::post().to(token))
            .route("/v1.0/me/calendarView", web::get().to(calendar_view));
    }
}

fn graph_error(status: u16, code: &str, message: &str) -> HttpResponse {
    let s = actix_web::http::StatusCode::from_u16(status).unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(s).json(json!({"error": {"code": code, "message": message,
        "innerError": {"date": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "request-id": "emulated"}}}))
}

async fn token(state: web::Data<Shared>, form: web::Form<HashMap<String, String>>) -> HttpResponse {
    let mut s = state.lock().expect("emulator state");
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if (field("client_id"), field("client_secret")) != (s.client.0.as_str(), s.client.1.as_str()) {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client",
            "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]}));
    }
    if field("grant_type") == "authorization_code" {
        let Some(code) = s.consent.exchange(field("code"), field("redirect_uri"), field("code_verifier")) else {
            return HttpResponse::BadRequest().json(json!({"error": "invalid_grant",
                "error_description": "AADSTS70000: The provided value for the 'code' parameter is not valid.",
                "error_codes": [70000]}));
        };
        s.issued += 1;
        let access = format!("eyJ0.emulated-{}", s.issued);
        s.access_tokens.insert(access.clone(), code.account.clone());
        let mut answer = json!({"token_type": "Bearer", "scope": "Calendars.ReadBasic", "expires_in": 3599,
            "ext_expires_in": 3599, "access_token": access});
        if code.offline {
            let refresh = format!("M.R3_emulated-{}", s.issued);
            s.refresh_tokens.insert(refresh.clone(), code.account);
            answer["refresh_token"] = json!(refresh);
            answer["scope"] = json!("Calendars.ReadBasic offline_access");
        }
        return HttpResponse::Ok().json(answer);
    }
    let used = field("refresh_token").to_string();
    let Some(mailbox) = s.refresh_tokens.remove(&used) else {
        return HttpResponse::BadRequest().json(json!({"error": "invalid_grant",
            "error_description": "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.",
            "error_codes": [70008]}));
    };
    s.issued += 1;
    let (access, refresh) = (format!("eyJ0.emulated-{}", s.issued), format!("M.R3_emulated-{}", s.issued));
    s.access_tokens.insert(access.clone(), mailbox.clone());
    s.refresh_tokens.insert(refresh.clone(), mailbox);
    HttpResponse::Ok().json(json!({"token_type": "Bearer", "scope": "Calendars.ReadBasic offline_access",
        "expires_in": 3599, "ext_expires_in": 3599, "access_token": access, "refresh_token": refresh}))
}

/// The v2.0 consent page: consents at once as `consent.next_account`. A refresh token comes
/// only with the `offline_access` scope.
async fn authorize(state: web::Data<Shared>, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let mut s = state.lock().expect("emulator state");
    let offline = query.get("scope").is_some_and(|scope| scope.split(' ').any(|s| s == "offline_access"));
    let client = s.client.0.clone();
    crate::consent::respond(s.consent.authorize(&query, &client, offline))
}

async fn calendar_view(
    req: HttpRequest,
    state: web::Data<Shared>,
    query: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let mut s = state.lock().expect("emulator state");
    let bearer =
        req.headers().get("Authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let Some(mailbox) = bearer.and_then(|t| s.access_tokens.get(t)).cloned() else {
        return graph_error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.");
    };
    match s.faults.pop_front().flatten() {
        Some(Fault::Throttled { retry_after }) => {
            let mut r = graph_error(429, "TooManyRequests", "Too many requests");
            r.headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, actix_web::http::header::HeaderValue::from(retry_after));
            return r;
        }
        Some(Fault::Unavailable) => return graph_error(503, "ServiceNotAvailable", "Service unavailable"),
        Some(Fault::AccessTokenExpired) => {
            s.access_tokens.retain(|_, m| *m != mailbox);
            return graph_error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.");
        }
        None => {}
    }
    let time = |k: &str| query.get(k).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.to_utc());
    let (Some(from), Some(to)) = (time("startDateTime"), time("endDateTime")) else {
        return graph_error(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        );
    };
    let select: Vec<String> =
        query.get("$select").map(|s| s.split(',').map(String::from).collect()).unwrap_or_default();
    s.selects.push(select.join(","));
    let top: usize = query.get("$top").and_then(|t| t.parse().ok()).unwrap_or(10).clamp(1, 999);
    let top = s.max_page.map_or(top, |m| top.min(m.max(1)));
    let skip: usize = query.get("$skip").and_then(|t| t.parse().ok()).unwrap_or(0);
    let utc = req
        .headers()
        .get("Prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.replace(' ', "").contains("outlook.timezone=\"UTC\""));
    s.pages += 1;
    let events: Vec<&Event> = s
        .mailboxes
        .get(&mailbox)
        .map(|list| list.iter().filter(|e| e.start < to && e.end > from).collect())
        .unwrap_or_default();
    // Graph writes seven fractional digits: "2026-03-15T12:00:00.0000000".
    let seven = |t: DateTime<Utc>| {
        let nine = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
        nine[..nine.len() - 2].to_string()
    };
    let stamp = |t: DateTime<Utc>| {
        if utc {
            json!({"dateTime": seven(t), "timeZone": "UTC"})
        } else {
            json!({"dateTime": seven(t + chrono::TimeDelta::hours(-8)), "timeZone": "Pacific Standard Time"})
        }
    };
    let page: Vec<Value> = events
        .iter()
        .skip(skip)
        .take(top)
        .enumerate()
        .map(|(n, e)| {
            let mut item = json!({"@odata.etag": format!("W/\"{n}\""), "id": format!("AAMk-{}", skip + n)});
            let fields = [
                ("showAs", json!(e.show_as)),
                ("start", stamp(e.start)),
                ("end", stamp(e.end)),
                ("isAllDay", json!(e.all_day)),
                ("isCancelled", json!(e.cancelled)),
                ("subject", json!(e.subject)),
            ];
            for (name, value) in fields {
                if select.is_empty() || select.iter().any(|s| s == name) {
                    item[name] = value;
                }
            }
            item
        })
        .collect();
    let mut body = json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('emulated')/calendarView", "value": page});
    if skip + top < events.len() {
        let mut next = format!("{}://{}{}?", req.connection_info().scheme(), req.connection_info().host(), req.path());
        let mut params: Vec<(String, String)> =
            query.iter().filter(|(k, _)| k.as_str() != "$skip").map(|(k, v)| (k.clone(), v.clone())).collect();
        params.sort();
        params.push(("$skip".into(), (skip + top).to_string()));
        next += &params.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        body["@odata.nextLink"] = json!(next);
    }
    HttpResponse::Ok().json(body)
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'$' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

//! SMART App Launch discovery: `GET /.well-known/smart-configuration`, the `rest.security` of
//! the CapabilityStatement, and the development issuer's key set (`/.well-known/jwks.json`).
//! All public: an app reads them before it has a token.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::edge::Edge;
use crate::outcome::ApiError;

/// The scopes calsync reads (SMART v2 letters and v1 `read`/`write`/`*`, for every type).
pub const SCOPES_SUPPORTED: [&str; 10] = [
    "openid",
    "fhirUser",
    "launch/patient",
    "offline_access",
    "patient/*.cruds",
    "patient/*.rs",
    "user/*.cruds",
    "user/*.rs",
    "system/*.cruds",
    "system/*.rs",
];

/// Mounts the routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/.well-known/smart-configuration").route(web::get().to(configuration)))
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)));
}

/// The SMART configuration of this server, its endpoints absolute against `base`.
pub fn configuration_of(edge: &Edge, base: &str) -> Value {
    let smart = &edge.smart;
    let absolute = |e: &Option<String>| e.as_deref().map(|e| Edge::absolute(base, e));
    let mut c = json!({
        "scopes_supported": SCOPES_SUPPORTED,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "none"],
        "capabilities": ["launch-standalone", "client-public", "client-confidential-asymmetric",
            "context-standalone-patient", "permission-patient", "permission-user", "permission-v1", "permission-v2"],
    });
    for (name, value) in [
        ("issuer", smart.issuer.clone()),
        ("jwks_uri", absolute(&smart.jwks_uri)),
        ("authorization_endpoint", absolute(&smart.authorize)),
        ("token_endpoint", absolute(&smart.token)),
    ] {
        if let Some(v) = value {
            c[name] = json!(v);
        }
    }
    c
}

/// The CapabilityStatement's `rest.security`: SMART on FHIR, with the issuer's endpoints.
pub fn security_of(edge: &Edge, base: &str) -> Value {
    let smart = &edge.smart;
    let mut uris = Vec::new();
    for (url, endpoint) in [("authorize", &smart.authorize), ("token", &smart.token)] {
        if let Some(e) = endpoint {
            uris.push(json!({"url": url, "valueUri": Edge::absolute(base, e)}));
        }
    }
    let mut security = json!({
        "service": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
            "code": "SMART-on-FHIR"}], "text": "OAuth 2.0 bearer tokens (SMART App Launch 2, SMART Backend Services)"}],
        "description": "Every interaction needs a bearer token, except the CapabilityStatement, the SMART \
            configuration, OperationDefinitions, SearchParameters and the SMART Scheduling Links feed.",
    });
    if !uris.is_empty() {
        security["extension"] = json!([{"url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris", "extension": uris}]);
    }
    security
}

async fn configuration(req: HttpRequest, edge: web::Data<Edge>) -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").json(configuration_of(&edge, &edge.base(&req)))
}

async fn jwks(edge: web::Data<Edge>) -> Result<HttpResponse, ApiError> {
    match &edge.smart.development_jwks {
        Some(keys) => Ok(HttpResponse::Ok().content_type("application/json").json(keys)),
        None => Err(ApiError::not_found("this server issues no tokens: its issuer publishes their keys")),
    }
}

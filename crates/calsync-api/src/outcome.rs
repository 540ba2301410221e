//! Errors as FHIR OperationOutcomes with the right HTTP status.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError};
use calsync_usecase::UseCaseError;
use serde_json::json;

use crate::media;

/// The FHIR JSON media type, of every answer and of every error.
pub const FHIR_JSON: &str = "application/fhir+json";

/// Everything a request can fail with: what HTTP alone can get wrong (a method, a media type),
/// and what reading the request or a use case found ([`UseCaseError`], 400 for a bad request).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 405: the path exists, the method does not.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406: we cannot answer in the requested format.
    #[error("{0}")]
    NotAcceptable(String),
    /// 415: the body is not of a media type this route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The request or its use case.
    #[error(transparent)]
    Case(#[from] UseCaseError),
}

impl ApiError {
    /// 400: the request itself is wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::Case(UseCaseError::Invalid(message.into()))
    }

    /// 404: no such thing.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::Case(UseCaseError::NotFound(message.into()))
    }

    /// 500: our fault. The detail is logged, never sent.
    pub fn internal(detail: impl Into<String>) -> Self {
        ApiError::Case(UseCaseError::Internal(detail.into()))
    }

    fn issue_code(&self) -> &'static str {
        match self {
            ApiError::UnsupportedMediaType(_) | ApiError::NotAcceptable(_) => "invalid",
            ApiError::MethodNotAllowed(_) => "not-supported",
            ApiError::Case(e) => match e {
                UseCaseError::Invalid(_) => "invalid",
                UseCaseError::NotFound(_) | UseCaseError::Gone(_) => "not-found",
                UseCaseError::Conflict(_) | UseCaseError::VersionMismatch(_) => "conflict",
                UseCaseError::Unprocessable { .. } => "processing",
                UseCaseError::Unavailable(_) => "transient",
                UseCaseError::TooSoon { .. } => "throttled",
                UseCaseError::Unauthenticated(_) => "login",
                UseCaseError::Forbidden(_) => "forbidden",
                UseCaseError::Internal(_) => "exception",
            },
        }
    }
}

/// The answer on a known path to a method it does not take: 405.
pub(crate) async fn method_not_allowed(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(format!("{} is not supported on {}", req.method(), req.path())))
}

/// An OperationOutcome with one issue.
pub fn operation_outcome(severity: &str, code: &str, diagnostics: &str, expression: Option<&str>) -> serde_json::Value {
    let mut issue = json!({"severity": severity, "code": code, "diagnostics": diagnostics});
    if let Some(e) = expression {
        issue["expression"] = json!([e]);
    }
    json!({"resourceType": "OperationOutcome", "issue": [issue]})
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Case(e) => match e {
                UseCaseError::Invalid(_) => StatusCode::BAD_REQUEST,
                UseCaseError::NotFound(_) => StatusCode::NOT_FOUND,
                UseCaseError::Gone(_) => StatusCode::GONE,
                UseCaseError::Conflict(_) => StatusCode::CONFLICT,
                UseCaseError::VersionMismatch(_) => StatusCode::PRECONDITION_FAILED,
                UseCaseError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                UseCaseError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                UseCaseError::TooSoon { .. } => StatusCode::TOO_MANY_REQUESTS,
                UseCaseError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                UseCaseError::Forbidden(_) => StatusCode::FORBIDDEN,
                UseCaseError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let expression = match self {
            ApiError::Case(UseCaseError::Unprocessable { expression, .. }) => expression.as_deref(),
            _ => None,
        };
        let diagnostics = match self {
            // Our fault: the cause goes to the log under an id the client can quote, never to the
            // client.
            ApiError::Case(UseCaseError::Internal(cause)) => {
                let id = error_id();
                tracing::error!(error_id = %id, cause = %cause, "internal error");
                format!("internal error (error id {id})")
            }
            _ => self.to_string(),
        };
        let body = operation_outcome("error", self.issue_code(), &diagnostics, expression);
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Case(UseCaseError::TooSoon { retry_after, .. }) => {
                response
                    .insert_header((actix_web::http::header::RETRY_AFTER, retry_after.as_secs().max(1).to_string()));
            }
            // RFC 6750: how to authenticate, and whether the token sent was the problem.
            ApiError::Case(UseCaseError::Unauthenticated(why)) => {
                let challenge = if why.contains("not accepted") {
                    r#"Bearer realm="calsync", error="invalid_token""#
                } else {
                    r#"Bearer realm="calsync""#
                };
                response.insert_header((actix_web::http::header::WWW_AUTHENTICATE, challenge));
            }
            _ => {}
        }
        response.content_type(FHIR_JSON).body(body.to_string())
    }
}

/// An id for one internal error, in the log and in the answer.
fn error_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Middleware hook: any error response not already FHIR (unknown route, wrong method, body too
/// large, framework errors) becomes an OperationOutcome with the same status.
pub fn as_operation_outcome<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if matches!(res.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        audit_refusal(res.request());
    }
    // FHIR answers, and OAuth's JSON errors (the development sign-in's token endpoint), stand.
    let is_final = res
        .response()
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(FHIR_JSON) || v.starts_with("application/json"));
    if is_final {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, text) = match status {
        StatusCode::NOT_FOUND => ("not-found", "no such resource type or endpoint".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => ("not-supported", "this method is not supported here".to_string()),
        StatusCode::PAYLOAD_TOO_LARGE => {
            let pattern = res.request().match_pattern().unwrap_or_default();
            (
                "too-costly",
                format!("the request body is larger than {} bytes, the limit here", media::body_limit(&pattern)),
            )
        }
        s if s.is_server_error() => {
            let id = error_id();
            tracing::error!(error_id = %id, status = s.as_u16(), route = %res.request().match_pattern().unwrap_or_default(), "internal error");
            ("exception", format!("internal error (error id {id})"))
        }
        s => ("invalid", s.canonical_reason().unwrap_or("bad request").to_string()),
    };
    let body = operation_outcome("error", code, &text, None).to_string();
    let (req, res) = res.into_parts();
    let mut res = res.set_body(BoxBody::new(body));
    res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, res).map_into_right_body()))
}

/// Puts a 401 or 403 on the audit trail: who (as far as known), what method on which route
/// (its pattern: never the query or the ids it named).
fn audit_refusal(req: &actix_web::HttpRequest) {
    use actix_web::HttpMessage;
    use calsync_fhir::audit::Action;
    let Some(cases) = req.app_data::<actix_web::web::Data<calsync_usecase::UseCases>>() else { return };
    let cx = match req.extensions().get::<calsync_usecase::Context>() {
        Some(cx) => cx.clone(),
        None => cases.context(calsync_usecase::Caller::Anonymous, String::new()),
    };
    let (action, subtype) = match *req.method() {
        actix_web::http::Method::POST => (Action::Execute, "create"),
        actix_web::http::Method::PUT => (Action::Update, "update"),
        actix_web::http::Method::DELETE => (Action::Delete, "delete"),
        _ => (Action::Read, "read"),
    };
    let route = req.match_pattern().unwrap_or_else(|| "unknown route".into());
    cases.audit_refusal(
        &cx,
        calsync_usecase::audit::Done {
            action,
            subtype,
            patients: Vec::new(),
            what: vec![format!("{} {route}", req.method())],
        },
    );
}

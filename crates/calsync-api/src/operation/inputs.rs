//! An operation's input: from the query string and, for POST, a Parameters resource (or a bare
//! resource, the operation's main input).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use calsync_usecase::UseCases;
use serde_json::Value;

use crate::context::RequestContext;
use crate::media;
use crate::outcome::ApiError;

/// An operation's call, as its handler starts from it: the request (whose answer is FHIR JSON,
/// negotiated), its context, the use cases, and its parameters, read.
pub struct Call {
    /// The request.
    pub req: HttpRequest,
    /// Who asks, and when.
    pub cx: RequestContext,
    /// The use cases.
    pub cases: web::Data<UseCases>,
    /// The parameters.
    pub inputs: Inputs,
}

impl FromRequest for Call {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let body = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = body.await?;
            let cx = RequestContext::extract(&req).await?;
            let cases = web::Data::<UseCases>::extract(&req).await?;
            media::negotiate(&req)?;
            let inputs = Inputs::read(&req, &body)?;
            Ok(Call { req, cx, cases, inputs })
        })
    }
}

/// An operation's input: from the query string and, for POST, a Parameters resource.
#[derive(Debug, Default)]
pub struct Inputs {
    /// Primitive values as text (references as their `reference`), by parameter name.
    pub values: Vec<(String, String)>,
    /// Resource parameters, by name.
    pub resources: Vec<(String, Value)>,
}

impl Inputs {
    /// Reads the query string and a Parameters body (empty body allowed).
    pub fn read(req: &HttpRequest, body: &[u8]) -> Result<Self, ApiError> {
        if !body.iter().all(u8::is_ascii_whitespace) {
            media::require_json_body(req)?;
        }
        Inputs::parse(req.query_string(), body)
    }

    /// Reads a query string and a body taken as FHIR JSON (a Parameters resource, or a bare
    /// resource as the operation's main input; empty allowed).
    pub fn parse(query: &str, body: &[u8]) -> Result<Self, ApiError> {
        let mut inputs = Inputs { values: media::query_pairs(query, false)?, resources: Vec::new() };
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(inputs);
        }
        let v: Value =
            serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
        match v["resourceType"].as_str() {
            Some("Parameters") => {}
            // A bare resource is the operation's main input.
            Some(_) => {
                inputs.resources.push(("resource".into(), v));
                return Ok(inputs);
            }
            None => return Err(ApiError::bad_request("the body must be a FHIR resource (Parameters)")),
        }
        for p in v["parameter"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().ok_or_else(|| ApiError::bad_request("a parameter without name"))?;
            if let Some(r) = p.get("resource") {
                inputs.resources.push((name.to_string(), r.clone()));
                continue;
            }
            let Some((key, value)) = p.as_object().and_then(|o| o.iter().find(|(k, _)| k.starts_with("value"))) else {
                return Err(ApiError::bad_request(format!("parameter {name:?} has no value")));
            };
            let text = match (key.as_str(), value) {
                (_, Value::String(s)) => s.clone(),
                (_, Value::Bool(b)) => b.to_string(),
                (_, Value::Number(n)) => n.to_string(),
                ("valueReference", r) => r["reference"].as_str().unwrap_or_default().to_string(),
                ("valueDuration" | "valueQuantity", q) => {
                    let n = q["value"].as_f64().unwrap_or(0.0);
                    match q["code"].as_str().or(q["unit"].as_str()).unwrap_or("min") {
                        "h" => format!("{}", (n * 60.0).round()),
                        "d" => format!("{}", (n * 1440.0).round()),
                        _ => format!("{}", n.round()),
                    }
                }
                _ => return Err(ApiError::bad_request(format!("parameter {name:?}: {key} is not supported"))),
            };
            inputs.values.push((name.to_string(), text));
        }
        Ok(inputs)
    }

    /// Every value of `name` (comma-separated values split).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()))
            .collect()
    }

    /// The single value of `name`, if given.
    pub fn one(&self, name: &str) -> Result<Option<String>, ApiError> {
        let mut all = self.values.iter().filter(|(k, _)| k == name);
        let first = all.next().map(|(_, v)| v.clone());
        if all.next().is_some() {
            return Err(ApiError::bad_request(format!("{name} may be given once")));
        }
        Ok(first)
    }

    /// A boolean flag (`true`/`false`), false when absent.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.one(name)?.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!("{name}={other:?}: use true or false"))),
        }
    }

    /// The resource parameter `name`.
    pub fn resource(&self, name: &str) -> Option<&Value> {
        self.resources.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

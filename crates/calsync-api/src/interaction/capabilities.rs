//! `GET /metadata`: the CapabilityStatement, generated from the registry.

use actix_web::{HttpRequest, HttpResponse, web};
use calsync_usecase::search::{END_SEARCH_PARAMETER, SEARCH_PARAMS, includes_from, revincludes_onto};
use serde_json::json;

use crate::context::RequestContext;
use crate::edge::Edge;
use crate::media::{self, FHIR_JSON};
use crate::operation::definition::{OPERATIONS, canonical};
use crate::outcome::ApiError;
use crate::registry::{RESOURCES, interactions_of};

pub async fn handle(req: HttpRequest, cx: RequestContext, edge: web::Data<Edge>) -> Result<HttpResponse, ApiError> {
    media::negotiate(&req)?;
    let resources: Vec<serde_json::Value> = RESOURCES
        .iter()
        .map(|r| {
            let mut params =
                vec![json!({"name": "_id", "type": "token"}), json!({"name": "_lastUpdated", "type": "date"})];
            params.extend(SEARCH_PARAMS.iter().filter(|(t, ..)| t == r).map(|(_, name, kind, doc)| {
                let mut p = json!({"name": name, "type": kind, "documentation": doc});
                if *name == "end" {
                    p["definition"] = json!(END_SEARCH_PARAMETER);
                }
                p
            }));
            params.extend(
                calsync_fhir::index::PARAMS
                    .iter()
                    .filter(|p| p.resource_type == *r)
                    .map(|p| json!({"name": p.name, "type": p.kind.code()})),
            );
            json!({
                "type": r,
                "versioning": "versioned",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": true,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
                "interaction": interactions_of(r).map(|i| json!({"code": i.code()})).collect::<Vec<_>>(),
                "searchParam": params,
                "searchInclude": includes_from(r).iter().map(|p| format!("{r}:{p}")).collect::<Vec<_>>(),
                "searchRevInclude": revincludes_onto(r).iter().map(|(s, p)| format!("{s}:{p}")).collect::<Vec<_>>(),
                "operation": OPERATIONS
                    .iter()
                    .filter(|o| o.resource == *r)
                    .map(|o| json!({"name": o.code, "definition": canonical(o.id)}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut statement = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": cx.now.format("%Y-%m-%d").to_string(),
        "kind": "instance",
        "software": {"name": "calsync", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "calsync FHIR R4 facade", "url": cx.base},
        "fhirVersion": "4.0.1",
        "format": ["json", FHIR_JSON, "xml", crate::xml::FHIR_XML],
        "rest": [{"mode": "server", "security": crate::smart::security_of(&edge, &cx.base), "resource": resources}],
    });
    // FHIR JSON has no empty arrays (a type without includes or operations lists none).
    calsync_fhir::xml::without_empty(&mut statement);
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(media::body(&req, &statement)))
}

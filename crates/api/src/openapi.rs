//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers' annotations and
//! the response types, so it cannot drift from what the server does.

use crate::{deliveries, error, health, steps};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "stephook",
        description = "Steps in Letta's API shape, webhook deliveries and their redelivery."
    ),
    paths(
        steps::retrieve_step,
        steps::list_steps,
        steps::step_metrics,
        steps::step_messages,
        deliveries::list_deliveries,
        deliveries::delivery_counts,
        deliveries::get_delivery,
        deliveries::redeliver_one,
        deliveries::redeliver_all,
        health::healthz,
    ),
    components(schemas(error::ErrorBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the operations refer to (STEPHOOK_API_TOKEN).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

//! `stephook serve`: one HTTP server over the step store.
//!
//! - `/v1/steps...`: steps in Letta's API shape ([`steps`]), so Letta's clients work unchanged;
//! - `/v1/deliveries...`: notifications, their attempts and redelivery ([`deliveries`]);
//! - `/healthz` (no auth), `/openapi.json` (generated from the handlers' types);
//! - `/`: the delivery console, static files embedded from `console/`.
//!
//! With a token configured every `/v1` route and `/openapi.json` need `Authorization: Bearer`.
//! Every route answers only its own `Host` names, and refuses writes a browser marks as
//! cross-site ([`same_origin`]).

mod auth;
pub mod config;
mod console;
pub mod deliveries;
mod error;
mod health;
mod openapi;
pub mod paging;
pub mod same_origin;
mod server;
pub mod steps;
pub mod time;

pub use config::{ApiArgs, ApiConfig};
pub use error::{ApiError, ErrorBody};
pub use openapi::ApiDoc;
pub use server::{BoundApi, ServeError, bind};

use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;
use stephook_core::{Endpoint, Secret};
use stephook_store::Store;

/// What every handler reads.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
    /// See [`ApiConfig::current_endpoint`].
    pub current_endpoint: Option<Endpoint>,
    pub counts: deliveries::CountsCache,
}

/// The whole application: API routes behind the token (when one is set), health and console
/// open, everything behind the same-origin guard.
pub fn router(
    store: Store,
    token: Option<Secret>,
    current_endpoint: Option<Endpoint>,
    same_origin: same_origin::SameOrigin,
) -> Router {
    let state = AppState {
        store,
        current_endpoint,
        counts: Default::default(),
    };
    let protected = Router::new()
        .route("/v1/steps", get(steps::list_steps))
        .route("/v1/steps/", get(steps::list_steps))
        .route("/v1/steps/{step_id}", get(steps::retrieve_step))
        .route("/v1/steps/{step_id}/metrics", get(steps::step_metrics))
        .route("/v1/steps/{step_id}/messages", get(steps::step_messages))
        .route("/v1/deliveries", get(deliveries::list_deliveries))
        .route("/v1/deliveries/counts", get(deliveries::delivery_counts))
        .route("/v1/deliveries/redeliver", post(deliveries::redeliver_all))
        .route("/v1/deliveries/{step_id}", get(deliveries::get_delivery))
        .route(
            "/v1/deliveries/{step_id}/redeliver",
            post(deliveries::redeliver_one),
        )
        .route("/openapi.json", get(openapi::openapi_json))
        .route_layer(axum::middleware::from_fn_with_state(
            auth::RequiredToken(Arc::new(token)),
            auth::require_token,
        ));
    Router::new()
        .merge(protected)
        .route("/healthz", get(health::healthz))
        .route("/", get(console::index))
        .route("/console.js", get(console::script))
        .route("/console.css", get(console::style))
        .layer(axum::middleware::from_fn_with_state(
            same_origin,
            same_origin::guard,
        ))
        .with_state(state)
}

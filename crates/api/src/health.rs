//! `GET /healthz`: 200 when the store answers a trivial query in time, 503 otherwise. No
//! authentication, so load balancers and orchestrators can probe it.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// A probe that waits longer than this is answered 503: a store this slow is not healthy.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// Why the store is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "The store answers", body = Health),
        (status = 503, description = "The store does not answer", body = Health),
    )
)]
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let detail = match tokio::time::timeout(PING_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => {
            tracing::warn!(%error, "health check: the store failed");
            Some("the step store failed".to_owned())
        }
        Err(_) => Some(format!(
            "the step store did not answer within {} ms",
            PING_TIMEOUT.as_millis()
        )),
    };
    match detail {
        None => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                detail: None,
            }),
        ),
        Some(detail) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable".into(),
                detail: Some(detail),
            }),
        ),
    }
}

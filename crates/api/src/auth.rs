//! Bearer-token authentication for the API routes. The token is compared in constant time, so
//! response timing does not reveal how much of a guess was right.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use stephook_core::Secret;
use subtle::ConstantTimeEq;

const BEARER_PREFIX: &str = "Bearer ";

/// The token a request must carry; `None` lets every request through (loopback only, enforced
/// when the configuration is validated).
#[derive(Clone, Debug)]
pub struct RequiredToken(pub Arc<Option<Secret>>);

pub async fn require_token(
    State(required): State<RequiredToken>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = required.0.as_ref() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix(BEARER_PREFIX))
        .map(str::trim);
    match presented {
        // `ct_eq` on slices of different lengths is false at once: that reveals the token's
        // length only, never its content.
        Some(token) if bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes())) => {
            next.run(request).await
        }
        _ => ApiError::Unauthorized.into_response(),
    }
}

//! The delivery API: the outbox rows with their attempts, and redelivery (re-queue for the
//! dispatchers, same `webhook-id`, schedule restarted, history kept). What the console shows.

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::paging::page_limit;
use crate::steps::parse_step_id;
use crate::time::iso;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use stephook_store::{Attempt, Delivery, DeliveryQuery, DeliveryState};
use utoipa::{IntoParams, ToSchema};

/// The longest attempt history one answer carries (oldest first).
const MAX_ATTEMPTS_SHOWN: i64 = 1000;
/// Dead rows re-queued per transaction when redelivering them all: bounds memory and lock time.
const REQUEUE_PAGE: i64 = 500;
/// The most step ids a bulk redelivery lists in its answer; the count covers them all.
const MAX_IDS_REPORTED: usize = 1000;

/// One notification: its state and what its attempts came to.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub step_id: String,
    /// The step's terminal status the notification is about.
    pub step_status: String,
    /// `pending`, `retrying`, `delivered` or `dead`.
    pub state: String,
    /// What produced it: `direct`, `temporal` or `operator`.
    pub source: String,
    /// Attempts since it was (re)queued, by either path.
    pub attempts: i64,
    /// Dispatcher attempts since it was (re)queued: its place in the retry schedule.
    pub scheduled_attempts: i64,
    pub next_attempt_at: Option<String>,
    pub last_http_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub delivered_at: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            step_id: d.step_id.to_string(),
            step_status: d.step_status.as_str().to_owned(),
            state: d.state.as_str().to_owned(),
            source: d.source,
            attempts: d.attempts,
            scheduled_attempts: d.scheduled_attempts,
            next_attempt_at: d.next_attempt_at.and_then(iso),
            last_http_status: d.last_http_status,
            last_error: d.last_error,
            last_duration_ms: d.last_duration_ms,
            delivered_at: d.delivered_at.and_then(iso),
            created_at: iso(d.created_at),
            updated_at: iso(d.updated_at),
        }
    }
}

/// One attempt of the history (kept across redeliveries).
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    /// `activity` (Temporal's fast path) or `dispatcher`.
    pub path: String,
    pub attempted_at: Option<String>,
    pub duration_ms: i64,
    /// delivered, timeout, http_status, transport, ...
    pub outcome: String,
    pub http_status: Option<i64>,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        Self {
            path: a.path.as_str().to_owned(),
            attempted_at: iso(a.attempted_at),
            duration_ms: a.duration_ms,
            outcome: a.outcome,
            http_status: a.http_status,
            error: a.error,
        }
    }
}

/// A delivery with its attempt history.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    /// Every recorded attempt, oldest first.
    pub history: Vec<AttemptView>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// How many deliveries are in each state.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub retrying: i64,
    pub delivered: i64,
    pub dead: i64,
    pub total: i64,
}

/// What a redelivery queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivered {
    /// How many notifications were queued again.
    pub count: u64,
    /// Their step ids (the first 1000 of a bulk redelivery).
    pub queued: Vec<String>,
    /// Whether `queued` lists fewer than `count`.
    pub truncated: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// Only deliveries in this state: pending, retrying, delivered or dead.
    pub state: Option<String>,
    /// Only this step's delivery.
    pub step_id: Option<String>,
    /// Page size: default 50, at most 1000.
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RedeliverAllParams {
    /// Which deliveries to queue again; only `dead` is accepted.
    pub state: String,
}

fn parse_state(raw: &str) -> Result<DeliveryState, ApiError> {
    raw.parse()
        .map_err(|e: stephook_store::InvalidDeliveryState| {
            ApiError::Unprocessable(format!("state: {e}"))
        })
}

#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "deliveries",
    params(DeliveryListParams),
    responses(
        (status = 200, description = "A page of deliveries, newest first", body = DeliveryPage),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "The cursor names no delivery", body = ErrorBody),
        (status = 422, description = "A malformed parameter", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    params: Result<Query<DeliveryListParams>, QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let Query(params) = params?;
    let limit = page_limit(params.limit)?;
    let query = DeliveryQuery {
        state: params.state.as_deref().map(parse_state).transpose()?,
        step_id: params.step_id.as_deref().map(parse_step_id).transpose()?,
        after: params.cursor.as_deref().map(parse_step_id).transpose()?,
        // One more than asked tells whether there is a next page.
        limit: limit + 1,
    };
    let mut rows = state.store.query_deliveries(&query).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = more
        .then(|| rows.last().map(|d| d.step_id.to_string()))
        .flatten();
    Ok(Json(DeliveryPage {
        deliveries: rows.into_iter().map(DeliveryView::from).collect(),
        next_cursor,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/deliveries/counts",
    tag = "deliveries",
    responses(
        (status = 200, description = "Deliveries per state", body = DeliveryCounts),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delivery_counts(
    State(state): State<AppState>,
) -> Result<Json<DeliveryCounts>, ApiError> {
    let mut counts = DeliveryCounts::default();
    for (delivery_state, n) in state.store.count_deliveries().await? {
        match delivery_state {
            DeliveryState::Pending => counts.pending += n,
            DeliveryState::Retrying => counts.retrying += n,
            DeliveryState::Delivered => counts.delivered += n,
            DeliveryState::Dead => counts.dead += n,
        }
        counts.total += n;
    }
    Ok(Json(counts))
}

#[utoipa::path(
    get,
    path = "/v1/deliveries/{step_id}",
    tag = "deliveries",
    params(("step_id" = String, Path, description = "step-<uuid>")),
    responses(
        (status = 200, description = "The delivery with its attempt history", body = DeliveryDetail),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No delivery for this step", body = ErrorBody),
        (status = 422, description = "Malformed step id", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_delivery(
    State(state): State<AppState>,
    Path(step_id): Path<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let id = parse_step_id(&step_id)?;
    let delivery = state
        .store
        .delivery(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no delivery for step {id}")))?;
    let history = state.store.attempts(&id, MAX_ATTEMPTS_SHOWN).await?;
    Ok(Json(DeliveryDetail {
        delivery: delivery.into(),
        history: history.into_iter().map(AttemptView::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/deliveries/{step_id}/redeliver",
    tag = "deliveries",
    params(("step_id" = String, Path, description = "step-<uuid>")),
    responses(
        (status = 200, description = "Queued again (idempotent)", body = Redelivered),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such step", body = ErrorBody),
        (status = 409, description = "The step is still pending: nothing to notify yet", body = ErrorBody),
        (status = 422, description = "Malformed step id", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn redeliver_one(
    State(state): State<AppState>,
    Path(step_id): Path<String>,
) -> Result<Json<Redelivered>, ApiError> {
    let id = parse_step_id(&step_id)?;
    state.store.requeue(&id).await?;
    tracing::info!(step_id = %id, "redelivery queued through the API");
    Ok(Json(Redelivered {
        count: 1,
        queued: vec![id.to_string()],
        truncated: false,
    }))
}

#[utoipa::path(
    post,
    path = "/v1/deliveries/redeliver",
    tag = "deliveries",
    params(RedeliverAllParams),
    responses(
        (status = 200, description = "What was queued again; a repeat queues nothing more", body = Redelivered),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 422, description = "A state other than dead", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn redeliver_all(
    State(state): State<AppState>,
    params: Result<Query<RedeliverAllParams>, QueryRejection>,
) -> Result<Json<Redelivered>, ApiError> {
    let Query(params) = params?;
    if parse_state(&params.state)? != DeliveryState::Dead {
        return Err(ApiError::Unprocessable(format!(
            "state: only dead deliveries can be redelivered in bulk, not {:?}",
            params.state
        )));
    }
    let mut answer = Redelivered {
        count: 0,
        queued: Vec::new(),
        truncated: false,
    };
    let mut after = None;
    loop {
        let page = state
            .store
            .requeue_dead_page(after.as_ref(), REQUEUE_PAGE)
            .await?;
        answer.count += page.len() as u64;
        for id in &page {
            if answer.queued.len() < MAX_IDS_REPORTED {
                answer.queued.push(id.to_string());
            } else {
                answer.truncated = true;
            }
        }
        if (page.len() as i64) < REQUEUE_PAGE {
            break;
        }
        after = page.last().cloned();
    }
    tracing::info!(
        count = answer.count,
        "dead deliveries queued again through the API"
    );
    Ok(Json(answer))
}

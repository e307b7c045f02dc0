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
use std::sync::Arc;
use std::time::{Duration, Instant};
use stephook_core::Endpoint;
use stephook_store::{
    Attempt, Delivery, DeliveryQuery, DeliveryState, Rebind, RequeueOutcome, ServedEndpoint,
};
use tokio::sync::Mutex;
use utoipa::{IntoParams, ToSchema};

/// The longest attempt history one answer carries (oldest first).
const MAX_ATTEMPTS_SHOWN: i64 = 1000;
/// Dead rows re-queued per transaction when redelivering them all: bounds memory and lock time.
const REQUEUE_PAGE: i64 = 500;
/// The most step ids a bulk redelivery lists in its answer; the count covers them all.
const MAX_IDS_REPORTED: usize = 1000;
/// Each state is counted up to this many: the counts cost the same at any number of rows.
const COUNT_CAP: i64 = 10_000;
/// Every console tab asks for the counts every few seconds; they are computed at most this
/// often, whatever the number of tabs.
const COUNTS_FRESH_FOR: Duration = Duration::from_secs(2);

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
    /// The endpoint it is for, with secrets redacted; `null` until an endpoint takes it.
    pub endpoint: Option<String>,
    /// A holder (a dispatcher or the webhook activity) is sending it right now.
    pub in_flight: bool,
    /// For a waiting notification: whether a running dispatcher serves its endpoint. `false`
    /// means it waits for a dispatcher of that endpoint (or an operator's
    /// `redeliver?to_current_endpoint=true`). `null` when it is not waiting.
    pub endpoint_served: Option<bool>,
    /// The step's run and agent (`null` once retention has deleted the step).
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
}

impl DeliveryView {
    /// The view of `d`, given the endpoints running dispatchers serve.
    pub fn of(d: Delivery, served: &[ServedEndpoint]) -> Self {
        let endpoint_served = d
            .is_waiting()
            .then(|| is_served(d.endpoint.as_ref(), served));
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
            endpoint: d.endpoint.map(|e| e.shown().to_owned()),
            in_flight: d.held,
            endpoint_served,
            run_id: d.run_id,
            agent_id: d.agent_id,
        }
    }
}

/// A row with no endpoint yet is taken by any dispatcher; one with an endpoint only by that
/// endpoint's.
fn is_served(endpoint: Option<&Endpoint>, served: &[ServedEndpoint]) -> bool {
    match endpoint {
        None => !served.is_empty(),
        Some(endpoint) => served
            .iter()
            .any(|s| s.endpoint.fingerprint() == endpoint.fingerprint()),
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
    /// Where it went, secrets redacted (`null` for attempts recorded before 0.3).
    pub url: Option<String>,
    /// `held` (its result was recorded on the row) or `lease_lost` (its holder had lost the row
    /// by the time it answered: the send happened, the row went on without it).
    pub fence: String,
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
            url: a.url,
            fence: a.fence.as_str().to_owned(),
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

/// How many deliveries are in each state. Each state is counted up to `cap`: a count equal to
/// `cap` means at least that many (listed in `capped`).
#[derive(Debug, Default, Clone, Serialize, ToSchema)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub retrying: i64,
    pub delivered: i64,
    pub dead: i64,
    pub total: i64,
    /// Waiting notifications that no running dispatcher serves (their endpoint's dispatchers
    /// are not running): they are sent when one starts, or when an operator moves them.
    pub waiting_unserved: i64,
    /// The endpoints running dispatchers serve, secrets redacted.
    pub served_endpoints: Vec<String>,
    /// This server's own webhook URL (redacted), where `to_current_endpoint` moves
    /// notifications; `null` without one.
    pub current_endpoint: Option<String>,
    pub cap: i64,
    /// States whose count reached `cap`.
    pub capped: Vec<String>,
}

/// The counts, computed at most once per [`COUNTS_FRESH_FOR`] for every client together.
#[derive(Debug, Default, Clone)]
pub struct CountsCache(Arc<Mutex<Option<(Instant, DeliveryCounts)>>>);

/// What a redelivery did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Redelivered {
    /// How many notifications were queued again.
    pub count: u64,
    /// Their step ids (the first 1000 of a bulk redelivery).
    pub queued: Vec<String>,
    /// Whether `queued` lists fewer than `count`.
    pub truncated: bool,
    /// Notifications left as they were, and why: `in_flight` (a holder is sending it right
    /// now; its result will show) or `already_queued` (it already waits to be sent now).
    pub unchanged: Vec<Unchanged>,
    /// Where the queued notifications go, secrets redacted, when they were moved there
    /// (`to_current_endpoint`).
    pub endpoint: Option<String>,
}

/// A notification a redelivery left alone.
#[derive(Debug, Serialize, ToSchema)]
pub struct Unchanged {
    pub step_id: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RedeliverOneParams {
    /// Send it to this server's own webhook URL instead of the endpoint it was committed for.
    #[serde(default)]
    pub to_current_endpoint: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// Only deliveries in this state: pending, retrying, delivered or dead.
    pub state: Option<String>,
    /// Only this step's delivery.
    pub step_id: Option<String>,
    /// Only the notifications of this run's steps (the run id, or the workflow id
    /// `agent-run-<run id>`).
    pub run_id: Option<String>,
    /// ISO 8601: notifications created at or after this time.
    pub created_after: Option<String>,
    /// ISO 8601: notifications created before this time.
    pub created_before: Option<String>,
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
    /// Send them to this server's own webhook URL instead of the endpoints they were committed
    /// for.
    #[serde(default)]
    pub to_current_endpoint: bool,
}

fn parse_state(raw: &str) -> Result<DeliveryState, ApiError> {
    raw.parse()
        .map_err(|e: stephook_store::InvalidDeliveryState| {
            ApiError::Unprocessable(format!("state: {e}"))
        })
}

/// The endpoint a redelivery moves notifications to, when asked to.
fn rebind(state: &AppState, to_current_endpoint: bool) -> Result<Rebind<'_>, ApiError> {
    if !to_current_endpoint {
        return Ok(Rebind::Keep);
    }
    state
        .current_endpoint
        .as_ref()
        .map(Rebind::To)
        .ok_or_else(|| {
            ApiError::Unprocessable(
                "to_current_endpoint: this server has no webhook URL (STEP_COMPLETE_WEBHOOK), so \
             there is no current endpoint to move notifications to"
                    .to_owned(),
            )
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
        run_id: params
            .run_id
            .as_deref()
            .map(|run| stephook_core::run_id_of(run).to_owned()),
        created_from: crate::time::query_date("created_after", params.created_after.as_deref())?,
        created_before: crate::time::query_date(
            "created_before",
            params.created_before.as_deref(),
        )?,
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
    let served = state.store.served_endpoints().await?;
    Ok(Json(DeliveryPage {
        deliveries: rows
            .into_iter()
            .map(|d| DeliveryView::of(d, &served))
            .collect(),
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
    let mut cached = state.counts.0.lock().await;
    if let Some((at, counts)) = cached.as_ref()
        && at.elapsed() < COUNTS_FRESH_FOR
    {
        return Ok(Json(counts.clone()));
    }
    let served = state.store.served_endpoints().await?;
    let mut counts = DeliveryCounts {
        cap: COUNT_CAP,
        current_endpoint: state
            .current_endpoint
            .as_ref()
            .map(|e| e.shown().to_owned()),
        served_endpoints: served
            .iter()
            .map(|s| s.endpoint.shown().to_owned())
            .collect(),
        ..Default::default()
    };
    for (delivery_state, n) in state.store.count_deliveries(COUNT_CAP).await? {
        match delivery_state {
            DeliveryState::Pending => counts.pending = n,
            DeliveryState::Retrying => counts.retrying = n,
            DeliveryState::Delivered => counts.delivered = n,
            DeliveryState::Dead => counts.dead = n,
        }
        if n >= COUNT_CAP {
            counts.capped.push(delivery_state.as_str().to_owned());
        }
        counts.total += n;
    }
    let fingerprints: Vec<&str> = served.iter().map(|s| s.endpoint.fingerprint()).collect();
    counts.waiting_unserved = state
        .store
        .count_waiting_unserved(&fingerprints, COUNT_CAP)
        .await?;
    *cached = Some((Instant::now(), counts.clone()));
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
    let served = state.store.served_endpoints().await?;
    Ok(Json(DeliveryDetail {
        delivery: DeliveryView::of(delivery, &served),
        history: history.into_iter().map(AttemptView::from).collect(),
    }))
}

#[utoipa::path(
    post,
    path = "/v1/deliveries/{step_id}/redeliver",
    tag = "deliveries",
    params(("step_id" = String, Path, description = "step-<uuid>"), RedeliverOneParams),
    responses(
        (status = 200, description = "Queued again, or left as it was (`unchanged` says why): \
            idempotent, and never across a send in flight", body = Redelivered),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "A foreign Host, or a cross-site request", body = ErrorBody),
        (status = 404, description = "No such step", body = ErrorBody),
        (status = 409, description = "The step is still pending: nothing to notify yet", body = ErrorBody),
        (status = 422, description = "Malformed step id, or no current endpoint to move it to", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn redeliver_one(
    State(state): State<AppState>,
    Path(step_id): Path<String>,
    params: Result<Query<RedeliverOneParams>, QueryRejection>,
) -> Result<Json<Redelivered>, ApiError> {
    let Query(params) = params?;
    let id = parse_step_id(&step_id)?;
    let rebind = rebind(&state, params.to_current_endpoint)?;
    let outcome = state.store.requeue(&id, rebind).await?;
    tracing::info!(step_id = %id, outcome = outcome.as_str(), "redelivery asked for through the API");
    let mut answer = Redelivered::new(rebind);
    match outcome {
        RequeueOutcome::Queued => {
            answer.count = 1;
            answer.queued.push(id.to_string());
        }
        other => answer.unchanged.push(Unchanged {
            step_id: id.to_string(),
            reason: other.as_str().to_owned(),
        }),
    }
    Ok(Json(answer))
}

impl Redelivered {
    fn new(rebind: Rebind<'_>) -> Self {
        Self {
            count: 0,
            queued: Vec::new(),
            truncated: false,
            unchanged: Vec::new(),
            endpoint: match rebind {
                Rebind::Keep => None,
                Rebind::To(endpoint) => Some(endpoint.shown().to_owned()),
            },
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/deliveries/redeliver",
    tag = "deliveries",
    params(RedeliverAllParams),
    responses(
        (status = 200, description = "What was queued again; a repeat queues nothing more", body = Redelivered),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 403, description = "A foreign Host, or a cross-site request", body = ErrorBody),
        (status = 422, description = "A state other than dead, or no current endpoint to move them to", body = ErrorBody),
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
    let rebind = rebind(&state, params.to_current_endpoint)?;
    let mut answer = Redelivered::new(rebind);
    let mut after = None;
    loop {
        let page = state
            .store
            .requeue_dead_page(after.as_ref(), REQUEUE_PAGE, rebind)
            .await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        answer.count += page.len() as u64;
        for id in &page {
            if answer.queued.len() < MAX_IDS_REPORTED {
                answer.queued.push(id.to_string());
            } else {
                answer.truncated = true;
            }
        }
        after = Some(last);
    }
    tracing::info!(
        count = answer.count,
        "dead deliveries queued again through the API"
    );
    Ok(Json(answer))
}

//! The Letta-compatible step API: `GET /v1/steps/{step_id}`, `GET /v1/steps/` and
//! `GET /v1/steps/{step_id}/metrics`, with Letta's paths, query parameters and field names, so
//! the official Letta clients work with their base URL pointed at stephook. Fields stephook has
//! no value for are `null`; stephook's own additions (timestamps, metrics in ms) are extra fields,
//! which Letta's clients accept.

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::paging::page_limit;
use crate::time::{iso, query_date};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use stephook_core::chat::ChatMessage;
use stephook_core::{StepId, StepStatus};
use stephook_store::{SortOrder, StepCursor, StepQuery, StepWithMetrics};
use utoipa::{IntoParams, ToSchema};

const NANOS_PER_MILLI: i64 = 1_000_000;

/// A step in Letta's `Step` shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct LettaStep {
    /// `step-<uuid>`.
    pub id: String,
    pub agent_id: Option<String>,
    pub run_id: Option<String>,
    /// `pending`, `success`, `failed` or `cancelled`.
    pub status: Option<String>,
    pub model: Option<String>,
    pub provider_name: Option<String>,
    pub provider_id: Option<String>,
    pub provider_category: Option<String>,
    pub model_endpoint: Option<String>,
    pub model_handle: Option<String>,
    pub context_window_limit: Option<i64>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub total_tokens: Option<i64>,
    pub cached_input_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub prompt_tokens_details: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub completion_tokens_details: Option<serde_json::Value>,
    pub stop_reason: Option<String>,
    pub error_type: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub error_data: Option<serde_json::Value>,
    pub tags: Vec<String>,
    pub tid: Option<String>,
    pub trace_id: Option<String>,
    pub request_id: Option<String>,
    pub origin: Option<String>,
    pub project_id: Option<String>,
    pub feedback: Option<String>,
    /// Deprecated in Letta (always empty here): the step's messages are served at
    /// `GET /v1/steps/{step_id}/messages`.
    #[schema(value_type = Vec<Object>)]
    pub messages: Vec<serde_json::Value>,
    /// stephook: when the step was created (ISO 8601, UTC).
    pub created_at: Option<String>,
    /// stephook: when the step last changed.
    pub updated_at: Option<String>,
    /// stephook: when the step reached its terminal status.
    pub completed_at: Option<String>,
    /// stephook: the step's duration in milliseconds, when recorded.
    pub step_ms: Option<i64>,
    /// stephook: the model call's duration in milliseconds, when recorded (Letta's
    /// `llm_request_ms`).
    pub model_call_ms: Option<i64>,
    /// stephook: the step's tool calls, wall time in milliseconds, when it made any.
    pub tool_execution_ms: Option<i64>,
}

impl From<StepWithMetrics> for LettaStep {
    fn from(StepWithMetrics { step, metrics }: StepWithMetrics) -> Self {
        Self {
            id: step.id.to_string(),
            agent_id: Some(step.agent_id),
            run_id: step.run_id,
            status: Some(step.status.as_str().to_owned()),
            model: step.usage.model,
            provider_name: step.usage.provider,
            provider_id: None,
            provider_category: None,
            model_endpoint: None,
            model_handle: None,
            context_window_limit: None,
            prompt_tokens: Some(step.usage.prompt_tokens),
            completion_tokens: Some(step.usage.completion_tokens),
            total_tokens: Some(step.usage.total_tokens),
            cached_input_tokens: step.usage.cached_tokens,
            cache_write_tokens: None,
            reasoning_tokens: step.usage.reasoning_tokens,
            prompt_tokens_details: None,
            completion_tokens_details: None,
            stop_reason: step.stop_reason,
            error_type: step.error_type,
            error_data: step.error_data,
            tags: Vec::new(),
            tid: None,
            trace_id: None,
            request_id: None,
            origin: None,
            project_id: None,
            feedback: None,
            messages: Vec::new(),
            created_at: iso(step.created_at),
            updated_at: iso(step.updated_at),
            completed_at: step.completed_at.and_then(iso),
            step_ms: metrics.map(|m| m.step_ms),
            model_call_ms: metrics.map(|m| m.model_call_ms),
            tool_execution_ms: metrics.and_then(|m| m.tool_execution_ms),
        }
    }
}

/// One message of a step, in OpenAI's chat message shape: the assistant message (its text and
/// tool calls), then each tool result.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepMessage {
    /// `assistant` or `tool` (`system` and `user` for a conversation's own messages).
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The assistant's tool calls: `{"id", "type": "function", "function": {"name", "arguments"}}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub tool_calls: Vec<serde_json::Value>,
    /// A tool result: the call it answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A tool result: the tool's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl From<ChatMessage> for StepMessage {
    fn from(message: ChatMessage) -> Self {
        let value = serde_json::to_value(&message).unwrap_or_default();
        Self {
            role: value["role"].as_str().unwrap_or_default().to_owned(),
            content: message.content,
            tool_calls: message
                .tool_calls
                .iter()
                .filter_map(|call| serde_json::to_value(call).ok())
                .collect(),
            tool_call_id: message.tool_call_id,
            name: message.name,
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/steps/{step_id}/messages",
    tag = "steps",
    params(("step_id" = String, Path, description = "step-<uuid>")),
    responses(
        (status = 200, description = "What the step said and did: the assistant message with its tool calls, then the tool results, in OpenAI's chat message shape", body = Vec<StepMessage>),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such step", body = ErrorBody),
        (status = 422, description = "Malformed step id", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn step_messages(
    State(state): State<AppState>,
    Path(step_id): Path<String>,
) -> Result<Json<Vec<StepMessage>>, ApiError> {
    let id = parse_step_id(&step_id)?;
    if state.store.step(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("step {id} not found")));
    }
    let messages = state.store.step_messages(&id).await?;
    Ok(Json(messages.into_iter().map(StepMessage::from).collect()))
}

/// A step's timing metrics in the shape of Letta's step metrics.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepMetricsView {
    /// The step's id.
    pub id: String,
    pub agent_id: Option<String>,
    pub run_id: Option<String>,
    pub provider_id: Option<String>,
    pub project_id: Option<String>,
    pub template_id: Option<String>,
    pub base_template_id: Option<String>,
    pub step_start_ns: Option<i64>,
    pub llm_request_start_ns: Option<i64>,
    /// The whole step, in nanoseconds (stored with millisecond precision).
    pub step_ns: Option<i64>,
    /// The model call, in nanoseconds (stored with millisecond precision).
    pub llm_request_ns: Option<i64>,
    pub tool_execution_ns: Option<i64>,
    /// stephook: the whole step, as stored.
    pub step_ms: i64,
    /// stephook: the model call, as stored.
    pub model_call_ms: i64,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Asc,
    Desc,
}

/// Query parameters of `GET /v1/steps/` (Letta's, plus stephook's `run_id` and `status`).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StepListParams {
    /// Only the steps of this agent.
    pub agent_id: Option<String>,
    /// Only the steps that used this model.
    pub model: Option<String>,
    /// Page size: default 50, at most 1000.
    pub limit: Option<i64>,
    /// `desc` (newest first, the default) or `asc`, by creation time.
    pub order: Option<Order>,
    /// Cursor (step id): the steps after this one in the requested order.
    pub after: Option<String>,
    /// Cursor (step id): the steps before this one in the requested order.
    pub before: Option<String>,
    /// ISO 8601: steps created at or after this time.
    pub start_date: Option<String>,
    /// ISO 8601: steps created before this time.
    pub end_date: Option<String>,
    /// stephook: only the steps of this run.
    pub run_id: Option<String>,
    /// stephook: only steps in this status (pending, success, failed, cancelled).
    pub status: Option<String>,
}

pub(crate) fn parse_step_id(raw: &str) -> Result<StepId, ApiError> {
    StepId::parse(raw).map_err(|e| ApiError::Unprocessable(e.to_string()))
}

#[utoipa::path(
    get,
    path = "/v1/steps/{step_id}",
    tag = "steps",
    params(("step_id" = String, Path, description = "step-<uuid>")),
    responses(
        (status = 200, description = "The step", body = LettaStep),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such step", body = ErrorBody),
        (status = 422, description = "Malformed step id", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn retrieve_step(
    State(state): State<AppState>,
    Path(step_id): Path<String>,
) -> Result<Json<LettaStep>, ApiError> {
    let id = parse_step_id(&step_id)?;
    let step = state
        .store
        .step_with_metrics(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("step {id} not found")))?;
    Ok(Json(step.into()))
}

#[utoipa::path(
    get,
    path = "/v1/steps/",
    tag = "steps",
    params(StepListParams),
    responses(
        (status = 200, description = "A page of steps", body = Vec<LettaStep>),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "The cursor step does not exist", body = ErrorBody),
        (status = 422, description = "A malformed parameter", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list_steps(
    State(state): State<AppState>,
    params: Result<Query<StepListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<LettaStep>>, ApiError> {
    let Query(params) = params?;
    let query = step_query(params)?;
    let steps = state.store.query_steps(&query).await?;
    Ok(Json(steps.into_iter().map(LettaStep::from).collect()))
}

fn step_query(params: StepListParams) -> Result<StepQuery, ApiError> {
    let limit = page_limit(params.limit)?;
    let cursor = match (params.after.as_deref(), params.before.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Unprocessable(
                "give either after or before, not both".into(),
            ));
        }
        (Some(after), None) => Some(StepCursor::After(cursor_id("after", after)?)),
        (None, Some(before)) => Some(StepCursor::Before(cursor_id("before", before)?)),
        (None, None) => None,
    };
    let status = params
        .status
        .as_deref()
        .map(str::parse::<StepStatus>)
        .transpose()
        .map_err(|e| ApiError::Unprocessable(format!("status: {e}")))?;
    Ok(StepQuery {
        agent_id: params.agent_id,
        run_id: params
            .run_id
            .as_deref()
            .map(|run| stephook_core::run_id_of(run).to_owned()),
        model: params.model,
        status,
        start_ms: query_date("start_date", params.start_date.as_deref())?,
        end_ms: query_date("end_date", params.end_date.as_deref())?,
        order: match params.order.unwrap_or(Order::Desc) {
            Order::Asc => SortOrder::Asc,
            Order::Desc => SortOrder::Desc,
        },
        cursor,
        limit,
    })
}

fn cursor_id(name: &str, raw: &str) -> Result<StepId, ApiError> {
    StepId::parse(raw).map_err(|e| ApiError::Unprocessable(format!("{name}: {e}")))
}

#[utoipa::path(
    get,
    path = "/v1/steps/{step_id}/metrics",
    tag = "steps",
    params(("step_id" = String, Path, description = "step-<uuid>")),
    responses(
        (status = 200, description = "The step's metrics", body = StepMetricsView),
        (status = 401, description = "Missing or wrong token", body = ErrorBody),
        (status = 404, description = "No such step, or no metrics recorded for it", body = ErrorBody),
        (status = 422, description = "Malformed step id", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn step_metrics(
    State(state): State<AppState>,
    Path(step_id): Path<String>,
) -> Result<Json<StepMetricsView>, ApiError> {
    let id = parse_step_id(&step_id)?;
    let StepWithMetrics { step, metrics } = state
        .store
        .step_with_metrics(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("step {id} not found")))?;
    let metrics =
        metrics.ok_or_else(|| ApiError::NotFound(format!("step {id} has no metrics recorded")))?;
    Ok(Json(StepMetricsView {
        id: step.id.to_string(),
        agent_id: Some(step.agent_id),
        run_id: step.run_id,
        provider_id: None,
        project_id: None,
        template_id: None,
        base_template_id: None,
        step_start_ns: None,
        llm_request_start_ns: None,
        step_ns: metrics.step_ms.checked_mul(NANOS_PER_MILLI),
        llm_request_ns: metrics.model_call_ms.checked_mul(NANOS_PER_MILLI),
        tool_execution_ns: metrics
            .tool_execution_ms
            .and_then(|ms| ms.checked_mul(NANOS_PER_MILLI)),
        step_ms: metrics.step_ms,
        model_call_ms: metrics.model_call_ms,
    }))
}

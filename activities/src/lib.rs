//! Temporal activities: everything an agent step does outside the workflow's deterministic code.
//!
//! - `call_model`: one model call of a step (an OpenAI-compatible provider, or the offline echo
//!   when the worker has none), heartbeating, cancellable;
//! - `call_tool`: one tool call the model asked for, on the worker's MCP servers;
//! - `run_step_body`: legacy, for workflow histories from before the model step (the offline
//!   body);
//! - `create_step`: upserts the finished step and its metrics by the id the workflow chose, so a
//!   retried activity never stores a step twice;
//! - `create_step` also writes the step's outbox row (when a webhook is configured), due after a
//!   grace period longer than the webhook activity's budget, and once it is committed sends the
//!   notification at once in the background (the webhook activity's first attempt, made ahead
//!   of it: see `early_sends`);
//! - `send_step_complete_webhook`: one delivery attempt through the shared [`WebhookService`]
//!   (`{"step_id": ...}` in, `{"step_id", "delivered", "status", "attempt"}` out), callable by name
//!   from a workflow written with any Temporal SDK; the fast path of the outbox: a 2xx marks the
//!   row delivered, anything else leaves it to the dispatchers when the grace period ends; its
//!   first attempt on the worker that stored the step reports the early send;
//! - `record_undelivered_webhook`: legacy, for workflow histories from before the outbox; it
//!   hands the notification to the dispatchers at once.
//!
//! [`WebhookService`]: stephook_webhook::WebhookService

mod early_sends;
mod failures;
mod fleet;
mod metrics;
mod step_activities;
mod step_work;
mod types;

pub use early_sends::EarlySendsInFlight;
pub use failures::{
    INVALID_WEBHOOK_INPUT, LLM_API_ERROR, MODEL_UNAVAILABLE, STORE_UNAVAILABLE, TOOL_UNAVAILABLE,
    UNKNOWN_TOOLS, WEBHOOK_PERMANENT_STATUS, WEBHOOK_RETRYABLE_STATUS, WEBHOOK_TIMEOUT,
    WEBHOOK_TRANSPORT,
};
pub use metrics::{LATENCY_BUCKETS_SECONDS, WebhookMetrics};
pub use step_activities::{
    DEFAULT_OUTBOX_GRACE, DEFAULT_TOOL_TIMEOUT, StepActivities, parse_webhook_input,
};
pub use types::{
    CallModelInput, CallModelOutput, CallToolInput, CallToolOutput, CreateStepInput,
    LEFT_TO_OUTBOX, ModelFailureDetails, RecordUndeliveredInput, StepBodyInput, StepBodyOutput,
    WebhookFailureDetails, WebhookResult,
};

/// Activity type names as they appear in workflow histories and as other SDKs call them.
pub mod names {
    pub const RUN_STEP_BODY: &str = "run_step_body";
    pub const CALL_MODEL: &str = "call_model";
    pub const CALL_TOOL: &str = "call_tool";
    pub const CREATE_STEP: &str = "create_step";
    pub const SEND_STEP_COMPLETE_WEBHOOK: &str = "send_step_complete_webhook";
    pub const RECORD_UNDELIVERED_WEBHOOK: &str = "record_undelivered_webhook";
}

//! Temporal activities: everything an agent step does outside the workflow's deterministic code.
//!
//! - `run_step_body`: the step's work (today the offline deterministic body shared with direct
//!   mode; a real model call later), heartbeating while it waits so cancellation reaches it;
//! - `create_step`: upserts the finished step and its metrics by the id the workflow chose, so a
//!   retried activity never stores a step twice;
//! - `send_step_complete_webhook`: one delivery attempt through the shared [`WebhookService`]
//!   (`{"step_id": ...}` in, `{"step_id", "delivered", "status", "attempt"}` out), callable by name
//!   from a workflow written with any Temporal SDK;
//! - `record_undelivered_webhook`: stores a notification whose retries ran out as undelivered, so
//!   `stephook deliveries redeliver` can send it later.
//!
//! [`WebhookService`]: stephook_webhook::WebhookService

mod failures;
mod metrics;
mod step_activities;
mod types;

pub use failures::{
    INVALID_WEBHOOK_INPUT, STORE_UNAVAILABLE, WEBHOOK_PERMANENT_STATUS, WEBHOOK_RETRYABLE_STATUS,
    WEBHOOK_TIMEOUT, WEBHOOK_TRANSPORT,
};
pub use metrics::{LATENCY_BUCKETS_SECONDS, WebhookMetrics};
pub use step_activities::{StepActivities, parse_webhook_input};
pub use types::{
    CreateStepInput, RecordUndeliveredInput, StepBodyInput, StepBodyOutput, WebhookFailureDetails,
    WebhookResult,
};

/// Activity type names as they appear in workflow histories and as other SDKs call them.
pub mod names {
    pub const RUN_STEP_BODY: &str = "run_step_body";
    pub const CREATE_STEP: &str = "create_step";
    pub const SEND_STEP_COMPLETE_WEBHOOK: &str = "send_step_complete_webhook";
    pub const RECORD_UNDELIVERED_WEBHOOK: &str = "record_undelivered_webhook";
}

//! AgentWorkflow: an agent run as a durable Temporal workflow that stores and notifies every step.
//!
//! Per step: the model call (`call_model`) and the tool calls it asked for (`call_tool`, side by
//! side) → `create_step` (a local activity) with the terminal status, usage, metrics and messages →
//! `send_step_complete_webhook` beside the next steps, inside a guard that swallows its final
//! failure (logged, counted, left to the outbox). The step's post-processing runs in a scope
//! workflow cancellation cannot abort, so a step that reached a terminal state is always stored
//! and notified.

mod agent;
mod failure_facts;
mod in_flight;
mod input;
mod notify;
mod patches;
mod step;
mod store;
pub mod timeouts;
mod types;

pub use agent::{
    AgentWorkflow, CONVERSATION_TOO_LARGE_ERROR_TYPE, INVALID_INPUT_ERROR_TYPE,
    MAX_CONVERSATION_BYTES,
};
pub use failure_facts::{
    STEP_BODY_INFRA_ERROR_TYPE, StepFailureFacts, WebhookFailureFacts, step_failure_facts,
    webhook_failure_facts,
};
pub use input::{AgentRunInput, InvalidInput, json_payload};
pub use patches::{LOCAL_STORE_PATCH, MODEL_STEP_PATCH, OUTBOX_PATCH, STEPS_V4_PATCH};
pub use types::{
    AgentRunResult, DEFAULT_ECHO_STEPS, DEFAULT_MAX_STEPS, MAX_STEPS_LIMIT, Progress, StepSummary,
    ToolCallSummary,
};

pub use stephook_core::WORKFLOW_ID_PREFIX;
/// The workflow type name, for clients in other SDK languages.
pub const WORKFLOW_TYPE: &str = "AgentWorkflow";
/// The query that answers with [`Progress`].
pub const PROGRESS_QUERY: &str = "progress";

/// The workflow id of the agent run `run_id`.
pub fn workflow_id_for(run_id: &str) -> String {
    format!("{WORKFLOW_ID_PREFIX}{run_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_ids_are_readable() {
        assert_eq!(workflow_id_for("r-1"), "agent-run-r-1");
    }
}

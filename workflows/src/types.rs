//! AgentWorkflow's input, result and `progress` query answer (JSON, readable from any SDK).

use serde::{Deserialize, Serialize};

/// Steps a run with a model takes at most when the input does not say (as Letta's loop).
pub const DEFAULT_MAX_STEPS: u32 = 50;
/// Steps a run takes on the offline echo (a worker without a model) when the input does not
/// say: the same default as direct mode's.
pub use stephook_core::step_body::DEFAULT_ECHO_STEPS;
/// An upper bound that keeps one run's history well inside Temporal's limits (each step adds
/// about a dozen events; histories warn at 10 240).
pub const MAX_STEPS_LIMIT: u32 = 200;

/// `{"steps", "step_ids", "webhooks_delivered", "webhook_failures", "webhooks_left_to_outbox"}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRunResult {
    pub steps: u32,
    pub step_ids: Vec<String>,
    pub webhooks_delivered: u32,
    /// Notifications the webhook activity gave up on: the outbox retries them.
    pub webhook_failures: u32,
    /// Notifications the activity did not send because the outbox already had them (a
    /// dispatcher was sending, or they were dead or another endpoint's).
    #[serde(default)]
    pub webhooks_left_to_outbox: u32,
    /// What the last notification the activity gave up on ended with.
    #[serde(default)]
    pub last_webhook_error: Option<String>,
    /// Why the run stopped: `end_turn`, `max_tokens_exceeded`, `max_steps` (absent for runs
    /// before 0.3 and on the echo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

/// One stored step, as people follow a run: what the model said and did, and its tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSummary {
    /// 1-based.
    pub number: u32,
    pub step_id: String,
    pub status: String,
    /// The assistant's text, cut to a few hundred characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallSummary>,
    pub total_tokens: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

/// A tool call of a step, cut to fit a line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallSummary {
    pub name: String,
    pub arguments: String,
    pub result: String,
    pub is_error: bool,
}

/// The `progress` query's answer; it stays available after the run ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Steps that reached a terminal state and were stored.
    pub steps_done: u32,
    pub last_step_id: Option<String>,
    pub webhooks_delivered: u32,
    /// Notifications whose activity retries ran out: the outbox retries them.
    pub webhook_failures: u32,
    /// Notifications the activity left to the outbox without sending them.
    #[serde(default)]
    pub webhooks_left_to_outbox: u32,
    /// What the last notification the activity gave up on ended with.
    #[serde(default)]
    pub last_webhook_error: Option<String>,
    /// The steps so far (the echo's are short).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepSummary>,
    /// The worker runs the offline echo (it has no model): known after the first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
}

//! AgentWorkflow's input, result and `progress` query answer (JSON, readable from any SDK).

use serde::{Deserialize, Serialize};

/// Steps a run takes when the input does not say.
pub const DEFAULT_MAX_STEPS: u32 = 3;
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
}

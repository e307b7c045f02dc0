//! The activities' inputs and outputs. They travel as `json/plain` payloads with these serde field
//! names, so workflows in other SDK languages can produce and read them.

use serde::{Deserialize, Serialize};
use stephook_core::step_body::StepOutput;
use stephook_core::{Message, StepId, StepMetrics, StepStatus, Usage};

/// Input of `run_step_body`: step `index` of an agent run over these messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepBodyInput {
    pub agent_id: String,
    /// Chat objects `{"role", "content"}`; plain strings (older runs) are read as user messages.
    pub messages: Vec<Message>,
    pub index: u32,
}

/// What a step's work produced, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepBodyOutput {
    pub output: StepOutput,
    pub metrics: StepMetrics,
}

/// Input of `create_step`: a step in its terminal state, under the id the workflow decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateStepInput {
    pub step_id: StepId,
    pub agent_id: String,
    pub run_id: Option<String>,
    pub status: StepStatus,
    #[serde(default)]
    pub usage: Usage,
    pub stop_reason: Option<String>,
    pub error_type: Option<String>,
    pub error_data: Option<serde_json::Value>,
    /// When the step started, in workflow time (Unix milliseconds): the same on every retry.
    pub started_at_ms: i64,
    pub metrics: Option<StepMetrics>,
}

/// Output of `send_step_complete_webhook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResult {
    pub step_id: String,
    /// False when no URL is configured (nothing was sent).
    pub delivered: bool,
    /// The receiver's HTTP status, when one answered.
    pub status: Option<u16>,
    /// Which attempt this was (1-based), as Temporal counts them.
    pub attempt: u32,
}

/// Attached to a failed webhook attempt, so the workflow can record what happened when it gives up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookFailureDetails {
    pub attempt: u32,
    pub http_status: Option<u16>,
    /// The outcome label (timeout, http_status, transport).
    pub outcome: String,
}

/// Input of `record_undelivered_webhook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordUndeliveredInput {
    pub step_id: StepId,
    pub step_status: StepStatus,
    /// Attempts Temporal made; 0 when the failure did not say.
    pub attempts: u32,
    pub http_status: Option<u16>,
    pub error: String,
}

//! The activities' inputs and outputs. They travel as `json/plain` payloads with these serde field
//! names, so workflows in other SDK languages can produce and read them.

use serde::{Deserialize, Serialize};
use stephook_core::chat::{ChatMessage, ToolCall};
use stephook_core::step_body::StepOutput;
use stephook_core::{Message, StepId, StepMetrics, StepStatus, Usage};
use stephook_direct::NotSent;
use stephook_model::ModelReply;
use stephook_tools::ToolOutcome;
use stephook_webhook::Outcome;

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

/// Input of `call_model`: the conversation so far, for step `number` of at most `max_steps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallModelInput {
    pub agent_id: String,
    /// 1-based, as people count steps.
    pub number: u32,
    pub max_steps: u32,
    /// Everything the model has been told and has said so far, system prompt first.
    pub messages: Vec<ChatMessage>,
    /// The model the run asks for; `None`: the worker's.
    #[serde(default)]
    pub model: Option<String>,
    /// The tools to offer (names); `None`: every tool of the worker's MCP servers.
    #[serde(default)]
    pub tools: Option<Vec<String>>,
}

/// Output of `call_model`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallModelOutput {
    pub reply: ModelReply,
    /// The worker has no model configured: this is the offline echo, which goes on for
    /// `max_steps` steps whatever it says.
    pub echo: bool,
    /// How long the model call took (Letta's `llm_request_ms`).
    pub llm_request_ms: i64,
}

/// Input of `call_tool`: one tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallToolInput {
    pub call: ToolCall,
}

/// Output of `call_tool`: what the model reads back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallToolOutput {
    pub outcome: ToolOutcome,
    pub tool_ms: i64,
}

/// Attached to a model call that failed for good, so the step records why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelFailureDetails {
    /// `context_length_exceeded`, `bad_request`, `unauthorized`, `forbidden`, `not_found`, ...
    pub error_type: String,
    /// The provider's HTTP status (0 when there was no answer).
    pub status: u16,
    /// An escaped, truncated excerpt of the provider's answer.
    pub excerpt: String,
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
    /// The step's messages: the assistant message with its tool calls, then the tool results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<ChatMessage>,
}

/// Output of `send_step_complete_webhook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookResult {
    pub step_id: String,
    /// True when the notification is delivered (by this attempt, or already before it); false
    /// when nothing was sent (no URL configured, or the outbox has it: see `outcome`).
    pub delivered: bool,
    /// The receiver's HTTP status, when one answered this attempt.
    pub status: Option<u16>,
    /// Which attempt this was (1-based), as Temporal counts them.
    pub attempt: u32,
    /// What the attempt did: `delivered`, `already_delivered`, `not_configured`, or why it left
    /// the notification to the outbox (`held_elsewhere`, `dead`, `other_endpoint`,
    /// `lease_unproven`). Absent in results recorded before 0.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// Outcomes of `send_step_complete_webhook` that leave the notification to the outbox.
pub const LEFT_TO_OUTBOX: [&str; 4] =
    ["held_elsewhere", "dead", "other_endpoint", "lease_unproven"];

impl WebhookResult {
    /// A send that did not fail (delivered, or skipped for lack of a URL).
    pub(crate) fn sent(step_id: &StepId, attempt: u32, outcome: &Outcome) -> Self {
        Self {
            step_id: step_id.to_string(),
            delivered: *outcome != Outcome::NotConfigured,
            status: outcome.http_status(),
            attempt,
            outcome: Some(outcome.label().to_owned()),
        }
    }

    /// Nothing sent, for this reason.
    pub(crate) fn not_sent(step_id: &StepId, attempt: u32, why: &NotSent) -> Self {
        Self {
            step_id: step_id.to_string(),
            delivered: matches!(why, NotSent::AlreadyDelivered),
            status: None,
            attempt,
            outcome: Some(why.label().to_owned()),
        }
    }

    /// Whether the activity left the notification to the outbox without sending it.
    pub fn left_to_outbox(&self) -> bool {
        self.outcome
            .as_deref()
            .is_some_and(|outcome| LEFT_TO_OUTBOX.contains(&outcome))
    }
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

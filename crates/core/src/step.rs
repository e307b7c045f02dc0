//! Steps: one model call (or tool round) of an agent run, and the state it ends in.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

const STEP_ID_PREFIX: &str = "step-";
/// Workflow ids are `agent-run-<run_id>`: readable in the Temporal UI, one workflow per run.
pub const WORKFLOW_ID_PREFIX: &str = "agent-run-";

/// The run id a person means, whether they give the run id or the workflow id `stephook run`
/// printed (`agent-run-<run id>`).
pub fn run_id_of(given: &str) -> &str {
    let given = given.trim();
    given.strip_prefix(WORKFLOW_ID_PREFIX).unwrap_or(given)
}

/// Namespace for step ids derived from a workflow run: the same run and index always give the
/// same id, which is what makes `create_step` safe to retry and workflow replay stable.
const STEP_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f0c_1b5e_58a4_4d8e_9c7e_2b1a_5d3f_0e41);

/// `step-<uuid>`, the id receivers get in the webhook body.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StepId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid step id {0:?}: expected step-<uuid>")]
pub struct InvalidStepId(pub String);

impl StepId {
    /// A fresh random id, for direct mode.
    pub fn new_random() -> Self {
        Self(format!("{STEP_ID_PREFIX}{}", Uuid::new_v4()))
    }

    /// A deterministic id for step `index` of the run identified by `run_key` (a workflow run).
    pub fn derived(run_key: &str, index: u32) -> Self {
        let name = format!("{run_key}/{index}");
        Self(format!(
            "{STEP_ID_PREFIX}{}",
            Uuid::new_v5(&STEP_ID_NAMESPACE, name.as_bytes())
        ))
    }

    pub fn parse(value: &str) -> Result<Self, InvalidStepId> {
        let uuid = value
            .strip_prefix(STEP_ID_PREFIX)
            .ok_or_else(|| InvalidStepId(value.to_owned()))?;
        Uuid::parse_str(uuid).map_err(|_| InvalidStepId(value.to_owned()))?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for StepId {
    type Error = InvalidStepId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<StepId> for String {
    fn from(id: StepId) -> Self {
        id.0
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for StepId {
    type Err = InvalidStepId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Success,
    Failed,
    Cancelled,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid step status {0:?}: expected pending, success, failed or cancelled")]
pub struct InvalidStepStatus(pub String);

impl StepStatus {
    pub const ALL: [StepStatus; 4] = [Self::Pending, Self::Success, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Terminal states are the ones that notify.
    pub fn is_terminal(self) -> bool {
        self != Self::Pending
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StepStatus {
    type Err = InvalidStepStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| InvalidStepStatus(s.to_owned()))
    }
}

/// What the model call of a step consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub model: Option<String>,
    pub provider: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    /// Prompt tokens the provider served from its cache, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<i64>,
    /// Completion tokens spent on reasoning, when the provider says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<i64>,
}

/// A stored step. Timestamps are Unix milliseconds (portable across SQLite and PostgreSQL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: StepId,
    pub agent_id: String,
    pub run_id: Option<String>,
    pub status: StepStatus,
    pub usage: Usage,
    pub stop_reason: Option<String>,
    pub error_type: Option<String>,
    pub error_data: Option<serde_json::Value>,
    pub created_at: i64,
    pub updated_at: i64,
    pub completed_at: Option<i64>,
}

impl Step {
    /// A new pending step created now.
    pub fn pending(id: StepId, agent_id: impl Into<String>, run_id: Option<String>) -> Self {
        let now = now_millis();
        Self {
            id,
            agent_id: agent_id.into(),
            run_id,
            status: StepStatus::Pending,
            usage: Usage::default(),
            stop_reason: None,
            error_type: None,
            error_data: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
        }
    }
}

/// How long a step, its model call and its tool calls took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step_ms: i64,
    /// The model call (Letta's `llm_request_ms`).
    pub model_call_ms: i64,
    /// The step's tool calls, wall time (they run side by side); `None` for a step without any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_execution_ms: Option<i64>,
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_millis)
}

/// Unix seconds: the unit of Standard Webhooks timestamps.
pub fn now_unix_seconds() -> i64 {
    now_millis() / 1000
}

/// A duration in whole milliseconds as the store keeps them (i64), saturating.
pub fn duration_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_parse_and_differ() {
        let a = StepId::new_random();
        let b = StepId::new_random();
        assert_ne!(a, b);
        assert_eq!(StepId::parse(a.as_str()), Ok(a));
    }

    #[test]
    fn derived_ids_are_stable_per_run_and_index() {
        assert_eq!(StepId::derived("run-1", 0), StepId::derived("run-1", 0));
        assert_ne!(StepId::derived("run-1", 0), StepId::derived("run-1", 1));
        assert_ne!(StepId::derived("run-1", 0), StepId::derived("run-2", 0));
        assert!(StepId::parse(StepId::derived("r", 3).as_str()).is_ok());
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "step-",
            "step-123",
            "01234567-89ab-cdef-0123-456789abcdef",
            "x-1",
        ] {
            assert!(StepId::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = StepId::derived("r", 0);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert!(serde_json::from_str::<StepId>("\"nope\"").is_err());
    }

    #[test]
    fn statuses_round_trip() {
        for status in StepStatus::ALL {
            assert_eq!(status.as_str().parse::<StepStatus>(), Ok(status));
        }
        assert!("done".parse::<StepStatus>().is_err());
        assert!(!StepStatus::Pending.is_terminal());
        assert!(StepStatus::Cancelled.is_terminal());
    }
}

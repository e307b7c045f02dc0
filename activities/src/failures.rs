//! How the activities fail: Temporal decides whether to retry from the failure's `non_retryable`
//! flag, and dashboards and other SDKs match on its type name, so both are chosen here, once.

use crate::types::{ModelFailureDetails, WebhookFailureDetails};
use stephook_core::StepId;
use stephook_core::step_body::StepBodyError;
use stephook_store::StoreError;
use stephook_webhook::{Outcome, OutcomeClass};
use temporalio_sdk::ApplicationFailure;
use temporalio_sdk::activities::ActivityError;

/// The receiver did not answer within `STEP_COMPLETE_TIMEOUT_MS` (retryable).
pub const WEBHOOK_TIMEOUT: &str = "WebhookTimeout";
/// DNS, refused connection, TLS, broken connection (retryable).
pub const WEBHOOK_TRANSPORT: &str = "WebhookTransportError";
/// 408, 429 or 5xx (retryable).
pub const WEBHOOK_RETRYABLE_STATUS: &str = "WebhookRetryableStatus";
/// 3xx or another 4xx: asking again would get the same answer (non-retryable).
pub const WEBHOOK_PERMANENT_STATUS: &str = "WebhookPermanentStatus";
/// The activity's input is not `{"step_id": "step-<uuid>"}` (non-retryable).
pub const INVALID_WEBHOOK_INPUT: &str = "InvalidWebhookInput";
/// The step store could not be reached or refused the write (retryable).
pub const STORE_UNAVAILABLE: &str = "StoreUnavailable";
/// The store says the step does not exist (non-retryable: retrying will not create it).
const STEP_NOT_FOUND: &str = "StepNotFound";
/// The provider refused the call for good (400, 401, 403, 404): the step fails with stop reason
/// `llm_api_error` (non-retryable; details: [`ModelFailureDetails`]).
pub const LLM_API_ERROR: &str = "LlmApiError";
/// The provider did not answer, or asked to wait (429, 5xx, timeout): retried with backoff,
/// after `Retry-After` when it says.
pub const MODEL_UNAVAILABLE: &str = "ModelUnavailable";
/// The run names tools the worker's MCP servers do not have (non-retryable).
pub const UNKNOWN_TOOLS: &str = "UnknownTools";
/// An MCP server did not answer a tool call (retryable; when the retries run out the model is
/// told the tool failed).
pub const TOOL_UNAVAILABLE: &str = "ToolUnavailable";

/// The failure for a webhook attempt that did not deliver; `None` for outcomes that are results
/// (delivered, not configured).
pub(crate) fn webhook_failure(
    step_id: &StepId,
    attempt: u32,
    outcome: &Outcome,
) -> Option<ActivityError> {
    let (type_name, non_retryable) = match (outcome.class(), outcome) {
        (OutcomeClass::Delivered | OutcomeClass::Skipped, _) => return None,
        (_, Outcome::Timeout) => (WEBHOOK_TIMEOUT, false),
        (_, Outcome::Transport { .. }) => (WEBHOOK_TRANSPORT, false),
        (OutcomeClass::Retryable, _) => (WEBHOOK_RETRYABLE_STATUS, false),
        (OutcomeClass::Permanent, _) => (WEBHOOK_PERMANENT_STATUS, true),
    };
    let details = WebhookFailureDetails {
        attempt,
        http_status: outcome.http_status(),
        outcome: outcome.label().to_owned(),
    };
    Some(ActivityError::application(
        ApplicationFailure::builder(format!(
            "step-complete webhook for {step_id} not delivered: {outcome}"
        ))
        .type_name(type_name.to_owned())
        .non_retryable(non_retryable)
        .details(details)
        .build(),
    ))
}

/// The one-attempt failure for input that can never become valid by retrying.
pub(crate) fn invalid_webhook_input(reason: String) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(reason)
            .type_name(INVALID_WEBHOOK_INPUT.to_owned())
            .non_retryable(true)
            .build(),
    )
}

/// A step body that failed for good: the same input would fail the same way.
pub(crate) fn step_body_failure(error: StepBodyError) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(error.message.clone())
            .type_name(error.error_type.clone())
            .non_retryable(true)
            .details(error)
            .build(),
    )
}

/// The fast path could not take the step's row: store trouble is usually passing, and nothing
/// was sent, so the next attempt (or the outbox, when the grace period ends) sends it.
pub(crate) fn fast_path_failure(error: stephook_direct::FastPathError) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(format!("{error}; nothing was sent"))
            .type_name(STORE_UNAVAILABLE.to_owned())
            .non_retryable(false)
            .build(),
    )
}

/// A failed model call, as Letta's loop treats it: retry what may pass (honouring the
/// provider's `Retry-After`), fail the step on what will not.
pub(crate) fn model_failure(error: stephook_model::ModelError) -> ActivityError {
    use stephook_model::ModelError;
    let failure = match &error {
        ModelError::Retryable {
            retry_after,
            status,
            ..
        } => ApplicationFailure::builder(error.to_string())
            .type_name(MODEL_UNAVAILABLE.to_owned())
            .non_retryable(false)
            .maybe_next_retry_delay(*retry_after)
            .details(ModelFailureDetails {
                error_type: "unavailable".to_owned(),
                status: status.unwrap_or(0),
                excerpt: String::new(),
            })
            .build(),
        ModelError::Permanent {
            error_type,
            status,
            excerpt,
        } => ApplicationFailure::builder(error.to_string())
            .type_name(LLM_API_ERROR.to_owned())
            .non_retryable(true)
            .details(ModelFailureDetails {
                error_type: error_type.clone(),
                status: *status,
                excerpt: excerpt.clone(),
            })
            .build(),
        // An answer that is not a chat completion (a proxy's error page): worth another try.
        ModelError::Malformed { excerpt } => ApplicationFailure::builder(error.to_string())
            .type_name(MODEL_UNAVAILABLE.to_owned())
            .non_retryable(false)
            .details(ModelFailureDetails {
                error_type: "malformed_answer".to_owned(),
                status: 200,
                excerpt: excerpt.clone(),
            })
            .build(),
    };
    ActivityError::application(failure)
}

/// The run asked for tools the worker does not have.
pub(crate) fn unknown_tools(
    unknown: &[String],
    tools: &stephook_tools::McpServers,
) -> ActivityError {
    let known: Vec<&str> = tools.tool_names().map(|(_, tool)| tool).collect();
    ActivityError::application(
        ApplicationFailure::builder(format!(
            "the run asks for tools this worker's MCP servers do not have: {}; they have: {}",
            unknown.join(", "),
            if known.is_empty() {
                "none (STEPHOOK_MCP_CONFIG)".to_owned()
            } else {
                known.join(", ")
            }
        ))
        .type_name(UNKNOWN_TOOLS.to_owned())
        .non_retryable(true)
        .build(),
    )
}

/// An MCP server that did not answer: retried; the workflow tells the model when it gives up.
pub(crate) fn tool_unavailable(error: stephook_tools::ToolsError) -> ActivityError {
    ActivityError::application(
        ApplicationFailure::builder(error.to_string())
            .type_name(TOOL_UNAVAILABLE.to_owned())
            .non_retryable(false)
            .build(),
    )
}

/// Store trouble is usually passing (a restart, a lock): retry, except for a missing step.
pub(crate) fn store_failure(error: StoreError) -> ActivityError {
    let non_retryable = matches!(error, StoreError::StepNotFound(_));
    let type_name = if non_retryable {
        STEP_NOT_FOUND
    } else {
        STORE_UNAVAILABLE
    };
    ActivityError::application(
        ApplicationFailure::builder(error.to_string())
            .type_name(type_name.to_owned())
            .non_retryable(non_retryable)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(error: ActivityError) -> Box<ApplicationFailure> {
        match error {
            ActivityError::Application(app) => app,
            other => panic!("expected an application failure, got {other:?}"),
        }
    }

    #[test]
    fn webhook_outcomes_map_to_retryability() {
        let id = StepId::derived("run", 0);
        assert!(webhook_failure(&id, 1, &Outcome::Delivered { status: 204 }).is_none());
        assert!(webhook_failure(&id, 1, &Outcome::NotConfigured).is_none());
        let cases = [
            (Outcome::Timeout, WEBHOOK_TIMEOUT, false),
            (
                Outcome::Transport {
                    error: "refused".into(),
                },
                WEBHOOK_TRANSPORT,
                false,
            ),
            (
                Outcome::HttpStatus {
                    status: 503,
                    body: String::new(),
                },
                WEBHOOK_RETRYABLE_STATUS,
                false,
            ),
            (
                Outcome::HttpStatus {
                    status: 404,
                    body: "nope".into(),
                },
                WEBHOOK_PERMANENT_STATUS,
                true,
            ),
        ];
        for (outcome, type_name, non_retryable) in cases {
            let failure = app(webhook_failure(&id, 2, &outcome).expect("a failure"));
            assert_eq!(failure.type_name(), Some(type_name), "{outcome}");
            assert_eq!(failure.is_non_retryable(), non_retryable, "{outcome}");
            assert!(failure.to_string().contains(id.as_str()));
        }
    }

    #[test]
    fn step_body_failures_keep_type_and_message_and_do_not_retry() {
        let failure = app(step_body_failure(StepBodyError {
            error_type: "StepBodyFailed".into(),
            message: "boom".into(),
        }));
        assert_eq!(failure.type_name(), Some("StepBodyFailed"));
        assert_eq!(failure.to_string(), "boom");
        assert!(failure.is_non_retryable());
    }

    #[test]
    fn invalid_input_fails_once() {
        let failure = app(invalid_webhook_input("bad".into()));
        assert!(failure.is_non_retryable());
        assert_eq!(failure.type_name(), Some(INVALID_WEBHOOK_INPUT));
    }
}

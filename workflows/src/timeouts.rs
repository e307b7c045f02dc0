//! Every timeout and retry number of the workflow's activities, in one place. Changing one changes
//! the commands the workflow records: old histories replay unchanged (options are not compared on
//! replay), new runs use the new values.

use std::time::Duration;
use temporalio_common::RetryPolicy;
use temporalio_sdk::{
    ActivityCloseTimeouts, ActivityOptions, LocalActivityOptions, WorkflowCancellationToken,
};

/// One webhook attempt. Above `STEP_COMPLETE_TIMEOUT_MS` (at most 14.999 s), so the HTTP client
/// always reports its own timeout before Temporal times the attempt out.
pub const WEBHOOK_START_TO_CLOSE: Duration = Duration::from_secs(15);
/// All webhook attempts together: the server stops retrying when the next backoff would pass it.
pub const WEBHOOK_SCHEDULE_TO_CLOSE: Duration = Duration::from_secs(30);
pub const WEBHOOK_RETRY_INITIAL_INTERVAL: Duration = Duration::from_secs(1);
pub const WEBHOOK_RETRY_BACKOFF: f64 = 2.0;
pub const WEBHOOK_RETRY_MAX_INTERVAL: Duration = Duration::from_secs(10);
/// 0 = unlimited: the 30 s schedule-to-close is the bound.
pub const WEBHOOK_RETRY_MAX_ATTEMPTS: u32 = 0;

/// The step's work: a model call can take minutes.
pub const STEP_BODY_START_TO_CLOSE: Duration = Duration::from_secs(5 * 60);
/// A step body heartbeats every second while it waits; a dead worker is noticed this soon.
pub const STEP_BODY_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
pub const STEP_BODY_RETRY_INITIAL_INTERVAL: Duration = Duration::from_secs(1);
pub const STEP_BODY_RETRY_MAX_INTERVAL: Duration = Duration::from_secs(30);
/// Infrastructure failures only: a failure of the work itself is non-retryable.
pub const STEP_BODY_RETRY_MAX_ATTEMPTS: u32 = 5;

/// One model call: above the longest `STEPHOOK_MODEL_TIMEOUT` (10 min), so the client reports
/// its own timeout first.
pub const MODEL_START_TO_CLOSE: Duration = Duration::from_secs(11 * 60);
/// The model call heartbeats every second while it waits; a dead worker is noticed this soon.
pub const MODEL_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// 429, 5xx, timeouts, dropped connections: 1 s, ×2, up to 30 s, 5 attempts (as Letta's
/// Temporal loop), after the provider's `Retry-After` when it gives one.
pub const MODEL_RETRY_INITIAL_INTERVAL: Duration = Duration::from_secs(1);
pub const MODEL_RETRY_BACKOFF: f64 = 2.0;
pub const MODEL_RETRY_MAX_INTERVAL: Duration = Duration::from_secs(30);
pub const MODEL_RETRY_MAX_ATTEMPTS: u32 = 5;
/// One tool call: above the worker's tool timeout (60 s by default).
pub const TOOL_START_TO_CLOSE: Duration = Duration::from_secs(5 * 60);
pub const TOOL_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// A server that does not answer: a few attempts, then the model hears that the tool failed.
pub const TOOL_RETRY_MAX_ATTEMPTS: u32 = 3;

/// One store write.
pub const STORE_START_TO_CLOSE: Duration = Duration::from_secs(15);
pub const STORE_RETRY_INITIAL_INTERVAL: Duration = Duration::from_secs(1);
pub const STORE_RETRY_MAX_INTERVAL: Duration = Duration::from_secs(30);
/// `create_step` retries without limit: a step that finished must be stored, even if the database
/// is down for a while (the workflow waits durably).
pub const CREATE_STEP_RETRY_MAX_ATTEMPTS: u32 = 0;
/// `create_step` as a local activity (in the workflow task, no round trip through the server):
/// a few quick retries within this budget, after which the step is stored by the regular
/// activity with the unlimited retries above. Every attempt's start-to-close is
/// `STORE_START_TO_CLOSE`.
pub const LOCAL_STORE_SCHEDULE_TO_CLOSE: Duration = Duration::from_secs(30);
pub const LOCAL_STORE_RETRY_MAX_INTERVAL: Duration = Duration::from_secs(5);
/// Recording an undelivered notification is bookkeeping: give up after this long (and log).
pub const RECORD_UNDELIVERED_SCHEDULE_TO_CLOSE: Duration = Duration::from_secs(5 * 60);

/// `send_step_complete_webhook`: start-to-close 15 s, schedule-to-close 30 s, explicit retries.
pub fn webhook_options(
    summary: String,
    cancellation: Option<WorkflowCancellationToken>,
) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: WEBHOOK_SCHEDULE_TO_CLOSE,
        start_to_close: WEBHOOK_START_TO_CLOSE,
    })
    .retry_policy(webhook_retry_policy())
    .summary(summary)
    .maybe_cancellation_token(cancellation)
    .build()
}

pub fn webhook_retry_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(WEBHOOK_RETRY_INITIAL_INTERVAL)
        .backoff_coefficient(WEBHOOK_RETRY_BACKOFF)
        .maximum_interval(WEBHOOK_RETRY_MAX_INTERVAL)
        .maximum_attempts(WEBHOOK_RETRY_MAX_ATTEMPTS)
        .build()
}

/// `run_step_body`: cancellable (it inherits the workflow's cancellation).
pub fn step_body_options(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(STEP_BODY_START_TO_CLOSE)
        .heartbeat_timeout(STEP_BODY_HEARTBEAT_TIMEOUT)
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(STEP_BODY_RETRY_INITIAL_INTERVAL)
                .maximum_interval(STEP_BODY_RETRY_MAX_INTERVAL)
                .maximum_attempts(STEP_BODY_RETRY_MAX_ATTEMPTS)
                .non_retryable_error_types([stephook_core::step_body::STEP_BODY_ERROR_TYPE])
                .build(),
        )
        .summary(summary)
        .build()
}

/// `call_model`: cancellable (it inherits the workflow's cancellation); refusals for good are
/// not retried.
pub fn call_model_options(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(MODEL_START_TO_CLOSE)
        .heartbeat_timeout(MODEL_HEARTBEAT_TIMEOUT)
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(MODEL_RETRY_INITIAL_INTERVAL)
                .backoff_coefficient(MODEL_RETRY_BACKOFF)
                .maximum_interval(MODEL_RETRY_MAX_INTERVAL)
                .maximum_attempts(MODEL_RETRY_MAX_ATTEMPTS)
                .non_retryable_error_types([
                    stephook_activities::LLM_API_ERROR,
                    stephook_activities::UNKNOWN_TOOLS,
                    stephook_core::step_body::STEP_BODY_ERROR_TYPE,
                ])
                .build(),
        )
        .summary(summary)
        .build()
}

/// `call_tool`: cancellable.
pub fn call_tool_options(summary: String) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(TOOL_START_TO_CLOSE)
        .heartbeat_timeout(TOOL_HEARTBEAT_TIMEOUT)
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(MODEL_RETRY_INITIAL_INTERVAL)
                .maximum_interval(MODEL_RETRY_MAX_INTERVAL)
                .maximum_attempts(TOOL_RETRY_MAX_ATTEMPTS)
                .build(),
        )
        .summary(summary)
        .build()
}

/// `create_step`.
pub fn create_step_options(
    summary: String,
    cancellation: Option<WorkflowCancellationToken>,
) -> ActivityOptions {
    ActivityOptions::with_start_to_close_timeout(STORE_START_TO_CLOSE)
        .retry_policy(store_retry_policy(CREATE_STEP_RETRY_MAX_ATTEMPTS))
        .summary(summary)
        .maybe_cancellation_token(cancellation)
        .build()
}

/// `create_step` run locally: explicit timeouts and retries (the SDK's defaults would give up
/// after 100 s); the detached `cancellation` token keeps a cancelled run's last step stored.
pub fn create_step_local_options(
    summary: String,
    cancellation: WorkflowCancellationToken,
) -> LocalActivityOptions {
    LocalActivityOptions::builder()
        .start_to_close_timeout(STORE_START_TO_CLOSE)
        .schedule_to_close_timeout(LOCAL_STORE_SCHEDULE_TO_CLOSE)
        .retry_policy(
            RetryPolicy::builder()
                .initial_interval(STORE_RETRY_INITIAL_INTERVAL)
                .maximum_interval(LOCAL_STORE_RETRY_MAX_INTERVAL)
                .build(),
        )
        .summary(summary)
        .cancellation_token(cancellation)
        .build()
}

/// `record_undelivered_webhook`.
pub fn record_undelivered_options(
    summary: String,
    cancellation: Option<WorkflowCancellationToken>,
) -> ActivityOptions {
    ActivityOptions::with_close_timeouts(ActivityCloseTimeouts::ScheduleAndStartToClose {
        schedule_to_close: RECORD_UNDELIVERED_SCHEDULE_TO_CLOSE,
        start_to_close: STORE_START_TO_CLOSE,
    })
    .retry_policy(store_retry_policy(0))
    .summary(summary)
    .maybe_cancellation_token(cancellation)
    .build()
}

fn store_retry_policy(maximum_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .initial_interval(STORE_RETRY_INITIAL_INTERVAL)
        .maximum_interval(STORE_RETRY_MAX_INTERVAL)
        .maximum_attempts(maximum_attempts)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_calls_retry_as_letta_does_and_never_retry_a_refusal() {
        let policy = call_model_options("x".into())
            .retry_policy
            .expect("explicit retry policy");
        assert_eq!(policy.initial_interval(), Duration::from_secs(1));
        assert_eq!(policy.backoff_coefficient(), 2.0);
        assert_eq!(policy.maximum_interval(), Some(Duration::from_secs(30)));
        assert_eq!(policy.maximum_attempts(), 5);
        assert!(
            policy
                .non_retryable_error_types()
                .contains(&stephook_activities::LLM_API_ERROR.to_owned())
        );
    }

    #[test]
    fn webhook_numbers_match_the_design() {
        let options = webhook_options("x".into(), None);
        assert_eq!(
            options.close_timeouts.schedule_to_close(),
            Some(Duration::from_secs(30))
        );
        let policy = options.retry_policy.expect("explicit retry policy");
        assert_eq!(policy.initial_interval(), Duration::from_secs(1));
        assert_eq!(policy.backoff_coefficient(), 2.0);
        assert_eq!(policy.maximum_interval(), Some(Duration::from_secs(10)));
        assert_eq!(policy.maximum_attempts(), 0);
        // The HTTP timeout must always fire before the attempt's start-to-close.
        assert!(stephook_core::MAX_WEBHOOK_TIMEOUT <= WEBHOOK_START_TO_CLOSE);
    }
}

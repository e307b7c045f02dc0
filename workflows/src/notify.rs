//! The notification guard: one step-complete webhook through Temporal's retries (the outbox's
//! fast path), whose final failure never fails, blocks beyond its 30 s, or rolls back the step.
//! A failure is logged (not during replay) and counted in `progress` and the result; the step's
//! outbox row, written by `create_step`, then falls due and a dispatcher delivers it.

use crate::agent::AgentWorkflow;
use crate::failure_facts::{failure_message, webhook_failure_facts};
use crate::timeouts;
use stephook_activities::{RecordUndeliveredInput, StepActivities};
use stephook_core::{StepId, StepStatus};
use temporalio_sdk::{WorkflowCancellationToken, WorkflowContext};

/// How a given-up notification reaches the outbox.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum GivenUp {
    /// The row `create_step` wrote falls due after its grace period: nothing to do.
    LeaveToOutbox,
    /// Histories from before the outbox called `record_undelivered_webhook`; replaying them must
    /// issue the same command (the activity now hands the row to the dispatchers).
    RecordUndelivered,
}

/// Sends the notification for a stored step. Its activities run under `scope`, a token the
/// caller keeps detached from workflow cancellation.
pub(crate) async fn notify_step(
    ctx: &WorkflowContext<AgentWorkflow>,
    step_id: &StepId,
    status: StepStatus,
    scope: &WorkflowCancellationToken,
    given_up: GivenUp,
) {
    let input = serde_json::json!({ "step_id": step_id.as_str() });
    let options =
        timeouts::webhook_options(format!("notify {step_id} ({status})"), Some(scope.clone()));
    let error = match ctx
        .execute_activity(StepActivities::send_step_complete_webhook, input, options)
        .await
    {
        Ok(result) => {
            if result.delivered {
                ctx.state_mut(|wf| wf.progress.webhooks_delivered += 1);
            } else if result.left_to_outbox() {
                ctx.state_mut(|wf| wf.progress.webhooks_left_to_outbox += 1);
            }
            return;
        }
        Err(error) => error,
    };

    let facts = webhook_failure_facts(&error);
    ctx.state_mut(|wf| {
        wf.progress.webhook_failures += 1;
        wf.progress.last_webhook_error = Some(facts.error.clone());
    });
    if !ctx.is_replaying() {
        tracing::warn!(
            step_id = step_id.as_str(),
            %status,
            attempts = facts.attempts,
            http_status = facts.http_status,
            error = %facts.error,
            "step-complete webhook not delivered by the activity; the outbox retries it"
        );
    }
    if given_up == GivenUp::LeaveToOutbox {
        return;
    }
    let record = RecordUndeliveredInput {
        step_id: step_id.clone(),
        step_status: status,
        attempts: facts.attempts,
        http_status: facts.http_status,
        error: facts.error,
    };
    let options =
        timeouts::record_undelivered_options(format!("undelivered {step_id}"), Some(scope.clone()));
    if let Err(error) = ctx
        .execute_activity(StepActivities::record_undelivered_webhook, record, options)
        .await
        && !ctx.is_replaying()
    {
        // Bookkeeping only: the step itself is stored, and `deliveries redeliver <id>` still
        // works for any terminal step.
        tracing::error!(
            step_id = step_id.as_str(),
            error = %failure_message(&error),
            "could not record the undelivered step-complete webhook"
        );
    }
}

//! Storing a step that has ended. Since `LOCAL_STORE_PATCH`, `create_step` runs as a local
//! activity: in the workflow task itself, with no round trip through the server, so the
//! notification's activity is scheduled in the same task completion that records the step. The
//! history keeps it as a marker (with its summary, as the UI shows it). If the local attempts
//! give up (the store down for longer than their budget), the regular activity takes over with
//! its unlimited retries: a step that ended is always stored. Runs recorded before the patch
//! store with the regular activity only.

use crate::AgentWorkflow;
use crate::timeouts;
use stephook_activities::{CreateStepInput, StepActivities};
use temporalio_sdk::{ActivityExecutionError, WorkflowCancellationToken, WorkflowContext};

/// How a run stores its steps, decided once per run by its history.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreBy {
    /// Runs recorded before `LOCAL_STORE_PATCH`.
    Activity,
    LocalActivity,
}

/// `scope` is detached from the workflow's cancellation: a cancelled run's last step is stored.
pub(crate) async fn store_step(
    ctx: &WorkflowContext<AgentWorkflow>,
    by: StoreBy,
    input: CreateStepInput,
    summary: String,
    scope: &WorkflowCancellationToken,
) -> Result<(), ActivityExecutionError> {
    if by == StoreBy::LocalActivity {
        let local = ctx
            .execute_local_activity(
                StepActivities::create_step,
                input.clone(),
                timeouts::create_step_local_options(summary.clone(), scope.clone()),
            )
            .await;
        match local {
            Ok(()) => return Ok(()),
            Err(error) => {
                if !ctx.is_replaying() {
                    tracing::warn!(
                        step_id = %input.step_id,
                        %error,
                        "storing the step locally gave up; the create_step activity retries it"
                    );
                }
            }
        }
    }
    ctx.execute_activity(
        StepActivities::create_step,
        input,
        timeouts::create_step_options(summary, Some(scope.clone())),
    )
    .await
}

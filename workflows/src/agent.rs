//! AgentWorkflow itself. Deterministic: time is workflow time, ids derive from the workflow run,
//! and everything else happens in activities.

use crate::WORKFLOW_ID_PREFIX;
use crate::failure_facts::{StepFailureFacts, step_failure_facts};
use crate::in_flight::InFlight;
use crate::input;
use crate::notify::{GivenUp, notify_step};
use crate::timeouts;
use crate::types::{AgentRunResult, Progress};
use std::time::UNIX_EPOCH;
use stephook_activities::{CreateStepInput, StepActivities, StepBodyInput, StepBodyOutput};
use stephook_core::{Message, StepId, StepMetrics, StepStatus, Usage, duration_millis};
use temporalio_common::data_converters::RawValue;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ApplicationFailure, WorkflowCancellationToken, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination,
};

/// Error type of a run rejected before its first step.
pub const INVALID_INPUT_ERROR_TYPE: &str = "InvalidAgentRunInput";
/// Histories recorded since the outbox carry this patch marker: each step's notification runs
/// beside the next steps and a given-up one is left to the outbox. Histories without it (runs
/// started before) replay the old way: notify, wait, record undelivered, then the next step.
pub const OUTBOX_PATCH: &str = "stephook-outbox-fast-path";

#[workflow]
#[derive(Default)]
pub struct AgentWorkflow {
    pub(crate) progress: Progress,
}

/// How a step's work ended.
enum StepEnding {
    Success(StepBodyOutput),
    Failed(StepFailureFacts),
    Cancelled,
}

impl StepEnding {
    fn status(&self) -> StepStatus {
        match self {
            Self::Success(_) => StepStatus::Success,
            Self::Failed(_) => StepStatus::Failed,
            Self::Cancelled => StepStatus::Cancelled,
        }
    }
}

/// What every step of one run shares.
struct Run {
    agent_id: String,
    run_id: String,
    messages: Vec<Message>,
    max_steps: u32,
    /// Step ids derive from this and the step index: the same on replay and on activity retries,
    /// different for every workflow run (a reset or a reused workflow id never collides).
    step_key: String,
}

#[workflow_methods]
impl AgentWorkflow {
    #[run]
    pub async fn run(
        ctx: &mut WorkflowContext<Self>,
        input: RawValue,
    ) -> WorkflowResult<AgentRunResult> {
        let ctx: &WorkflowContext<Self> = ctx;
        let run = Run::new(ctx, input)?;
        let alongside_steps = ctx.patched(OUTBOX_PATCH);
        let mut notifications = InFlight::default();
        let mut step_ids = Vec::new();
        let ending = 'steps: {
            for index in 0..run.max_steps {
                // A cancellation that arrived while the previous step was being stored ends the
                // run here: no step is in progress.
                if ctx.cancellation_token().is_cancelled() {
                    break 'steps Err(WorkflowTermination::cancelled());
                }
                let step_id = StepId::derived(&run.step_key, index);
                let started_at_ms = workflow_millis(ctx);
                let body = notifications
                    .alongside(ctx.execute_activity(
                        StepActivities::run_step_body,
                        StepBodyInput {
                            agent_id: run.agent_id.clone(),
                            messages: run.messages.clone(),
                            index,
                        },
                        timeouts::step_body_options(format!(
                            "step {} of {}: {step_id}",
                            index + 1,
                            run.max_steps
                        )),
                    ))
                    .await;
                let ending = match body {
                    Ok(output) => StepEnding::Success(output),
                    Err(error) if is_cancellation(ctx, &error) => StepEnding::Cancelled,
                    Err(error) => StepEnding::Failed(step_failure_facts(&error)),
                };

                // The step has ended: storing and notifying it runs in a scope workflow
                // cancellation cannot abort, so a terminal step is never left unstored or
                // unannounced.
                let scope = WorkflowCancellationToken::new();
                let status = ending.status();
                let elapsed_ms = (workflow_millis(ctx) - started_at_ms).max(0);
                let stored = notifications
                    .alongside(ctx.execute_activity(
                        StepActivities::create_step,
                        create_step_input(&run, &step_id, &ending, started_at_ms, elapsed_ms),
                        timeouts::create_step_options(
                            format!("store {step_id} ({status})"),
                            Some(scope.clone()),
                        ),
                    ))
                    .await;
                if let Err(error) = stored {
                    break 'steps Err(error.into());
                }
                ctx.state_mut(|wf| {
                    wf.progress.steps_done += 1;
                    wf.progress.last_step_id = Some(step_id.to_string());
                });
                step_ids.push(step_id.to_string());
                if alongside_steps {
                    // The outbox row is committed with the step: the agent goes on at once.
                    notifications.start(async move {
                        notify_step(ctx, &step_id, status, &scope, GivenUp::LeaveToOutbox).await;
                    });
                } else {
                    notify_step(ctx, &step_id, status, &scope, GivenUp::RecordUndelivered).await;
                }

                match ending {
                    StepEnding::Success(_) => {}
                    StepEnding::Cancelled => break 'steps Err(WorkflowTermination::cancelled()),
                    StepEnding::Failed(facts) => {
                        break 'steps Err(WorkflowTermination::failed_application(
                            ApplicationFailure::builder(facts.message)
                                .type_name(facts.error_type)
                                .non_retryable(true)
                                .build(),
                        ));
                    }
                }
            }
            Ok(())
        };
        // However the run ends, its notifications are seen through (each bounded by its 30 s).
        notifications.finish().await;
        ending?;
        Ok(ctx.state(|wf| AgentRunResult {
            steps: wf.progress.steps_done,
            step_ids,
            webhooks_delivered: wf.progress.webhooks_delivered,
            webhook_failures: wf.progress.webhook_failures,
            webhooks_left_to_outbox: wf.progress.webhooks_left_to_outbox,
            last_webhook_error: wf.progress.last_webhook_error.clone(),
        }))
    }

    #[query(name = "progress")]
    pub fn progress(&self, _ctx: &WorkflowContextView) -> Progress {
        self.progress.clone()
    }
}

impl Run {
    /// Validates the raw input; anything unusable fails the workflow at once (logged once,
    /// not on replay) instead of failing its task over and over.
    fn new(ctx: &WorkflowContext<AgentWorkflow>, raw: RawValue) -> WorkflowResult<Self> {
        let input = input::validate(&raw).map_err(|error| {
            if !ctx.is_replaying() {
                tracing::warn!(workflow_id = ctx.workflow_id(), %error, "AgentWorkflow input refused");
            }
            invalid_input(error.to_string())
        })?;
        let max_steps = input.max_steps.unwrap_or(crate::types::DEFAULT_MAX_STEPS);
        let workflow_id = ctx.workflow_id().to_owned();
        let run_id = input.run_id.unwrap_or_else(|| {
            workflow_id
                .strip_prefix(WORKFLOW_ID_PREFIX)
                .unwrap_or(&workflow_id)
                .to_owned()
        });
        Ok(Self {
            agent_id: input.agent_id,
            run_id,
            messages: input.messages,
            max_steps,
            step_key: format!("{workflow_id}/{}", ctx.run_id()),
        })
    }
}

fn create_step_input(
    run: &Run,
    step_id: &StepId,
    ending: &StepEnding,
    started_at_ms: i64,
    elapsed_ms: i64,
) -> CreateStepInput {
    let mut input = CreateStepInput {
        step_id: step_id.clone(),
        agent_id: run.agent_id.clone(),
        run_id: Some(run.run_id.clone()),
        status: ending.status(),
        usage: Usage::default(),
        stop_reason: None,
        error_type: None,
        error_data: None,
        started_at_ms,
        // A step that did not succeed spent all its time in its body.
        metrics: Some(StepMetrics {
            step_ms: elapsed_ms,
            model_call_ms: elapsed_ms,
            tool_execution_ms: None,
        }),
    };
    match ending {
        StepEnding::Success(body) => {
            input.usage = body.output.usage.clone();
            input.stop_reason = Some(body.output.stop_reason.clone());
            input.metrics = Some(body.metrics);
        }
        StepEnding::Failed(facts) => {
            input.error_type = Some(facts.error_type.clone());
            input.error_data = Some(serde_json::json!({ "message": facts.message }));
        }
        StepEnding::Cancelled => {
            input.stop_reason = Some("cancelled".to_owned());
        }
    }
    input
}

/// The step body was cancelled because the workflow is being cancelled (the only way it is).
fn is_cancellation(ctx: &WorkflowContext<AgentWorkflow>, error: &ActivityExecutionError) -> bool {
    matches!(error, ActivityExecutionError::Cancelled(_)) || ctx.cancellation_token().is_cancelled()
}

fn invalid_input(message: String) -> WorkflowTermination {
    WorkflowTermination::failed_application(
        ApplicationFailure::builder(message)
            .type_name(INVALID_INPUT_ERROR_TYPE.to_owned())
            .non_retryable(true)
            .build(),
    )
}

/// Workflow time in Unix milliseconds: deterministic (recorded in history), unlike the clock.
fn workflow_millis(ctx: &WorkflowContext<AgentWorkflow>) -> i64 {
    ctx.workflow_time()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, duration_millis)
}

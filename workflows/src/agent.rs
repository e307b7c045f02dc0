//! AgentWorkflow itself. Deterministic: time is workflow time, ids derive from the workflow run,
//! and everything else happens in activities.

use crate::WORKFLOW_ID_PREFIX;
use crate::in_flight::InFlight;
use crate::input;
use crate::notify::{GivenUp, notify_step};
use crate::patches::RunPaths;
use crate::step;
use crate::store::store_step;
use crate::types::{AgentRunResult, DEFAULT_ECHO_STEPS, DEFAULT_MAX_STEPS, Progress};
use std::time::UNIX_EPOCH;
use stephook_activities::CreateStepInput;
use stephook_core::chat::{ChatMessage, ChatRole};
use stephook_core::{Message, StepId, duration_millis};
use temporalio_common::data_converters::RawValue;
use temporalio_macros::{workflow, workflow_methods};
use temporalio_sdk::{
    ActivityExecutionError, ApplicationFailure, WorkflowCancellationToken, WorkflowContext,
    WorkflowContextView, WorkflowResult, WorkflowTermination,
};

/// Error type of a run rejected before its first step.
pub const INVALID_INPUT_ERROR_TYPE: &str = "InvalidAgentRunInput";
/// Error type of a run whose conversation outgrew what Temporal's payloads may carry.
pub const CONVERSATION_TOO_LARGE_ERROR_TYPE: &str = "ConversationTooLarge";
/// The conversation sent to one model call may be at most this large: Temporal refuses a
/// payload over 2 MB (and warns from 512 KB), and a refused payload would fail the workflow task
/// over and over. The run stops with a message instead.
pub const MAX_CONVERSATION_BYTES: usize = 1_500_000;
/// A run's model calls together may send at most this much: each call's conversation stays in
/// the history, which Temporal caps at 50 MB.
pub const MAX_HISTORY_CONVERSATION_BYTES: usize = 40_000_000;

#[workflow]
#[derive(Default)]
pub struct AgentWorkflow {
    pub(crate) progress: Progress,
}

/// What every step of one run shares.
struct Run {
    agent_id: String,
    run_id: String,
    messages: Vec<Message>,
    /// As the input says; `None`: 50 with a model, 3 on the offline echo.
    max_steps: Option<u32>,
    model: Option<String>,
    system: Option<String>,
    tools: Option<Vec<String>>,
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
        let RunPaths {
            alongside_steps,
            model_steps,
            store_by,
        } = RunPaths::of(ctx);
        let mut notifications = InFlight::default();
        let mut step_ids = Vec::new();
        let mut conversation = run.conversation();
        let mut sent_bytes = 0usize;
        let mut shown_model = run
            .model
            .clone()
            .unwrap_or_else(|| "(the worker's)".to_owned());
        // Known once the first step says whether the worker has a model.
        let mut max_steps = run.max_steps.unwrap_or(if model_steps {
            DEFAULT_MAX_STEPS
        } else {
            DEFAULT_ECHO_STEPS
        });
        let mut stop_reason = None;
        let ending = 'steps: {
            let mut index = 0;
            while index < max_steps {
                // A cancellation that arrived while the previous step was being stored ends the
                // run here: no step is in progress.
                if ctx.cancellation_token().is_cancelled() {
                    break 'steps Err(WorkflowTermination::cancelled());
                }
                let step_id = StepId::derived(&run.step_key, index);
                let started_at_ms = workflow_millis(ctx);
                let work = if model_steps {
                    let size = conversation_bytes(&conversation);
                    sent_bytes = sent_bytes.saturating_add(size);
                    if let Some(refused) = too_large(ctx, size, sent_bytes) {
                        break 'steps Err(refused);
                    }
                    notifications
                        .alongside(step::model_step(
                            ctx,
                            step::ModelStep {
                                agent_id: &run.agent_id,
                                number: index + 1,
                                max_steps,
                                conversation: &conversation,
                                model: run.model.as_deref(),
                                tools: run.tools.as_deref(),
                                shown_model: &shown_model,
                                started_at_ms,
                            },
                        ))
                        .await
                } else {
                    notifications
                        .alongside(step::legacy_step(
                            ctx,
                            &run.agent_id,
                            &run.messages,
                            index,
                            max_steps,
                            started_at_ms,
                        ))
                        .await
                };
                if index == 0 && work.echo && run.max_steps.is_none() {
                    // The worker has no model: the offline echo's default length.
                    max_steps = DEFAULT_ECHO_STEPS;
                }
                if let Some(model) = &work.usage.model {
                    shown_model = model.clone();
                }

                // The step has ended: storing and notifying it runs in a scope workflow
                // cancellation cannot abort, so a terminal step is never left unstored or
                // unannounced.
                let scope = WorkflowCancellationToken::new();
                let status = work.status();
                let stored = notifications
                    .alongside(store_step(
                        ctx,
                        store_by,
                        create_step_input(&run, &step_id, &work, started_at_ms),
                        format!("store {step_id} ({status})"),
                        &scope,
                    ))
                    .await;
                if let Err(error) = stored {
                    break 'steps Err(error.into());
                }
                let summary = work.summary(index + 1, step_id.as_str());
                ctx.state_mut(|wf| {
                    wf.progress.steps_done += 1;
                    wf.progress.last_step_id = Some(step_id.to_string());
                    wf.progress.echo = Some(work.echo);
                    wf.progress.steps.push(summary);
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

                match work.ending {
                    step::Ending::Success => {}
                    step::Ending::Cancelled => break 'steps Err(WorkflowTermination::cancelled()),
                    step::Ending::Failed(facts) => {
                        break 'steps Err(WorkflowTermination::failed_application(
                            ApplicationFailure::builder(facts.message)
                                .type_name(facts.error_type)
                                .non_retryable(true)
                                .build(),
                        ));
                    }
                }
                conversation.extend(work.messages);
                if !work.echo {
                    stop_reason = work.stop_reason.clone();
                }
                if !work.go_on {
                    break;
                }
                index += 1;
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
            stop_reason,
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
            max_steps: input.max_steps,
            model: input.model,
            system: input.system,
            tools: input.tools,
            step_key: format!("{workflow_id}/{}", ctx.run_id()),
        })
    }

    /// What the model is told first: the system prompt, then the run's messages, roles kept.
    fn conversation(&self) -> Vec<ChatMessage> {
        let system = self
            .system
            .iter()
            .map(|text| ChatMessage::text(ChatRole::System, text.clone()));
        let messages = self.messages.iter().map(|m| {
            let role = match m.role.as_str() {
                "system" => ChatRole::System,
                "assistant" => ChatRole::Assistant,
                _ => ChatRole::User,
            };
            ChatMessage::text(role, m.content.clone())
        });
        system.chain(messages).collect()
    }
}

fn create_step_input(
    run: &Run,
    step_id: &StepId,
    work: &step::StepWork,
    started_at_ms: i64,
) -> CreateStepInput {
    CreateStepInput {
        step_id: step_id.clone(),
        agent_id: run.agent_id.clone(),
        run_id: Some(run.run_id.clone()),
        status: work.status(),
        usage: work.usage.clone(),
        stop_reason: work.stop_reason.clone(),
        error_type: work.error_type.clone(),
        error_data: work.error_data.clone(),
        started_at_ms,
        metrics: Some(work.metrics),
        messages: work.messages.clone(),
    }
}

fn conversation_bytes(conversation: &[ChatMessage]) -> usize {
    serde_json::to_vec(conversation).map_or(0, |bytes| bytes.len())
}

/// Stops a run whose conversation would pass what Temporal's payloads, or its history, carry.
fn too_large(
    ctx: &WorkflowContext<AgentWorkflow>,
    size: usize,
    sent: usize,
) -> Option<WorkflowTermination> {
    let message = if size > MAX_CONVERSATION_BYTES {
        format!(
            "the conversation has grown to {size} bytes, over the {MAX_CONVERSATION_BYTES} a \
             model call may send through Temporal (its payload limit is 2 MB): the run stops \
             here. Start a new run with a shorter history, fewer or smaller tool results, or a \
             lower max_steps"
        )
    } else if sent > MAX_HISTORY_CONVERSATION_BYTES {
        format!(
            "the run's model calls have sent {sent} bytes of conversation, over the \
             {MAX_HISTORY_CONVERSATION_BYTES} its history may hold (Temporal caps a history at \
             50 MB): the run stops here. Start a new run, or lower max_steps"
        )
    } else {
        return None;
    };
    if !ctx.is_replaying() {
        tracing::warn!(workflow_id = ctx.workflow_id(), "{message}");
    }
    Some(WorkflowTermination::failed_application(
        ApplicationFailure::builder(message)
            .type_name(CONVERSATION_TOO_LARGE_ERROR_TYPE.to_owned())
            .non_retryable(true)
            .build(),
    ))
}

/// The step's work was cancelled because the workflow is being cancelled (the only way it is).
pub(crate) fn is_cancellation(
    ctx: &WorkflowContext<AgentWorkflow>,
    error: &ActivityExecutionError,
) -> bool {
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
pub(crate) fn workflow_millis(ctx: &WorkflowContext<AgentWorkflow>) -> i64 {
    ctx.workflow_time()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, duration_millis)
}

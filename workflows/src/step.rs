//! The work of one step, before it is stored: one model call, then the tool calls it asked for,
//! side by side (or, in histories from before the model step, the offline step body). What it
//! produces is what `create_step` stores and what decides whether the loop goes on, as Letta's
//! v1 agent loop does: tool calls go on, an answer without tool calls ends the run (`end_turn`),
//! an answer cut at the token limit ends it (`max_tokens_exceeded`), and the last allowed step
//! that still asked for tools ends it (`max_steps`).

use crate::agent::AgentWorkflow;
use crate::failure_facts::{StepFailureFacts, failure_message, step_failure_facts};
use crate::in_flight::all_in_order;
use crate::timeouts;
use crate::types::{StepSummary, ToolCallSummary};
use futures::FutureExt as _;
use stephook_activities::{
    CallModelInput, CallModelOutput, CallToolInput, LLM_API_ERROR, MODEL_UNAVAILABLE,
    ModelFailureDetails, StepActivities, StepBodyInput,
};
use stephook_core::chat::{ChatMessage, ToolCall};
use stephook_core::{Message, StepMetrics, StepStatus, Usage};
use stephook_model::Finish;
use temporalio_sdk::{ActivityExecutionError, WorkflowContext};

/// Stop reasons, as Letta names them.
pub(crate) const END_TURN: &str = "end_turn";
pub(crate) const MAX_TOKENS_EXCEEDED: &str = "max_tokens_exceeded";
pub(crate) const MAX_STEPS: &str = "max_steps";
pub(crate) const LLM_API_ERROR_STOP: &str = "llm_api_error";
const CANCELLED: &str = "cancelled";
/// How much of a text, a tool's arguments or its result `progress` carries per step.
const SUMMARY_TEXT: usize = 400;
const SUMMARY_TOOL: usize = 160;

/// How a step's work ended.
pub(crate) enum Ending {
    Success,
    Failed(StepFailureFacts),
    Cancelled,
}

/// One step's work, ready to be stored.
pub(crate) struct StepWork {
    pub(crate) ending: Ending,
    pub(crate) usage: Usage,
    /// `None` on a step that goes on (as Letta's).
    pub(crate) stop_reason: Option<String>,
    pub(crate) error_type: Option<String>,
    pub(crate) error_data: Option<serde_json::Value>,
    /// The assistant message, then the tool results.
    pub(crate) messages: Vec<ChatMessage>,
    pub(crate) metrics: StepMetrics,
    /// The loop goes on after this step.
    pub(crate) go_on: bool,
    /// The worker has no model: the offline echo, which goes on until `max_steps`.
    pub(crate) echo: bool,
}

impl StepWork {
    pub(crate) fn status(&self) -> StepStatus {
        match self.ending {
            Ending::Success => StepStatus::Success,
            Ending::Failed(_) => StepStatus::Failed,
            Ending::Cancelled => StepStatus::Cancelled,
        }
    }

    fn ended(ending: Ending, elapsed_ms: i64) -> Self {
        let (stop_reason, error_type, error_data) = match &ending {
            Ending::Cancelled => (Some(CANCELLED.to_owned()), None, None),
            Ending::Failed(facts) => (
                None,
                Some(facts.error_type.clone()),
                Some(serde_json::json!({ "message": facts.message })),
            ),
            Ending::Success => (None, None, None),
        };
        Self {
            ending,
            usage: Usage::default(),
            stop_reason,
            error_type,
            error_data,
            messages: Vec::new(),
            // A step that did not succeed spent all its time in its work.
            metrics: StepMetrics {
                step_ms: elapsed_ms,
                model_call_ms: elapsed_ms,
                tool_execution_ms: None,
            },
            go_on: false,
            echo: false,
        }
    }

    /// What `progress` shows of this step once it is stored.
    pub(crate) fn summary(&self, number: u32, step_id: &str) -> StepSummary {
        let assistant = self.messages.first();
        let results: Vec<&ChatMessage> = self.messages.iter().skip(1).collect();
        StepSummary {
            number,
            step_id: step_id.to_owned(),
            status: self.status().as_str().to_owned(),
            text: assistant
                .and_then(|m| m.content.as_deref())
                .map(|t| cut(t, SUMMARY_TEXT)),
            tool_calls: assistant
                .map(|m| {
                    m.tool_calls
                        .iter()
                        .map(|call| {
                            let result = results
                                .iter()
                                .find(|r| r.tool_call_id.as_deref() == Some(call.id.as_str()));
                            let text = result.and_then(|r| r.content.as_deref()).unwrap_or("");
                            ToolCallSummary {
                                name: call.function.name.clone(),
                                arguments: cut(&call.function.arguments, SUMMARY_TOOL),
                                result: cut(text, SUMMARY_TOOL),
                                is_error: text.starts_with("Error:"),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default(),
            total_tokens: self.usage.total_tokens,
            stop_reason: self.stop_reason.clone(),
        }
    }
}

/// What one model step needs to know.
pub(crate) struct ModelStep<'a> {
    pub(crate) agent_id: &'a str,
    /// 1-based.
    pub(crate) number: u32,
    pub(crate) max_steps: u32,
    pub(crate) conversation: &'a [ChatMessage],
    pub(crate) model: Option<&'a str>,
    pub(crate) tools: Option<&'a [String]>,
    /// For the Temporal UI's summary: the model asked for, or last answered as.
    pub(crate) shown_model: &'a str,
    pub(crate) started_at_ms: i64,
}

/// One model call, then its tool calls side by side.
pub(crate) async fn model_step(
    ctx: &WorkflowContext<AgentWorkflow>,
    step: ModelStep<'_>,
) -> StepWork {
    let called = ctx
        .execute_activity(
            StepActivities::call_model,
            CallModelInput {
                agent_id: step.agent_id.to_owned(),
                number: step.number,
                max_steps: step.max_steps,
                messages: step.conversation.to_vec(),
                model: step.model.map(str::to_owned),
                tools: step.tools.map(<[String]>::to_vec),
            },
            timeouts::call_model_options(format!(
                "model {}, step {}",
                step.shown_model, step.number
            )),
        )
        .await;
    let output: CallModelOutput = match called {
        Ok(output) => output,
        Err(error) => return model_failed(ctx, &error, elapsed(ctx, step.started_at_ms)),
    };
    let reply = output.reply;
    let mut messages = vec![reply.message.clone()];
    let calls = reply.message.tool_calls.clone();
    let mut tool_execution_ms = None;
    if !calls.is_empty() {
        let tools_started = crate::agent::workflow_millis(ctx);
        let answered = all_in_order(
            calls
                .iter()
                .map(|call| call_tool(ctx, call).boxed_local())
                .collect(),
        )
        .await;
        if ctx.cancellation_token().is_cancelled() {
            let mut work = StepWork::ended(Ending::Cancelled, elapsed(ctx, step.started_at_ms));
            work.usage = reply.usage;
            work.messages = messages;
            return work;
        }
        messages.extend(answered);
        tool_execution_ms = Some((crate::agent::workflow_millis(ctx) - tools_started).max(0));
    }
    let last = step.number >= step.max_steps;
    let (stop_reason, go_on) = if output.echo {
        // The offline echo goes on until max_steps, every step ending its turn (as before).
        (Some(END_TURN.to_owned()), !last)
    } else if !calls.is_empty() {
        if last {
            (Some(MAX_STEPS.to_owned()), false)
        } else {
            (None, true)
        }
    } else if reply.finish == Finish::Length {
        (Some(MAX_TOKENS_EXCEEDED.to_owned()), false)
    } else {
        (Some(END_TURN.to_owned()), false)
    };
    StepWork {
        ending: Ending::Success,
        usage: reply.usage,
        stop_reason,
        error_type: None,
        error_data: None,
        messages,
        metrics: StepMetrics {
            step_ms: elapsed(ctx, step.started_at_ms),
            model_call_ms: output.llm_request_ms,
            tool_execution_ms,
        },
        go_on,
        echo: output.echo,
    }
}

/// One tool call; a call that fails for good becomes an error the model reads.
async fn call_tool(ctx: &WorkflowContext<AgentWorkflow>, call: &ToolCall) -> ChatMessage {
    let done = ctx
        .execute_activity(
            StepActivities::call_tool,
            CallToolInput { call: call.clone() },
            timeouts::call_tool_options(format!("tool {}", call.function.name)),
        )
        .await;
    match done {
        Ok(output) => ChatMessage::tool_result(call, output.outcome.content),
        Err(error) => ChatMessage::tool_result(
            call,
            format!(
                "Error: the tool {} failed: {}",
                call.function.name,
                failure_message(&error)
            ),
        ),
    }
}

/// A model call that failed for good: cancelled, refused by the provider (`llm_api_error`, with
/// the cause and the provider's answer), or out of retries.
fn model_failed(
    ctx: &WorkflowContext<AgentWorkflow>,
    error: &ActivityExecutionError,
    elapsed_ms: i64,
) -> StepWork {
    if crate::agent::is_cancellation(ctx, error) {
        return StepWork::ended(Ending::Cancelled, elapsed_ms);
    }
    let facts = step_failure_facts(error);
    let provider = facts.error_type == LLM_API_ERROR || facts.error_type == MODEL_UNAVAILABLE;
    let details: Option<ModelFailureDetails> = crate::failure_facts::details(error);
    let mut work = StepWork::ended(Ending::Failed(facts.clone()), elapsed_ms);
    if provider {
        work.stop_reason = Some(LLM_API_ERROR_STOP.to_owned());
        if let Some(details) = details {
            work.error_type = Some(details.error_type);
            work.error_data = Some(serde_json::json!({
                "status": details.status,
                "message": details.excerpt,
                "error": facts.message,
            }));
        }
    }
    work
}

/// The step body of histories from before the model step: the offline echo, one activity.
pub(crate) async fn legacy_step(
    ctx: &WorkflowContext<AgentWorkflow>,
    agent_id: &str,
    messages: &[Message],
    index: u32,
    max_steps: u32,
    started_at_ms: i64,
) -> StepWork {
    let body = ctx
        .execute_activity(
            StepActivities::run_step_body,
            StepBodyInput {
                agent_id: agent_id.to_owned(),
                messages: messages.to_vec(),
                index,
            },
            timeouts::step_body_options(format!("step {} of {max_steps}", index + 1)),
        )
        .await;
    match body {
        Ok(output) => StepWork {
            ending: Ending::Success,
            usage: output.output.usage,
            stop_reason: Some(output.output.stop_reason),
            error_type: None,
            error_data: None,
            messages: Vec::new(),
            metrics: output.metrics,
            go_on: index + 1 < max_steps,
            echo: true,
        },
        Err(error) if crate::agent::is_cancellation(ctx, &error) => {
            StepWork::ended(Ending::Cancelled, elapsed(ctx, started_at_ms))
        }
        Err(error) => StepWork::ended(
            Ending::Failed(step_failure_facts(&error)),
            elapsed(ctx, started_at_ms),
        ),
    }
}

fn elapsed(ctx: &WorkflowContext<AgentWorkflow>, started_at_ms: i64) -> i64 {
    (crate::agent::workflow_millis(ctx) - started_at_ms).max(0)
}

/// At most `limit` bytes of `text`, cut on a character boundary, `…` marking a cut.
fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

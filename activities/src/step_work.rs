//! The work of one agent step, behind `call_model` and `call_tool`: the model call (or the
//! offline echo when the worker has no model), and one tool call. Both heartbeat while they
//! wait, so a workflow cancellation reaches them and aborts the request in flight.

use crate::failures::{model_failure, step_body_failure, tool_unavailable, unknown_tools};
use crate::types::{CallModelInput, CallModelOutput, CallToolOutput};
use std::future::Future;
use std::time::{Duration, Instant};
use stephook_core::chat::{ChatMessage, ChatRole, ToolCall};
use stephook_core::step_body::plan_step;
use stephook_core::{Message, duration_millis};
use stephook_model::{Finish, ModelClient, ModelReply, ModelRequest};
use stephook_tools::McpServers;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// How often a waiting activity heartbeats. Cancellation only reaches an activity through a
/// heartbeat, and a worker that died is noticed when heartbeats stop; keep this well under the
/// activities' heartbeat timeout.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// Runs `work`, heartbeating every [`HEARTBEAT_EVERY`] while it runs, and stops it (dropping the
/// request in flight) when the activity is cancelled. The first heartbeat waits for the first
/// tick: the SDK sends a first heartbeat to the server at once, and work that ends sooner (the
/// offline echo, a quick tool) would pay a server round trip for nothing. Cancellation is noticed
/// no later than before: after the first heartbeat the SDK throttles them to 80 % of the
/// heartbeat timeout anyway.
pub(crate) async fn heartbeating<T>(
    ctx: &ActivityContext,
    work: impl Future<Output = T>,
) -> Result<T, ActivityError> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return Ok(output),
            () = ctx.cancelled() => return Err(ActivityError::cancelled()),
            () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
        }
        ctx.record_heartbeat(()).await?;
    }
}

/// One model call with the worker's model and tools.
pub(crate) async fn call_model(
    ctx: &ActivityContext,
    model: &ModelClient,
    tools: &McpServers,
    input: CallModelInput,
) -> Result<CallModelOutput, ActivityError> {
    let started = Instant::now();
    let tools = tools
        .specs(input.tools.as_deref())
        .map_err(|unknown| unknown_tools(&unknown, tools))?;
    let request = ModelRequest {
        model: input.model,
        messages: input.messages,
        tools,
    };
    let reply = heartbeating(ctx, model.complete(&request))
        .await?
        .map_err(model_failure)?;
    Ok(CallModelOutput {
        reply,
        echo: false,
        llm_request_ms: duration_millis(started.elapsed()),
    })
}

/// The offline echo: the deterministic step body shared with direct mode, as a model answer
/// without tool calls. Its markers (`fail-at:N`, `sleep-ms:N`) still work.
pub(crate) async fn echo(
    ctx: &ActivityContext,
    input: CallModelInput,
) -> Result<CallModelOutput, ActivityError> {
    let started = Instant::now();
    let messages: Vec<Message> = input
        .messages
        .iter()
        .map(|m| Message {
            role: role_name(m.role).to_owned(),
            content: m.content.clone().unwrap_or_default(),
        })
        .collect();
    let plan = plan_step(&messages, input.number.saturating_sub(1));
    heartbeating(ctx, tokio::time::sleep(plan.delay)).await?;
    let output = plan.result.map_err(step_body_failure)?;
    Ok(CallModelOutput {
        reply: ModelReply {
            message: ChatMessage::text(ChatRole::Assistant, output.reply),
            finish: Finish::Stop,
            usage: output.usage,
        },
        echo: true,
        llm_request_ms: duration_millis(started.elapsed()),
    })
}

/// One tool call. What the model should read (an unknown tool, bad arguments, the tool's own
/// error) is a result; a server that does not answer is a retryable failure.
pub(crate) async fn call_tool(
    ctx: &ActivityContext,
    tools: &McpServers,
    call: &ToolCall,
    timeout: Duration,
) -> Result<CallToolOutput, ActivityError> {
    let started = Instant::now();
    let outcome = heartbeating(
        ctx,
        tools.call(&call.function.name, &call.function.arguments, timeout),
    )
    .await?
    .map_err(tool_unavailable)?;
    Ok(CallToolOutput {
        outcome,
        tool_ms: duration_millis(started.elapsed()),
    })
}

fn role_name(role: ChatRole) -> &'static str {
    match role {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
        ChatRole::Tool => "tool",
    }
}

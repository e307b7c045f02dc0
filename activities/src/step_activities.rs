//! The activity implementations, registered on the worker as one [`StepActivities`] value that
//! shares the store pool, the webhook client and the metrics across every activity task.

use crate::early_sends::{EarlySends, EarlySendsInFlight};
use crate::failures::{
    fast_path_failure, invalid_webhook_input, step_body_failure, store_failure, webhook_failure,
};
use crate::fleet::FleetWebhooks;
use crate::metrics::WebhookMetrics;
use crate::types::{
    CallModelInput, CallModelOutput, CallToolInput, CallToolOutput, CreateStepInput,
    RecordUndeliveredInput, StepBodyInput, StepBodyOutput, WebhookResult,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stephook_core::step_body::plan_step;
use stephook_core::{Endpoint, Step, StepId, StepMetrics, duration_millis, now_millis};
use stephook_direct::{FastPath, FastPathError, FastPathResult, NotSent};
use stephook_model::ModelClient;
use stephook_store::{Notify, NotifyTo, Store};
use stephook_tools::McpServers;
use stephook_webhook::WebhookService;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

const WEBHOOK_INPUT_SHAPE: &str =
    r#"send_step_complete_webhook expects {"step_id": "step-<uuid>"}"#;

/// How long after `create_step` a notification falls due for the outbox dispatchers. Longer than
/// the webhook activity's whole budget (30 s schedule-to-close, checked in the workflow's
/// timeouts), so the dispatchers only take over once the fast path has given up.
pub const DEFAULT_OUTBOX_GRACE: Duration = Duration::from_secs(60);
/// An attempt that finds the row held by another holder (the early send of the worker that
/// stored the step, or a dispatcher) waits at most this long for that send to end, so that its
/// result says what happened (`already_delivered`) instead of leaving a delivered notification
/// counted as left to the outbox.
const HELD_WAIT: Duration = Duration::from_secs(5);
const HELD_POLL: Duration = Duration::from_millis(100);
/// One tool call, answer included, unless the worker says otherwise.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);
pub struct StepActivities {
    store: Store,
    metrics: Arc<WebhookMetrics>,
    /// The worker's model; `None`: the offline echo.
    model: Option<ModelClient>,
    /// The worker's MCP servers (none: no tools).
    tools: Arc<McpServers>,
    /// One tool call, answer included.
    tool_timeout: Duration,
    /// The endpoint this worker sends to; `None` without a URL.
    endpoint: Option<Endpoint>,
    fast_path: FastPath,
    /// Notifications sent as soon as `create_step` stores their step.
    early: EarlySends,
    fleet: FleetWebhooks,
    /// See [`DEFAULT_OUTBOX_GRACE`].
    outbox_grace: Duration,
}

impl StepActivities {
    pub fn new(store: Store, webhook: WebhookService, metrics: Arc<WebhookMetrics>) -> Self {
        Self::with_outbox_grace(store, webhook, metrics, DEFAULT_OUTBOX_GRACE)
    }

    /// Tests shorten the grace period.
    pub fn with_outbox_grace(
        store: Store,
        webhook: WebhookService,
        metrics: Arc<WebhookMetrics>,
        outbox_grace: Duration,
    ) -> Self {
        let fast_path = FastPath::new(store.clone(), webhook.clone(), outbox_grace);
        Self {
            endpoint: webhook.config().endpoint(),
            early: EarlySends::new(fast_path.clone(), Arc::clone(&metrics)),
            fast_path,
            fleet: FleetWebhooks::new(store.clone()),
            store,
            metrics,
            model: None,
            tools: Arc::new(McpServers::none()),
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
            outbox_grace,
        }
    }

    /// For the worker's graceful stop: the notifications `create_step` is still sending.
    pub fn early_sends_in_flight(&self) -> EarlySendsInFlight {
        self.early.in_flight()
    }

    /// The model the steps call (without one they are the offline echo).
    pub fn with_model(mut self, model: Option<ModelClient>) -> Self {
        self.model = model;
        self
    }

    /// The MCP servers whose tools the model may call, and how long one call may take.
    pub fn with_tools(mut self, tools: Arc<McpServers>, timeout: Duration) -> Self {
        self.tools = tools;
        self.tool_timeout = timeout;
        self
    }

    /// One fast-path attempt; a row someone else is sending is looked at again until they are
    /// done or [`HELD_WAIT`] has passed. Never two sends at once: each look is a fenced take.
    async fn send_after_any_holder(
        &self,
        step_id: &StepId,
        attempt: u32,
    ) -> Result<FastPathResult, FastPathError> {
        let deadline = Instant::now() + HELD_WAIT;
        loop {
            match self.fast_path.send_once(step_id, attempt).await? {
                FastPathResult::NotSent(NotSent::HeldElsewhere) if Instant::now() < deadline => {
                    tokio::time::sleep(HELD_POLL).await;
                }
                result => return Ok(result),
            }
        }
    }

    /// Where a stored step's notification goes: this worker's endpoint; without a URL, to the
    /// fleet's dispatchers when any run on this store (the first endpoint that takes the row
    /// binds it), else nowhere (webhooks are off).
    async fn notify_to(&self) -> Option<NotifyTo<'_>> {
        match &self.endpoint {
            Some(endpoint) => Some(NotifyTo::Endpoint(endpoint)),
            None => self
                .fleet
                .sends_webhooks()
                .await
                .then_some(NotifyTo::Unbound),
        }
    }
}

#[activities]
impl StepActivities {
    /// The step's work. A failure of the work itself is final (non-retryable, carrying the
    /// step's error type and message); only infrastructure trouble is retried.
    #[activity(name = "run_step_body")]
    pub async fn run_step_body(
        ctx: ActivityContext,
        input: StepBodyInput,
    ) -> Result<StepBodyOutput, ActivityError> {
        let started = Instant::now();
        let plan = plan_step(&input.messages, input.index);
        crate::step_work::heartbeating(&ctx, tokio::time::sleep(plan.delay)).await?;
        let model_call = started.elapsed();
        let output = plan.result.map_err(step_body_failure)?;
        Ok(StepBodyOutput {
            output,
            metrics: StepMetrics {
                step_ms: duration_millis(started.elapsed()),
                model_call_ms: duration_millis(model_call),
                tool_execution_ms: None,
            },
        })
    }

    /// One model call: the conversation so far and the tools to offer, to the worker's model (or
    /// the offline echo when it has none). It heartbeats while it waits, and a workflow
    /// cancellation aborts the request. A provider that refuses for good fails it
    /// non-retryably (`LlmApiError`); one that does not answer, or asks to wait, is retried
    /// with backoff, honouring `Retry-After`.
    #[activity(name = "call_model")]
    pub async fn call_model(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CallModelInput,
    ) -> Result<CallModelOutput, ActivityError> {
        match &self.model {
            Some(model) => crate::step_work::call_model(&ctx, model, &self.tools, input).await,
            None => crate::step_work::echo(&ctx, input).await,
        }
    }

    /// One tool call the model asked for, on the MCP server that has the tool. What the model
    /// should read about (an unknown tool, arguments that are not JSON, the tool's error) is a
    /// result; a server that does not answer is retried.
    #[activity(name = "call_tool")]
    pub async fn call_tool(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: CallToolInput,
    ) -> Result<CallToolOutput, ActivityError> {
        crate::step_work::call_tool(&ctx, &self.tools, &input.call, self.tool_timeout).await
    }

    /// Stores the step in its terminal state with its metrics and, when a webhook is configured,
    /// its outbox row (due after the grace period), in one transaction, by id: a retry (or a
    /// replayed workflow) rewrites the same row instead of adding one. Once committed, a step
    /// for this worker's endpoint is notified at once, in the background: the agent does not
    /// wait for it, and the webhook activity's first attempt reports how it went.
    #[activity(name = "create_step")]
    pub async fn create_step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: CreateStepInput,
    ) -> Result<(), ActivityError> {
        let now = now_millis();
        let step = Step {
            id: input.step_id,
            agent_id: input.agent_id,
            run_id: input.run_id,
            status: input.status,
            usage: input.usage,
            stop_reason: input.stop_reason,
            error_type: input.error_type,
            error_data: input.error_data,
            created_at: input.started_at_ms,
            updated_at: now,
            completed_at: input.status.is_terminal().then_some(now),
        };
        let to = self.notify_to().await;
        // A terminal step for this worker's endpoint: its transaction also takes the
        // notification's row for the send that starts once it commits, so that send writes
        // nothing before it goes out.
        if matches!(to, Some(NotifyTo::Endpoint(_)))
            && step.status.is_terminal()
            && let Some((early, taken)) = self
                .early
                .reserve(&step.id)
                .zip(self.fast_path.take_on_commit())
        {
            let held = self
                .store
                .upsert_step_and_take(
                    &step,
                    input.metrics,
                    &input.messages,
                    taken.take(),
                    self.outbox_grace,
                )
                .await
                .map_err(store_failure)?;
            early.send(held.then_some(taken));
            return Ok(());
        }
        let notify = to.map(|to| Notify {
            after: self.outbox_grace,
            to,
        });
        self.store
            .upsert_step_with_messages(&step, input.metrics, &input.messages, notify)
            .await
            .map_err(store_failure)
    }

    /// One delivery attempt: the fast path of the step's outbox row. The first attempt on the
    /// worker whose `create_step` stored the step waits for the send that started then, and
    /// reports it as its own. Otherwise it takes the row as a dispatcher would before it sends (a
    /// 2xx marks it delivered); a row already delivered is not sent again (the result says
    /// delivered); one that someone else is sending is looked at again for up to [`HELD_WAIT`];
    /// one still held then, a dead one and another endpoint's are left to the outbox. The input
    /// is taken as raw JSON and checked here: a payload the SDK failed to decode would be a
    /// *retryable* failure and be retried until schedule-to-close, while a wrong shape can never
    /// succeed and must fail after one attempt.
    #[activity(name = "send_step_complete_webhook")]
    pub async fn send_step_complete_webhook(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: serde_json::Value,
    ) -> Result<WebhookResult, ActivityError> {
        let step_id = parse_webhook_input(&input).map_err(invalid_webhook_input)?;
        let attempt = ctx.info().attempt.max(1);
        // The first attempt reports the send `create_step` started on this worker, if any.
        let early = match (attempt, self.early.take(&step_id)) {
            (1, Some(early)) => early.await.ok(),
            _ => None,
        };
        let sent_early = early.is_some();
        let result = match early {
            Some(outcome) => outcome,
            None => self.send_after_any_holder(&step_id, attempt).await,
        }
        .map_err(fast_path_failure)?;
        let report = match result {
            FastPathResult::NotSent(why) => {
                if !matches!(why, NotSent::NotConfigured) {
                    tracing::info!(
                        step_id = step_id.as_str(),
                        outcome = why.label(),
                        "step-complete webhook not sent by the activity: the outbox has it"
                    );
                }
                return Ok(WebhookResult::not_sent(&step_id, attempt, &why));
            }
            FastPathResult::Sent { report, .. } => report,
        };
        if !sent_early {
            // An early send is counted when it is made, whether an activity takes it or not.
            self.metrics.observe(&report);
        }
        if let Some(failure) = webhook_failure(&step_id, attempt, &report.outcome) {
            return Err(failure);
        }
        Ok(WebhookResult::sent(&step_id, attempt, &report.outcome))
    }

    /// Legacy: workflow histories from before the outbox call this when the fast path gave up.
    /// It hands the notification to the dispatchers, due now (the step's row is pending anyway,
    /// so this only saves the rest of the grace period). Kept registered so those runs finish.
    #[activity(name = "record_undelivered_webhook")]
    pub async fn record_undelivered_webhook(
        self: Arc<Self>,
        _ctx: ActivityContext,
        input: RecordUndeliveredInput,
    ) -> Result<(), ActivityError> {
        self.store
            .hand_over_to_dispatchers(&input.step_id)
            .await
            .map_err(store_failure)?;
        self.metrics.record_undelivered();
        Ok(())
    }
}

/// Reads `{"step_id": "step-<uuid>"}`; the error says what was expected and what was wrong.
pub fn parse_webhook_input(input: &serde_json::Value) -> Result<StepId, String> {
    let object = input
        .as_object()
        .ok_or_else(|| format!("{WEBHOOK_INPUT_SHAPE}, got {}", json_kind(input)))?;
    let raw = match object.get("step_id") {
        Some(serde_json::Value::String(raw)) => raw,
        Some(other) => {
            return Err(format!(
                "{WEBHOOK_INPUT_SHAPE}: step_id must be a string, got {}",
                json_kind(other)
            ));
        }
        None => {
            let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
            fields.sort_unstable();
            return Err(format!(
                "{WEBHOOK_INPUT_SHAPE}: missing field step_id (fields given: {fields:?})"
            ));
        }
    };
    StepId::parse(raw).map_err(|e| format!("{WEBHOOK_INPUT_SHAPE}: {e}"))
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn activity_type_names_are_the_documented_ones() {
        use crate::names;
        assert_eq!(StepActivities::run_step_body.name(), names::RUN_STEP_BODY);
        assert_eq!(StepActivities::call_model.name(), names::CALL_MODEL);
        assert_eq!(StepActivities::call_tool.name(), names::CALL_TOOL);
        assert_eq!(StepActivities::create_step.name(), names::CREATE_STEP);
        assert_eq!(
            StepActivities::send_step_complete_webhook.name(),
            names::SEND_STEP_COMPLETE_WEBHOOK
        );
        assert_eq!(
            StepActivities::record_undelivered_webhook.name(),
            names::RECORD_UNDELIVERED_WEBHOOK
        );
    }

    #[test]
    fn webhook_input_must_be_a_step_id_object() {
        let id = StepId::derived("run", 1);
        assert_eq!(
            parse_webhook_input(&json!({ "step_id": id.as_str() })),
            Ok(id)
        );

        let cases = [
            (json!({ "stepId": "step-x" }), "missing field step_id"),
            (json!({ "step_id": 12 }), "must be a string"),
            (json!({ "step_id": "step-123" }), "invalid step id"),
            (json!("step-123"), "got a string"),
            (serde_json::Value::Null, "got null"),
        ];
        for (input, expected) in cases {
            let err = parse_webhook_input(&input).expect_err("rejected");
            assert!(err.contains(expected), "{input}: {err}");
            assert!(err.starts_with(WEBHOOK_INPUT_SHAPE), "{err}");
        }
    }
}

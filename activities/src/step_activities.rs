//! The activity implementations, registered on the worker as one [`StepActivities`] value that
//! shares the store pool, the webhook client and the metrics across every activity task.

use crate::failures::{
    fast_path_failure, invalid_webhook_input, step_body_failure, store_failure, webhook_failure,
};
use crate::fleet::FleetWebhooks;
use crate::metrics::WebhookMetrics;
use crate::types::{
    CreateStepInput, RecordUndeliveredInput, StepBodyInput, StepBodyOutput, WebhookResult,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stephook_core::step_body::plan_step;
use stephook_core::{Endpoint, Step, StepId, StepMetrics, duration_millis, now_millis};
use stephook_direct::{FastPath, FastPathResult, NotSent};
use stephook_store::{Notify, NotifyTo, Store};
use stephook_webhook::WebhookService;
use temporalio_macros::activities;
use temporalio_sdk::activities::{ActivityContext, ActivityError};

/// How often a waiting step body heartbeats. Cancellation only reaches an activity through a
/// heartbeat, and a worker that died is noticed when heartbeats stop; keep this well under the
/// step body's heartbeat timeout.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

const WEBHOOK_INPUT_SHAPE: &str =
    r#"send_step_complete_webhook expects {"step_id": "step-<uuid>"}"#;

/// How long after `create_step` a notification falls due for the outbox dispatchers. Longer than
/// the webhook activity's whole budget (30 s schedule-to-close, checked in the workflow's
/// timeouts), so the dispatchers only take over once the fast path has given up.
pub const DEFAULT_OUTBOX_GRACE: Duration = Duration::from_secs(60);
pub struct StepActivities {
    store: Store,
    metrics: Arc<WebhookMetrics>,
    /// The endpoint this worker sends to; `None` without a URL.
    endpoint: Option<Endpoint>,
    fast_path: FastPath,
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
        Self {
            endpoint: webhook.config().endpoint(),
            fast_path: FastPath::new(store.clone(), webhook, outbox_grace),
            fleet: FleetWebhooks::new(store.clone()),
            store,
            metrics,
            outbox_grace,
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
        wait_heartbeating(&ctx, plan.delay).await?;
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

    /// Stores the step in its terminal state with its metrics and, when a webhook is configured,
    /// its outbox row (due after the grace period), in one transaction, by id: a retry (or a
    /// replayed workflow) rewrites the same row instead of adding one.
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
        let notify = self.notify_to().await.map(|to| Notify {
            after: self.outbox_grace,
            to,
        });
        self.store
            .upsert_step(&step, input.metrics, notify)
            .await
            .map_err(store_failure)
    }

    /// One delivery attempt: the fast path of the step's outbox row. It takes the row as a
    /// dispatcher would before it sends (a 2xx marks it delivered); a row already delivered is
    /// not sent again (the result says delivered), and one that a dispatcher holds, that is dead
    /// or that is another endpoint's is left to the outbox. The input is taken as raw JSON and
    /// checked here: a payload the SDK failed to decode would be a *retryable* failure and be
    /// retried until schedule-to-close, while a wrong shape can never succeed and must fail
    /// after one attempt.
    #[activity(name = "send_step_complete_webhook")]
    pub async fn send_step_complete_webhook(
        self: Arc<Self>,
        ctx: ActivityContext,
        input: serde_json::Value,
    ) -> Result<WebhookResult, ActivityError> {
        let step_id = parse_webhook_input(&input).map_err(invalid_webhook_input)?;
        let attempt = ctx.info().attempt.max(1);
        let result = self
            .fast_path
            .send_once(&step_id, attempt)
            .await
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
        self.metrics.observe(&report);
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

/// Waits `delay` (the stand-in model call), heartbeating so a cancellation or a dead worker is
/// noticed, and stops at once when the activity is cancelled.
async fn wait_heartbeating(ctx: &ActivityContext, delay: Duration) -> Result<(), ActivityError> {
    if delay.is_zero() {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + delay;
    loop {
        ctx.record_heartbeat(()).await?;
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(());
        }
        tokio::select! {
            () = ctx.cancelled() => return Err(ActivityError::cancelled()),
            () = tokio::time::sleep((deadline - now).min(HEARTBEAT_EVERY)) => {}
        }
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

//! Things going wrong: a failing endpoint (retryable and permanent), bad activity input, a step
//! whose work fails, and a cancelled run.

use crate::harness::{self, SIGNING_SECRET, env, wait_for_steps_notified};
use clap::Parser as _;
use std::time::{Duration, Instant};
use stephook::cli::Cli;
use stephook_activities::{INVALID_WEBHOOK_INPUT, StepActivities};
use stephook_core::{StepId, StepStatus};
use stephook_store::DeliveryState;
use stephook_testkit::Reply;
use stephook_workflows::workflow_id_for;
use temporalio_client::errors::{ActivityResultError, WorkflowGetResultError};
use temporalio_client::{
    ActivityDescribeOptions, ActivityStartOptions, WorkflowCancelOptions, WorkflowGetResultOptions,
};
use temporalio_common::ActivityCloseTimeouts;
use temporalio_common::error::IncomingError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_500_is_retried_within_30s_then_left_to_the_outbox_and_redelivered() {
    let Some(env) = env(Reply::Status(500)).await else {
        return;
    };
    let worker = env.start_worker();
    let started = Instant::now();
    let handle = env.start_run("answers-500", &["hi"], 1).await;
    let result = harness::result(&handle).await;
    let took = started.elapsed();

    // The run completes: a webhook failure never fails the run.
    assert_eq!(
        (
            result.steps,
            result.webhooks_delivered,
            result.webhook_failures
        ),
        (1, 0, 1)
    );
    let step_id = StepId::parse(&result.step_ids[0]).unwrap();
    let attempts = env.receiver.requests();
    assert!(attempts.len() >= 2, "retried: {} attempts", attempts.len());
    let spread = attempts.last().unwrap().received_at - attempts[0].received_at;
    assert!(spread < Duration::from_secs(30), "gave up after {spread:?}");
    assert!(took < Duration::from_secs(45), "the run took {took:?}");
    for attempt in &attempts {
        assert_eq!(attempt.step_id().as_deref(), Some(step_id.as_str()));
        assert_eq!(attempt.header("webhook-id"), Some(step_id.as_str()));
    }

    // Not dead: the outbox row written with the step waits for the dispatcher, with every
    // fast-path attempt noted on it.
    let delivery = env
        .store
        .delivery(&step_id)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(delivery.state, DeliveryState::Pending);
    assert_eq!(delivery.source, "temporal");
    assert_eq!(delivery.step_status, StepStatus::Success);
    assert_eq!(delivery.last_http_status, Some(500));
    assert_eq!(delivery.attempts, attempts.len() as i64, "{delivery:?}");
    assert_eq!(
        delivery.scheduled_attempts, 0,
        "the schedule has not started"
    );
    assert!(
        delivery.last_error.as_deref().unwrap_or("").contains("500"),
        "{delivery:?}"
    );
    worker.stop().await.expect("graceful stop");

    // Once the endpoint is healthy, `deliveries redeliver --now` sends it (same webhook-id).
    env.receiver.set_reply(Reply::Status(200));
    let cli = Cli::try_parse_from([
        "stephook",
        "deliveries",
        "redeliver",
        step_id.as_str(),
        "--now",
        "--webhook-url",
        &env.receiver.url(),
        "--webhook-signing-secret",
        SIGNING_SECRET,
        "--database-url",
        &env.database_url,
    ])
    .expect("valid command line");
    stephook::commands::run(cli).await.expect("redelivered");
    let requests = env.receiver.requests();
    assert_eq!(requests.len(), attempts.len() + 1);
    assert_eq!(
        requests.last().unwrap().header("webhook-id"),
        Some(step_id.as_str())
    );
    let delivery = env.store.delivery(&step_id).await.unwrap().expect("row");
    assert_eq!(delivery.state, DeliveryState::Delivered);
    assert_eq!(delivery.attempts, 1, "counted from the redelivery");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_404_gets_one_fast_path_attempt_then_one_outbox_attempt_then_is_dead() {
    let Some(env) = env(Reply::Status(404)).await else {
        return;
    };
    let worker = env.start_worker();
    let handle = env.start_run("answers-404", &["hi"], 1).await;
    let result = harness::result(&handle).await;
    assert_eq!(
        (
            result.steps,
            result.webhooks_delivered,
            result.webhook_failures
        ),
        (1, 0, 1)
    );
    assert_eq!(env.receiver.count(), 1, "a permanent answer is not retried");
    assert_eq!(
        harness::progress(&handle).await.map(|p| p.webhook_failures),
        Some(1),
        "the progress query counts it too, after the run"
    );
    let step_id = StepId::parse(&result.step_ids[0]).unwrap();

    // After the grace period the dispatcher asks once more; a permanent answer is final.
    let deadline = Instant::now() + harness::TEST_OUTBOX_GRACE + Duration::from_secs(30);
    let delivery = loop {
        let delivery = env.store.delivery(&step_id).await.unwrap().expect("row");
        if delivery.state == DeliveryState::Dead || Instant::now() > deadline {
            break delivery;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivery.state, DeliveryState::Dead, "{delivery:?}");
    assert_eq!(delivery.attempts, 2);
    assert_eq!(delivery.last_http_status, Some(404));
    assert_eq!(env.receiver.count(), 2);
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhook_input_fails_after_one_attempt_with_a_clear_message() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = env.start_worker();
    // Called by name as another SDK would, with a wrong field name, and a retry policy that
    // would retry a retryable failure for the whole 30 s.
    let options = ActivityStartOptions::new(
        env.task_queue.clone(),
        "bad-input",
        ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: Duration::from_secs(30),
            start_to_close: Duration::from_secs(15),
        },
    )
    .retry_policy(stephook_workflows::timeouts::webhook_retry_policy())
    .build();
    let handle = env
        .client
        .start_activity(
            StepActivities::send_step_complete_webhook,
            serde_json::json!({ "stepId": "step-0" }),
            options,
        )
        .await
        .expect("start the activity");
    let error = tokio::time::timeout(Duration::from_secs(20), handle.result())
        .await
        .expect("ended well before schedule-to-close")
        .expect_err("the activity fails");
    let ActivityResultError::ActivityFailed(IncomingError::Application(failure)) = &error else {
        panic!("expected an application failure, got {error:?}");
    };
    assert!(failure.is_non_retryable());
    assert_eq!(failure.type_name(), Some(INVALID_WEBHOOK_INPUT));
    let message = failure.to_string();
    assert!(message.contains("missing field step_id"), "{message}");
    assert!(message.contains("stepId"), "says what was given: {message}");
    let description = handle
        .describe(ActivityDescribeOptions::default())
        .await
        .expect("describe");
    assert_eq!(description.attempt(), 1);
    assert_eq!(env.receiver.count(), 0);
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_step_is_stored_failed_notified_and_fails_the_run() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    env.probe_store_on_delivery();
    let worker = env.start_worker();
    // Steps count from 1: `fail-at:2` fails the second step.
    let handle = env.start_run("fails-at-2", &["go", "fail-at:2"], 3).await;
    let error = tokio::time::timeout(
        harness::RUN_TIMEOUT,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("ended in time")
    .expect_err("the run fails");
    let WorkflowGetResultError::Failed(cause) = &error else {
        panic!("expected a failed run, got {error:?}");
    };
    let IncomingError::Application(failure) = cause.as_ref() else {
        panic!("expected an application failure, got {cause:?}");
    };
    assert_eq!(failure.type_name(), Some("StepBodyFailed"));
    assert!(
        failure.to_string().contains("step 2 failed") && failure.to_string().contains("fail-at:2"),
        "{failure}"
    );

    let steps = env.steps("fails-at-2").await;
    let statuses: Vec<StepStatus> = steps.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Success, StepStatus::Failed]);
    assert_eq!(steps[1].error_type.as_deref(), Some("StepBodyFailed"));
    let requests = env.receiver.requests();
    let notified: Vec<String> = requests.iter().filter_map(|r| r.step_id()).collect();
    let stored: Vec<String> = steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(notified, stored);
    assert_eq!(requests[1].probe.as_deref(), Some("failed"));
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_run_stores_and_notifies_the_current_step_as_cancelled() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    env.probe_store_on_delivery();
    let worker = env.start_worker();
    // Every step takes 2 s, so the cancellation lands in step 1's work.
    let handle = env.start_run("cancelled", &["go sleep-ms:2000"], 3).await;
    wait_for_steps_notified(&handle, 1).await;
    handle
        .cancel(WorkflowCancelOptions::default())
        .await
        .expect("cancel");
    let error = tokio::time::timeout(
        harness::RUN_TIMEOUT,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("ended in time")
    .expect_err("the run ends cancelled");
    assert!(
        matches!(error, WorkflowGetResultError::Cancelled { .. }),
        "{error:?}"
    );

    let steps = env.steps("cancelled").await;
    let statuses: Vec<StepStatus> = steps.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Success, StepStatus::Cancelled]);
    let requests = env.receiver.requests();
    let notified: Vec<String> = requests.iter().filter_map(|r| r.step_id()).collect();
    let stored: Vec<String> = steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(notified, stored, "the cancelled step is notified too");
    assert_eq!(requests[1].probe.as_deref(), Some("cancelled"));
    assert_eq!(workflow_id_for("cancelled"), "agent-run-cancelled");
    worker.stop().await.expect("graceful stop");
}

//! Issue 11 on a real dev server: the webhook activity is a holder like any dispatcher (a
//! delivered notification is never sent again, whoever calls the activity), a worker with a URL
//! makes every notification it handles durable, and a fleet delivers every notification
//! whichever worker ran which activity.

use crate::harness::{self, RUN_TIMEOUT, TEST_OUTBOX_GRACE, env, wait_until_delivered};
use std::time::{Duration, Instant};
use stephook_activities::{CreateStepInput, StepActivities, WebhookResult};
use stephook_core::{Step, StepId, StepStatus, Usage, WebhookArgs};
use stephook_store::{AttemptPath, DeliveryState};
use stephook_testkit::Reply;
use stephook_workflows::timeouts;
use temporalio_client::ActivityStartOptions;
use temporalio_sdk::ActivityCloseTimeouts;

/// How long a test waits for the outbox after the grace period.
const OUTBOX_WAIT: Duration = Duration::from_secs(60);

/// Calls `send_step_complete_webhook` by name, as another SDK's workflow (or a retried activity)
/// does: a standalone activity on the worker's task queue, with the workflow's own options.
async fn call_webhook_activity(
    env: &harness::Env,
    id: &StepId,
    activity_id: &str,
) -> Result<WebhookResult, String> {
    call_webhook_activity_on(env, &env.task_queue, id, activity_id).await
}

/// [`call_webhook_activity`] on another task queue (the workers that poll it).
async fn call_webhook_activity_on(
    env: &harness::Env,
    task_queue: &str,
    id: &StepId,
    activity_id: &str,
) -> Result<WebhookResult, String> {
    let options = ActivityStartOptions::new(
        task_queue.to_owned(),
        activity_id.to_owned(),
        ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: timeouts::WEBHOOK_SCHEDULE_TO_CLOSE,
            start_to_close: timeouts::WEBHOOK_START_TO_CLOSE,
        },
    )
    .retry_policy(timeouts::webhook_retry_policy())
    .build();
    let handle = env
        .client
        .start_activity(
            StepActivities::send_step_complete_webhook,
            serde_json::json!({ "step_id": id.as_str() }),
            options,
        )
        .await
        .map_err(|e| format!("start: {e}"))?;
    handle.result().await.map_err(|e| format!("{e}"))
}

/// Issue 11, 1: the activity sent without looking at the row, so calling it again for a
/// delivered step (a retried activity whose completion was lost, or another SDK's workflow)
/// sent the notification again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_11_1_the_webhook_activity_called_again_by_name_sends_nothing_more() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = env.start_worker();
    let handle = env.start_run("called-again", &["go"], 1).await;
    let result = harness::result(&handle).await;
    let id = StepId::parse(&result.step_ids[0]).expect("a step id");
    wait_until_delivered(&env.store, &id, OUTBOX_WAIT).await;
    assert_eq!(env.receiver.count(), 1);

    let again = call_webhook_activity(&env, &id, "again").await;

    let again = again.expect("the activity completes");
    assert!(again.delivered, "{again:?}");
    assert_eq!(again.outcome.as_deref(), Some("already_delivered"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.receiver.count(), 1, "not sent again");
    assert_eq!(env.store.attempts(&id, 10).await.unwrap().len(), 1);

    // A step the store does not hold (another SDK's own) is sent as the reference sends it.
    let foreign = StepId::new_random();
    let sent = call_webhook_activity(&env, &foreign, "foreign")
        .await
        .expect("sent");
    assert_eq!(
        (sent.delivered, sent.outcome.as_deref()),
        (true, Some("delivered"))
    );
    assert_eq!(env.receiver.count(), 2);
    assert_eq!(env.store.delivery(&foreign).await.unwrap(), None);
    worker.stop().await.expect("graceful stop");
}

/// Issue 11, 2: a `create_step` that wrote no row (a worker from before the outbox, during a
/// rolling upgrade) left the notification to nobody: when the webhook activity then ran on a
/// worker with a URL while the receiver was down past 30 s, it was never delivered, never dead
/// and never shown. Now the activity writes the row before it sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_11_2_a_notification_whose_step_was_stored_without_a_row_still_arrives() {
    let Some(env) = env(Reply::Status(503)).await else {
        return;
    };
    let worker = env.start_worker();
    // The old worker's `create_step`: the step, no row.
    let mut step = Step::pending(StepId::new_random(), "agent", Some("old-worker".into()));
    step.status = StepStatus::Success;
    env.store.upsert_step(&step, None, None).await.unwrap();

    let started = Instant::now();
    let given_up = call_webhook_activity(&env, &step.id, "after-upgrade").await;
    assert!(
        given_up.is_err(),
        "the receiver was down for the whole budget"
    );
    let row = env
        .store
        .delivery(&step.id)
        .await
        .unwrap()
        .expect("made durable");
    assert_eq!(row.state, DeliveryState::Pending);
    assert!(row.endpoint.is_some());
    env.receiver.set_reply(Reply::Status(200));

    let delivered =
        wait_until_delivered(&env.store, &step.id, TEST_OUTBOX_GRACE + OUTBOX_WAIT).await;
    assert!(
        started.elapsed() >= TEST_OUTBOX_GRACE,
        "the outbox waited out the grace"
    );
    assert_eq!(delivered.step_status, StepStatus::Success);
    let paths: Vec<_> = env
        .store
        .attempts(&step.id, 100)
        .await
        .unwrap()
        .iter()
        .map(|a| a.path)
        .collect();
    assert_eq!(paths.last(), Some(&AttemptPath::Dispatcher), "{paths:?}");
    worker.stop().await.expect("graceful stop");
}

/// Issue 11, 2 (the fleet): two workers on one task queue and one store, one of them without a
/// URL, the receiver down for 45 s (past the activity's 30 s): every notification arrives
/// whichever worker ran `create_step` and whichever ran the webhook activity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_11_2_a_fleet_delivers_whichever_worker_ran_which_activity() {
    const RUNS: usize = 6;
    let Some(env) = env(Reply::Status(503)).await else {
        return;
    };
    let with_url = env.start_worker();
    let without_url = harness::TestWorker::start(env.worker_config(WebhookArgs::default()));
    // The fleet in its steady state: the worker with the URL has said it dispatches.
    let deadline = Instant::now() + RUN_TIMEOUT;
    while !env.store.fleet_sends_webhooks().await.unwrap() {
        assert!(Instant::now() < deadline, "the dispatcher never registered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let started = Instant::now();

    let mut handles = Vec::new();
    for run in 0..RUNS {
        handles.push(env.start_run(&format!("fleet-{run}"), &["go"], 2).await);
    }
    let mut steps = Vec::new();
    for handle in &handles {
        let result = harness::result(handle).await;
        steps.extend(
            result
                .step_ids
                .iter()
                .map(|id| StepId::parse(id).expect("a step id")),
        );
    }
    tokio::time::sleep(Duration::from_secs(45).saturating_sub(started.elapsed())).await;
    env.receiver.set_reply(Reply::Status(200));

    assert_eq!(steps.len(), RUNS * 2);
    for id in &steps {
        wait_until_delivered(&env.store, id, TEST_OUTBOX_GRACE + OUTBOX_WAIT).await;
    }
    let delivered: std::collections::HashSet<_> = env
        .receiver
        .requests()
        .iter()
        .filter(|r| r.header("webhook-id").is_some())
        .filter_map(|r| r.step_id())
        .collect();
    for id in &steps {
        assert!(delivered.contains(id.as_str()), "{id} never arrived");
    }
    assert!(started.elapsed() < RUN_TIMEOUT * 3);
    without_url.stop().await.expect("graceful stop");
    with_url.stop().await.expect("graceful stop");
}

/// Calls `create_step` by name, as another SDK's workflow does.
async fn call_create_step(env: &harness::Env, id: &StepId) {
    let input = CreateStepInput {
        step_id: id.clone(),
        agent_id: "agent-early".into(),
        run_id: Some("early".into()),
        status: StepStatus::Success,
        usage: Usage::default(),
        stop_reason: Some("end_turn".into()),
        error_type: None,
        error_data: None,
        started_at_ms: stephook_core::now_millis(),
        metrics: None,
        messages: Vec::new(),
    };
    let options = ActivityStartOptions::new(
        env.task_queue.clone(),
        format!("create-{id}"),
        ActivityCloseTimeouts::ScheduleAndStartToClose {
            schedule_to_close: Duration::from_secs(30),
            start_to_close: Duration::from_secs(10),
        },
    )
    .build();
    env.client
        .start_activity(StepActivities::create_step, input, options)
        .await
        .expect("create_step starts")
        .result()
        .await
        .expect("create_step stores the step");
}

/// Issue 14 (latency): a stored step's notification waited for the workflow task that schedules
/// the webhook activity to reach the server, and for the activity to come back: 30 – 70 ms on a
/// busy dev server, and forever for a workflow that calls `create_step` but not the webhook
/// activity (the outbox sent it after its grace period). Now `create_step` sends it as soon as
/// the step is committed, and the webhook activity's first attempt reports that send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_a_stored_step_is_notified_at_once_and_the_activity_reports_that_send() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = env.start_worker();
    let id = StepId::new_random();

    call_create_step(&env, &id).await;

    // No webhook activity yet, and the outbox's grace period is far from over.
    let arrived = env
        .receiver
        .wait_for(1, TEST_OUTBOX_GRACE / 2)
        .await
        .into_iter()
        .filter_map(|r| r.step_id())
        .collect::<Vec<_>>();
    assert_eq!(
        arrived,
        vec![id.to_string()],
        "sent as soon as it was stored"
    );
    let delivered = wait_until_delivered(&env.store, &id, Duration::from_secs(5)).await;
    assert_eq!(delivered.state, DeliveryState::Delivered);
    let paths: Vec<_> = env
        .store
        .attempts(&id, 10)
        .await
        .unwrap()
        .iter()
        .map(|a| a.path)
        .collect();
    assert_eq!(
        paths,
        vec![AttemptPath::Activity],
        "the activity's first attempt, made early"
    );

    let reported = call_webhook_activity(&env, &id, "after-early-send")
        .await
        .expect("the activity completes");

    assert_eq!(
        (
            reported.delivered,
            reported.status,
            reported.attempt,
            reported.outcome.as_deref()
        ),
        (true, Some(200), 1, Some("delivered")),
        "the first attempt reports the send it did not have to make"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(env.receiver.count(), 1, "sent once");
    assert_eq!(env.store.attempts(&id, 10).await.unwrap().len(), 1);
    worker.stop().await.expect("graceful stop");
}

/// Issue 14 (latency), when the early send fails: the webhook activity's first attempt fails as
/// that send did, and its retries send again until the endpoint answers; nothing is sent twice
/// at once and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_an_early_send_that_fails_is_the_activitys_first_failed_attempt() {
    let Some(env) = env(Reply::Status(503)).await else {
        return;
    };
    let worker = env.start_worker();
    let id = StepId::new_random();
    call_create_step(&env, &id).await;
    env.receiver.wait_for(1, TEST_OUTBOX_GRACE / 2).await;
    env.receiver.set_reply(Reply::Status(200));

    let reported = call_webhook_activity(&env, &id, "after-failed-early-send")
        .await
        .expect("delivered by a retry");

    assert_eq!(
        (
            reported.delivered,
            reported.attempt,
            reported.outcome.as_deref()
        ),
        (true, 2, Some("delivered")),
        "attempt 1 was the early send's 503, attempt 2 the activity's own"
    );
    let outcomes: Vec<_> = env
        .store
        .attempts(&id, 10)
        .await
        .unwrap()
        .iter()
        .map(|a| (a.path, a.http_status))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (AttemptPath::Activity, Some(503)),
            (AttemptPath::Activity, Some(200))
        ]
    );
    assert_eq!(env.receiver.count(), 2);
    worker.stop().await.expect("graceful stop");
}

/// Issue 14 (early sends), two workers on one store: the webhook activity that runs on another
/// worker than the one that stored the step found the row held by that worker's early send and
/// answered `held_elsewhere`, so the run counted a notification that arrived as left to the
/// outbox. Now it waits for the holder (at most a few seconds) and says what happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_the_activity_on_another_worker_waits_for_the_early_send_and_reports_it() {
    let Some(env) = env(Reply::Delay(Duration::from_secs(2), 200)).await else {
        return;
    };
    let storing = env.start_worker();
    let mut other = env.worker_config(env.webhook_args());
    other.task_queue = format!("{}-other", env.task_queue);
    let other_queue = other.task_queue.clone();
    let notifying = harness::TestWorker::start(other);
    let id = StepId::new_random();

    call_create_step(&env, &id).await;
    let reported = call_webhook_activity_on(&env, &other_queue, &id, "on-the-other-worker")
        .await
        .expect("the activity completes");

    assert_eq!(
        (reported.delivered, reported.outcome.as_deref()),
        (true, Some("already_delivered")),
        "{reported:?}"
    );
    assert_eq!(env.receiver.count(), 1, "sent once, by the early send");
    let attempts = env.store.attempts(&id, 10).await.unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    notifying.stop().await.expect("graceful stop");
    storing.stop().await.expect("graceful stop");
}

/// Issue 14 (early sends), a graceful stop: the worker closed its store while an early send was
/// still waiting for the receiver's answer, so the delivered notification could not be recorded
/// and the outbox would send it again once the lease ended. Now a stopping worker lets the
/// sends in flight finish (bounded by the HTTP timeout) before it closes the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_14_a_graceful_stop_lets_an_early_send_finish_and_be_recorded() {
    let Some(env) = env(Reply::Delay(Duration::from_millis(1500), 200)).await else {
        return;
    };
    let worker = env.start_worker();
    let id = StepId::new_random();
    call_create_step(&env, &id).await;
    // In flight: the receiver has it and answers 1.5 s later.
    env.receiver.wait_for(1, TEST_OUTBOX_GRACE / 2).await;

    worker.stop().await.expect("graceful stop");

    let row = env.store.delivery(&id).await.unwrap().expect("a row");
    assert_eq!(row.state, DeliveryState::Delivered, "{row:?}");
    assert_eq!(env.store.attempts(&id, 10).await.unwrap().len(), 1);
    assert_eq!(env.receiver.count(), 1);
}

//! One outbox for both modes: whatever stops Temporal's fast path (an endpoint down past the
//! activity's 30 s, a worker dead for longer, a terminated workflow, the store unreachable while
//! the activity records), the step's outbox row falls due and the worker's dispatcher delivers
//! it, with the same `webhook-id`, and no command run. And the agent never waits for it.

use crate::harness::{
    self, RUN_TIMEOUT, StoreBlocker, TEST_OUTBOX_GRACE, env, wait_for_steps_done,
    wait_until_delivered, webhook_ids_for,
};
use std::time::{Duration, Instant};
use stephook_core::StepId;
use stephook_store::{AttemptPath, DeliveryState};
use stephook_testkit::Reply;
use temporalio_client::WorkflowTerminateOptions;

/// How long a test waits for the outbox after the grace period: a few of the test schedule's
/// 2 s retries.
const OUTBOX_WAIT: Duration = Duration::from_secs(60);

fn ids(result: &stephook_workflows::AgentRunResult) -> Vec<StepId> {
    result
        .step_ids
        .iter()
        .map(|id| StepId::parse(id).expect("a step id"))
        .collect()
}

/// Every request for this step carried its step id as `webhook-id`; returns how many there were.
fn assert_stable_webhook_id(env: &harness::Env, id: &StepId) -> usize {
    let seen = webhook_ids_for(&env.receiver, id.as_str());
    assert!(!seen.is_empty(), "{id} was never sent");
    assert!(
        seen.iter().all(|w| w == id.as_str()),
        "{id} sent as {seen:?}"
    );
    seen.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_down_for_45_s_gets_every_notification_after_it_recovers() {
    // Arrange: the endpoint answers 503 for the first 45 s.
    let Some(env) = env(Reply::Status(503)).await else {
        return;
    };
    let worker = env.start_worker();
    let started = Instant::now();

    // Act: a 3-step run; the endpoint comes back at 45 s, and nobody runs a command.
    let handle = env.start_run("outage", &["go"], 3).await;
    let result = harness::result(&handle).await;
    let run_took = started.elapsed();
    let steps = ids(&result);
    for id in &steps {
        let row = env
            .store
            .delivery(id)
            .await
            .unwrap()
            .expect("written with the step");
        assert_eq!(row.state, DeliveryState::Pending, "not dead: {row:?}");
        assert_eq!(row.source, "temporal");
    }
    tokio::time::sleep(Duration::from_secs(45).saturating_sub(started.elapsed())).await;
    env.receiver.set_reply(Reply::Status(200));

    // Assert: the run did not wait on the endpoint step by step (that took 3 × ~30 s), and all
    // three notifications arrive after recovery, each under its own webhook-id.
    assert_eq!((result.steps, result.webhook_failures), (3, 3));
    assert!(
        run_took < Duration::from_secs(50),
        "the run took {run_took:?}"
    );
    for id in &steps {
        let delivered = wait_until_delivered(&env.store, id, OUTBOX_WAIT).await;
        assert!(delivered.delivered_at.is_some());
        assert!(assert_stable_webhook_id(&env, id) >= 2);
        let paths: Vec<_> = env
            .store
            .attempts(id, 100)
            .await
            .unwrap()
            .iter()
            .map(|a| a.path)
            .collect();
        assert!(paths.contains(&AttemptPath::Activity), "{paths:?}");
        assert_eq!(paths.last(), Some(&AttemptPath::Dispatcher), "{paths:?}");
    }
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_notification_and_replaced_40_s_later_still_notifies() {
    // Every answer takes 1.5 s, so the kill lands while step 0's notification is in flight.
    let Some(env) = env(Reply::Delay(Duration::from_millis(1500), 200)).await else {
        return;
    };
    let first = env.start_worker();
    let handle = env.start_run("replaced-late", &["go"], 2).await;
    env.receiver.wait_for(1, RUN_TIMEOUT).await;
    first.crash().await;
    let step_0 = env.receiver.requests()[0]
        .step_id()
        .map(|id| StepId::parse(&id).expect("a step id"))
        .expect("step 0's notification was in flight");

    // 40 s without a worker: past the activity's whole 30 s budget.
    tokio::time::sleep(Duration::from_secs(40)).await;
    let second = env.start_worker();
    let result = harness::result(&handle).await;

    assert_eq!(result.steps, 2);
    assert_eq!(result.step_ids[0], step_0.as_str());
    for id in ids(&result) {
        wait_until_delivered(&env.store, &id, OUTBOX_WAIT).await;
        assert_stable_webhook_id(&env, &id);
    }
    assert!(
        assert_stable_webhook_id(&env, &step_0) >= 2,
        "the cut-off notification was sent again"
    );
    second.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_terminated_right_after_create_step_still_notifies() {
    let Some(env) = env(Reply::Status(503)).await else {
        return;
    };
    let worker = env.start_worker();
    let handle = env.start_run("terminated", &["go sleep-ms:3000"], 3).await;
    wait_for_steps_done(&handle, 1).await;

    handle
        .terminate(
            WorkflowTerminateOptions::builder()
                .reason("test".to_owned())
                .build(),
        )
        .await
        .expect("terminate");
    env.receiver.set_reply(Reply::Status(200));

    let stored = env.steps("terminated").await;
    assert_eq!(stored.len(), 1, "terminated during step 1's work");
    let delivered =
        wait_until_delivered(&env.store, &stored[0].id, TEST_OUTBOX_GRACE + OUTBOX_WAIT).await;
    assert_eq!(delivered.step_status, stored[0].status);
    assert_stable_webhook_id(&env, &stored[0].id);
    worker.stop().await.expect("graceful stop");
}

/// The store write-locked by another process while the activity wants to send: the fast path
/// cannot take the row, so it sends nothing (a send it could not record could overlap a
/// dispatcher's); once the lock is gone the next attempt, or the outbox, sends it, and every send
/// is in the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_unreachable_during_the_notification_loses_nothing() {
    let Some(env) = env(Reply::Status(503)).await else {
        return;
    };
    let worker = env.start_worker();
    let mut blocker = StoreBlocker::open(&env).await;
    let handle = env.start_run("store-down", &["go"], 1).await;
    // The first attempt is sent and recorded; then another process takes the write lock.
    wait_for_steps_done(&handle, 1).await;
    let stored = harness::progress(&handle)
        .await
        .and_then(|p| p.last_step_id)
        .map(|id| StepId::parse(&id).expect("a step id"))
        .expect("the stored step");
    let deadline = Instant::now() + RUN_TIMEOUT;
    while env.store.attempts(&stored, 10).await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first attempt was never recorded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    blocker.lock().await;
    let locked_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let sent_while_locked = env.receiver.count();
    blocker.release().await;
    let result = harness::result(&handle).await;
    env.receiver.set_reply(Reply::Status(200));

    let id = &ids(&result)[0];
    assert!(locked_at.elapsed() < Duration::from_secs(60));
    assert_eq!(
        sent_while_locked, 1,
        "nothing is sent while the row cannot be taken"
    );
    wait_until_delivered(&env.store, id, TEST_OUTBOX_GRACE + OUTBOX_WAIT).await;
    let sent = assert_stable_webhook_id(&env, id);
    let recorded = env.store.attempts(id, 100).await.unwrap().len();
    assert_eq!(sent, recorded, "every send is in the history");
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_does_not_slow_the_agent() {
    const STEPS: u32 = 10;
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = env.start_worker();
    // Time until the agent has stored its last step, endpoint up then down.
    let pace = |run_id: &'static str| {
        let env = &env;
        async move {
            let started = Instant::now();
            let handle = env.start_run(run_id, &["go sleep-ms:300"], STEPS).await;
            wait_for_steps_done(&handle, STEPS).await;
            (started.elapsed(), handle)
        }
    };
    let (up, up_run) = pace("pace-up").await;
    harness::result(&up_run).await;
    env.receiver.set_reply(Reply::Status(503));
    let (down, down_run) = pace("pace-down").await;
    let down_result = harness::result(&down_run).await;

    let ratio = down.as_secs_f64() / up.as_secs_f64();
    eprintln!("agent pace: endpoint up {up:?}, down {down:?}, ratio {ratio:.2}");
    assert!(ratio < 1.5, "up {up:?}, down {down:?}");
    assert_eq!(down_result.webhook_failures, STEPS);
    worker.stop().await.expect("graceful stop");
}

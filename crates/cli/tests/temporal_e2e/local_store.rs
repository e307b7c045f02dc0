//! `create_step` as a local activity (issue 14): a step that ended is stored whatever happens to
//! the store or the worker meanwhile. The store is made unreachable by another connection holding
//! SQLite's write lock; the worker is a real `stephook worker` process, killed with SIGKILL.

use crate::harness::{self, StoreBlocker, env, history, wait_until_delivered};
use std::time::Duration;
use stephook_core::{StepId, StepStatus};
use stephook_testkit::Reply;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
use tokio::time::Instant;

/// Longer than the local attempts' whole budget (`LOCAL_STORE_SCHEDULE_TO_CLOSE`, 30 s).
const LOCKED_PAST_THE_LOCAL_BUDGET: Duration = Duration::from_secs(40);

fn scheduled(events: &[HistoryEvent], activity: &str) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(&e.attributes, Some(Attributes::ActivityTaskScheduledEventAttributes(a))
                if a.activity_type.as_ref().map(|t| t.name.as_str()) == Some(activity))
        })
        .count()
}

/// Waits until the run's first model call has completed: the step is being stored now.
async fn wait_until_storing(handle: &harness::Handle) {
    let deadline = Instant::now() + harness::RUN_TIMEOUT;
    loop {
        let completed = history(handle).await.iter().any(|e| {
            matches!(
                e.attributes,
                Some(Attributes::ActivityTaskCompletedEventAttributes(_))
            )
        });
        if completed {
            return;
        }
        assert!(Instant::now() < deadline, "the model call never completed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_down_past_the_local_budget_is_stored_by_the_regular_activity() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = env.start_worker();
    let mut blocker = StoreBlocker::open(&env).await;
    // Nothing writes the store before the first step is stored: lock it first.
    blocker.lock().await;
    let handle = env.start_run("store-locked", &["go"], 1).await;
    wait_until_storing(&handle).await;
    tokio::time::sleep(LOCKED_PAST_THE_LOCAL_BUDGET).await;
    blocker.release().await;
    let result = harness::result(&handle).await;

    assert_eq!(result.steps, 1);
    let steps = env.steps("store-locked").await;
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].status, StepStatus::Success);
    let events = history(&handle).await;
    assert_eq!(
        scheduled(&events, "create_step"),
        1,
        "the local attempts gave up and the regular activity stored the step"
    );
    wait_until_delivered(&env.store, &steps[0].id, Duration::from_secs(30)).await;
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_while_storing_locally_and_another_stores_the_step_once() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let spawn = || {
        env.worker_command()
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start stephook worker")
    };
    let mut first = spawn();
    let mut blocker = StoreBlocker::open(&env).await;
    blocker.lock().await;
    let handle = env.start_run("killed-storing", &["go"], 2).await;
    wait_until_storing(&handle).await;
    // The local create_step is waiting for the lock: kill the process that runs it.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        env.steps("killed-storing").await.is_empty(),
        "nothing stored yet"
    );
    first.kill().expect("SIGKILL the worker");
    first.wait().expect("reap it");
    let mut second = spawn();
    blocker.release().await;
    let result = harness::result(&handle).await;
    second.kill().expect("stop the second worker");
    second.wait().expect("reap it");

    assert_eq!(result.steps, 2);
    let steps = env.steps("killed-storing").await;
    assert_eq!(steps.len(), 2, "each step stored once: {steps:?}");
    assert!(steps.iter().all(|s| s.status == StepStatus::Success));
    for id in &result.step_ids {
        let id = StepId::parse(id).expect("a step id");
        wait_until_delivered(&env.store, &id, Duration::from_secs(30)).await;
    }
}

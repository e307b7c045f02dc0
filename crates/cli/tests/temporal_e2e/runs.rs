//! Runs that go well: steps stored, then notified in order; the activity options Temporal
//! recorded; no URL configured; `run` with and without waiting; the metrics endpoint.

use crate::harness::{self, env, wait_for_steps_done};
use std::time::Duration;
use stephook::temporal::{DevServerOptions, RunWorkflowOptions, run_workflow_to};
use stephook_core::{StepStatus, WebhookArgs};
use stephook_testkit::Reply;
use stephook_workflows::{AgentWorkflow, STEPS_V4_PATCH};
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

/// How long the dev server may take to publish its request counters.
const SERVER_METRICS_WAIT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_steps_are_stored_then_notified_in_order() {
    let server_metrics = DevServerOptions {
        metrics: true,
        ..DevServerOptions::default()
    };
    let Some(env) = harness::env_with(Reply::Status(200), server_metrics).await else {
        return;
    };
    env.probe_store_on_delivery();
    let metrics_port = harness::free_port();
    let mut config = env.worker_config(env.webhook_args());
    config.metrics_addr = Some(([127, 0, 0, 1], metrics_port).into());
    let worker = harness::TestWorker::start(config);

    let mut out = Vec::new();
    let outcome = run_workflow_to(
        RunWorkflowOptions {
            agent_id: "agent-7".to_owned(),
            run_id: Some("three-steps".to_owned()),
            messages: vec!["hello there".to_owned()],
            steps: Some(3),
            task_queue: env.task_queue.clone(),
            temporal: env.server.temporal_args(),
            ..Default::default()
        },
        &mut out,
    )
    .await
    .expect("the run completes");
    let printed = String::from_utf8_lossy(&out).into_owned();
    let result = outcome.result.expect("waited for the result");
    assert_eq!(outcome.workflow_id, "agent-run-three-steps");
    assert!(
        printed.contains(
            "Temporal UI: http://localhost:8233/namespaces/default/workflows/agent-run-three-steps"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("completed: 3 steps\n  notifications delivered: 3 of 3"),
        "{printed}"
    );
    assert_eq!(
        (
            result.steps,
            result.webhooks_delivered,
            result.webhook_failures
        ),
        (3, 3, 0)
    );

    let steps = env.steps("three-steps").await;
    assert_eq!(steps.len(), 3);
    for step in &steps {
        assert_eq!(step.status, StepStatus::Success);
        assert_eq!(step.agent_id, "agent-7");
        assert!(step.usage.total_tokens > 0);
        assert!(env.store.step_metrics(&step.id).await.unwrap().is_some());
    }
    let stored: Vec<String> = steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(stored, result.step_ids);

    let requests = env.receiver.requests();
    let notified: Vec<String> = requests.iter().filter_map(|r| r.step_id()).collect();
    assert_eq!(
        notified, result.step_ids,
        "one webhook per step, in step order"
    );
    for request in &requests {
        // The store already held the committed step when its notification arrived.
        assert_eq!(request.probe.as_deref(), Some("success"));
        assert_eq!(request.header("content-type"), Some("application/json"));
    }

    let page = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .expect("metrics endpoint")
        .text()
        .await
        .expect("metrics text");
    assert!(
        page.contains("stephook_webhook_deliveries_total{outcome=\"delivered\"} 3"),
        "{page}"
    );
    assert!(
        page.contains("stephook_webhook_delivery_seconds_count 3"),
        "{page}"
    );
    assert!(
        page.contains("stephook_webhook_undelivered_total 0"),
        "{page}"
    );
    assert!(
        page.contains("temporal_"),
        "the SDK's metrics are served too:\n{page}"
    );

    // The echo's model calls end at once: none of them costs the server a heartbeat (the SDK
    // sends a first heartbeat at once, so activities wait a second before their first). The
    // server publishes its counters every second or so: wait until the completions show.
    let deadline = tokio::time::Instant::now() + SERVER_METRICS_WAIT;
    let served = loop {
        let served = env
            .server
            .requests()
            .await
            .expect("the dev server's requests");
        if served.of("RespondActivityTaskCompleted") >= 6 || tokio::time::Instant::now() >= deadline
        {
            break served;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        served.of("RespondActivityTaskCompleted") >= 6,
        "three call_model and three webhook activities completed: {served:?}"
    );
    assert_eq!(
        served
            .0
            .get("RecordActivityTaskHeartbeat")
            .copied()
            .unwrap_or(0),
        0,
        "{served:?}"
    );

    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shows_the_webhook_timeouts_and_retry_policy() {
    let Some(env) = env(Reply::Status(204)).await else {
        return;
    };
    let worker = env.start_worker();
    // --no-wait: prints the id and link and returns at once.
    let mut out = Vec::new();
    let outcome = run_workflow_to(
        RunWorkflowOptions {
            run_id: Some("history".to_owned()),
            steps: Some(1),
            no_wait: true,
            task_queue: env.task_queue.clone(),
            temporal: env.server.temporal_args(),
            ..Default::default()
        },
        &mut out,
    )
    .await
    .expect("started");
    assert!(outcome.result.is_none());
    let printed = String::from_utf8_lossy(&out).into_owned();
    assert!(
        printed.contains("started workflow agent-run-history"),
        "{printed}"
    );
    assert!(
        printed.contains("/workflows/agent-run-history"),
        "{printed}"
    );

    let handle = env
        .client
        .get_workflow_handle::<AgentWorkflow>(outcome.workflow_id);
    harness::result(&handle).await;
    let events = harness::history(&handle).await;
    let scheduled: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a))
                if a.activity_type.as_ref().map(|t| t.name.as_str())
                    == Some("send_step_complete_webhook") =>
            {
                Some(a)
            }
            _ => None,
        })
        .collect();
    assert_eq!(scheduled.len(), 1);
    let activity = scheduled[0];
    // create_step ran as a local activity: the UI shows it as a marker with its summary, and the
    // notification was scheduled in the same workflow task completion that recorded it.
    let stored: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::MarkerRecordedEventAttributes(m))
                if m.marker_name == "core_local_activity" =>
            {
                let summary = e
                    .user_metadata
                    .as_ref()
                    .and_then(|u| u.summary.as_ref())
                    .map(|p| String::from_utf8_lossy(&p.data).into_owned())
                    .unwrap_or_default();
                Some((m.workflow_task_completed_event_id, summary))
            }
            _ => None,
        })
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        stored[0].1.contains("store step-") && stored[0].1.contains("(success)"),
        "{stored:?}"
    );
    assert_eq!(
        stored[0].0, activity.workflow_task_completed_event_id,
        "scheduled in the completion that recorded the step"
    );
    // (seconds, nanos) of a protobuf duration.
    macro_rules! seconds {
        ($d:expr) => {
            $d.as_ref().map(|d| (d.seconds, d.nanos))
        };
    }
    assert_eq!(seconds!(activity.start_to_close_timeout), Some((15, 0)));
    assert_eq!(seconds!(activity.schedule_to_close_timeout), Some((30, 0)));
    let policy = activity
        .retry_policy
        .as_ref()
        .expect("explicit retry policy");
    assert_eq!(seconds!(policy.initial_interval), Some((1, 0)));
    assert_eq!(policy.backoff_coefficient, 2.0);
    assert_eq!(seconds!(policy.maximum_interval), Some((10, 0)));
    assert_eq!(policy.maximum_attempts, 0, "unlimited attempts within 30 s");

    worker.stop().await.expect("graceful stop");
}

/// Each patch marker also brings an upsert of `TemporalChangeVersion`, a write to the server's
/// visibility store: a new run records one marker for all the changes it takes (issue 14).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_run_records_one_patch_marker_and_one_search_attribute_upsert() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = env.start_worker();
    let handle = env.start_run("one-marker", &["hi"], 2).await;
    assert_eq!(harness::result(&handle).await.steps, 2);
    let events = harness::history(&handle).await;

    let patches: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::MarkerRecordedEventAttributes(m)) if m.marker_name == "core_patch" => {
                let data = m.details.get("patch-data")?.payloads.first()?;
                let data: serde_json::Value = serde_json::from_slice(&data.data).ok()?;
                Some(data["id"].as_str()?.to_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(patches, [STEPS_V4_PATCH]);
    let upserts: Vec<serde_json::Value> = events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::UpsertWorkflowSearchAttributesEventAttributes(u)) => {
                let fields = &u.search_attributes.as_ref()?.indexed_fields;
                serde_json::from_slice(&fields.get("TemporalChangeVersion")?.data).ok()
            }
            _ => None,
        })
        .collect();
    assert_eq!(upserts, [serde_json::json!([STEPS_V4_PATCH])]);
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_url_runs_complete_and_nothing_is_sent() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = harness::TestWorker::start(env.worker_config(WebhookArgs::default()));
    let handle = env.start_run("no-url", &["hi"], 2).await;
    let result = harness::result(&handle).await;
    assert_eq!(
        (
            result.steps,
            result.webhooks_delivered,
            result.webhook_failures
        ),
        (2, 0, 0)
    );
    let steps = env.steps("no-url").await;
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s.status == StepStatus::Success));
    // Give a stray request time to show up before asserting there is none.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(env.receiver.count(), 0);
    assert!(
        env.store
            .list_deliveries(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    wait_for_steps_done(&handle, 2).await;
    worker.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_starts_server_ui_worker_receiver_and_runs_the_demo() {
    if !harness::temporal_cli_installed() {
        return;
    }
    let free = harness::free_port;
    let dir = tempfile::tempdir().expect("temporary directory");
    let database_url = format!("sqlite://{}", dir.path().join("dev.db").display());
    let args = stephook::temporal::DevArgs {
        temporal_port: free(),
        ui_port: free(),
        temporal_db: None,
        ephemeral: true,
        receiver_port: free(),
        api_port: free(),
        demo_steps: 2,
        exit_after_demo: true,
        task_queue: "dev-test".to_owned(),
        metrics_addr: None,
        store: stephook_core::StoreArgs::at(stephook_core::Secret::new(database_url.clone())),
        agent: Default::default(),
    };
    stephook::temporal::dev(args)
        .await
        .expect("dev ran the demo and stopped");
    let store = stephook_store::Store::connect(
        &stephook_core::StoreArgs::at(stephook_core::Secret::new(database_url))
            .validate()
            .unwrap(),
    )
    .await
    .unwrap();
    let steps = store.list_steps(None, 10).await.unwrap();
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s.status == StepStatus::Success));
}

/// `stephook run` against a task queue nobody polls says so once, names the queue and
/// `stephook worker`, and keeps waiting: the run completes once a worker comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_without_a_worker_says_so_once_and_waits_for_one() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    // A log capture is a thread-safe buffer we can read while `run` writes to it.
    let output = stephook_testkit::LogCapture::default();
    let options = RunWorkflowOptions {
        run_id: Some("no-worker-yet".to_owned()),
        steps: Some(1),
        task_queue: env.task_queue.clone(),
        temporal: env.server.temporal_args(),
        ..Default::default()
    };
    let mut out = output.clone();
    let run = tokio::spawn(async move { run_workflow_to(options, &mut out).await });

    let hint = "no worker is polling task queue";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !output.text().contains(hint) {
        assert!(
            std::time::Instant::now() < deadline,
            "no hint: {}",
            output.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let worker = env.start_worker();
    let outcome = tokio::time::timeout(harness::RUN_TIMEOUT, run)
        .await
        .expect("ended in time")
        .expect("joined")
        .expect("the run completes once a worker polls");

    let printed = output.text();
    assert_eq!(printed.matches(hint).count(), 1, "{printed}");
    assert!(printed.contains("stephook worker"), "{printed}");
    assert!(printed.contains(&env.task_queue), "{printed}");
    assert_eq!(outcome.result.map(|r| r.steps), Some(1));
    worker.stop().await.expect("graceful stop");
}

/// The offline echo once quoted the previous reply, escaped, so each reply was twice as long as
/// the one before: kilobytes by step 10 (in every payload, the cache and the store), 2 MB by
/// step 20, and a run of 25 steps failed with `ConversationTooLarge` (the guard below
/// Temporal's 2 MB payload limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_echo_run_completes_with_replies_that_do_not_grow() {
    const STEPS: u32 = 25;
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = env.start_worker();

    let handle = env
        .start_run("long-echo", &["plan a \"trip\""], STEPS)
        .await;
    let result = harness::result(&handle).await;

    assert_eq!((result.steps, result.webhooks_delivered), (STEPS, STEPS));
    let steps = env.steps("long-echo").await;
    assert_eq!(steps.len(), STEPS as usize);
    let last = steps.last().expect("a last step");
    let messages = env.store.step_messages(&last.id).await.expect("messages");
    let reply = messages
        .first()
        .and_then(|m| m.content.clone())
        .expect("the step's reply");
    assert_eq!(reply, "step 25: echo \"plan a \\\"trip\\\"\"");
    worker.stop().await.expect("graceful stop");
}

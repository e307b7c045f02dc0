//! A worker dying mid-run, and a worker that cannot reach Temporal.

use crate::harness::{self, TestWorker, env};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, TcpListener};
use std::time::Duration;
use stephook::temporal::{TemporalArgs, run_worker_until};
use stephook_core::StepStatus;
use stephook_testkit::Reply;
use temporalio_client::WorkflowDescribeOptions;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_killed_mid_run_and_replaced_finishes_each_step_once() {
    // Every answer takes 1.5 s, so the kill lands while step 0's notification is in flight.
    let Some(env) = env(Reply::Delay(Duration::from_millis(1500), 200)).await else {
        return;
    };
    let first = env.start_worker();
    let handle = env.start_run("crash", &["go"], 3).await;
    env.receiver.wait_for(1, harness::RUN_TIMEOUT).await;
    first.crash().await;

    // The new worker takes over; the cut-off attempt is retried once its start-to-close passes.
    let second = env.start_worker();
    let result = harness::result(&handle).await;
    assert_eq!(result.steps, 3);
    assert_eq!(result.webhook_failures, 0);

    let steps = env.steps("crash").await;
    assert_eq!(steps.len(), 3, "each step stored once: {steps:?}");
    assert!(steps.iter().all(|s| s.status == StepStatus::Success));
    let stored: BTreeSet<String> = steps.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(stored, result.step_ids.iter().cloned().collect());

    // Each step notified at least once; every repeat carries the same webhook-id.
    let mut webhook_ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in env.receiver.requests() {
        let step_id = request.step_id().expect("reference-shaped body");
        let webhook_id = request.header("webhook-id").expect("signed").to_owned();
        webhook_ids.entry(step_id).or_default().push(webhook_id);
    }
    assert_eq!(webhook_ids.keys().cloned().collect::<BTreeSet<_>>(), stored);
    let first_step = &webhook_ids[&result.step_ids[0]];
    assert!(
        first_step.len() >= 2,
        "the cut-off notification was sent again: {first_step:?}"
    );
    for (step_id, ids) in &webhook_ids {
        assert!(
            ids.iter().all(|id| id == step_id),
            "{step_id} sent as {ids:?}"
        );
    }
    second.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_start_fails_clearly_when_temporal_or_the_namespace_is_unreachable() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    // Nothing listens on a picked port, and no one else is handed it meanwhile.
    let closed = format!("127.0.0.1:{}", harness::free_port());
    let mut config = env.worker_config(env.webhook_args());
    config.temporal = TemporalArgs::at(closed.clone());
    let error = TestWorker::start(config)
        .stop()
        .await
        .expect_err("cannot connect");
    let message = format!("{error:#}");
    assert!(message.contains("TEMPORAL_ADDRESS"), "{message}");
    assert!(message.contains(&closed), "{message}");

    let mut config = env.worker_config(env.webhook_args());
    config.temporal.namespace = Some("no-such-namespace".to_owned());
    let error = run_worker_until(config, std::future::pending())
        .await
        .expect_err("no namespace");
    let message = format!("{error:#}");
    assert!(message.contains("TEMPORAL_NAMESPACE"), "{message}");
    assert!(message.contains("no-such-namespace"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_lets_the_in_flight_step_finish() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let first = env.start_worker();
    let handle = env.start_run("graceful", &["go sleep-ms:2000"], 1).await;
    wait_until_step_body_runs(&handle).await;
    let stopping = std::time::Instant::now();
    first.stop().await.expect("graceful stop");
    assert!(
        stopping.elapsed() >= Duration::from_millis(800),
        "the stop waited for the running step ({:?})",
        stopping.elapsed()
    );

    let second = env.start_worker();
    let result = harness::result(&handle).await;
    assert_eq!(result.steps, 1);
    // The step body finished on the stopped worker: one attempt, never retried.
    let events = harness::history(&handle).await;
    let attempts: Vec<i32> = events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskStartedEventAttributes(a)) => Some(a.attempt),
            _ => None,
        })
        .collect();
    assert!(attempts.iter().all(|a| *a == 1), "attempts {attempts:?}");
    second.stop().await.expect("graceful stop");
}

/// Waits until the server reports the step body as started on a worker.
async fn wait_until_step_body_runs(handle: &harness::Handle) {
    const PENDING_ACTIVITY_STATE_STARTED: i32 = 2;
    let deadline = tokio::time::Instant::now() + harness::RUN_TIMEOUT;
    loop {
        let description = handle
            .describe(WorkflowDescribeOptions::default())
            .await
            .expect("describe");
        let running = description.raw().pending_activities.iter().any(|a| {
            a.state == PENDING_ACTIVITY_STATE_STARTED
                && a.activity_type.as_ref().map(|t| t.name.as_str()) == Some("call_model")
        });
        if running {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the step body never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The real binary, as an operator runs it: it serves a run, then SIGTERM stops it cleanly
/// (exit 0); pointed at nothing, it exits non-zero naming TEMPORAL_ADDRESS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_binary_serves_runs_and_stops_cleanly_on_sigterm() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let mut worker = env
        .worker_command()
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start stephook worker");

    let handle = env.start_run("binary", &["go"], 2).await;
    let result = harness::result(&handle).await;
    let term = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status()
        .expect("send SIGTERM");
    let exited = tokio::task::spawn_blocking(move || worker.wait())
        .await
        .expect("join")
        .expect("wait for the worker");

    assert_eq!(result.steps, 2);
    assert_eq!(env.receiver.count(), 2);
    assert!(term.success());
    assert!(
        exited.success(),
        "SIGTERM should end the worker cleanly: {exited:?}"
    );

    let closed_port = harness::free_port();
    let unreachable = std::process::Command::new(env!("CARGO_BIN_EXE_stephook"))
        .arg("worker")
        .env("TEMPORAL_ADDRESS", format!("127.0.0.1:{closed_port}"))
        .env("STEPHOOK_DATABASE_URL", &env.database_url)
        .output()
        .expect("run stephook worker");
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(!unreachable.status.success());
    assert!(stderr.contains("TEMPORAL_ADDRESS"), "{stderr}");
}

/// A Temporal address that swallows packets (here: a loopback socket that never accepts, so
/// the gRPC handshake never gets an answer) fails within the connect timeout, naming
/// TEMPORAL_ADDRESS, instead of stalling for the OS's TCP timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_temporal_address_times_out_naming_the_variable() {
    let blackhole = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback socket");
    let address = blackhole.local_addr().expect("its address").to_string();
    let mut args = TemporalArgs::at(address.clone());
    args.connect_timeout = "1s".to_owned();

    let started = std::time::Instant::now();
    let error = stephook::temporal::connect(&args)
        .await
        .expect_err("nothing answers");
    let took = started.elapsed();

    let message = format!("{error:#}");
    assert!(took < Duration::from_secs(5), "gave up after {took:?}");
    assert!(message.contains("TEMPORAL_ADDRESS"), "{message}");
    assert!(message.contains(&address), "{message}");
    assert!(
        message.contains("STEPHOOK_TEMPORAL_CONNECT_TIMEOUT"),
        "{message}"
    );

    // The worker binary says the same and exits non-zero.
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stephook"))
        .arg("worker")
        .env("TEMPORAL_ADDRESS", &address)
        .env("STEPHOOK_TEMPORAL_CONNECT_TIMEOUT", "1s")
        .env(
            "STEPHOOK_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("steps.db").display()),
        )
        .env_remove("STEP_COMPLETE_WEBHOOK")
        .output()
        .expect("run stephook worker");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("TEMPORAL_ADDRESS"), "{stderr}");
    drop(blackhole);
}

/// `stephook dev` keeps the dev server's state in a file: stopped mid-run and started again, it
/// resumes the run in flight and finishes it, each step stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_restarted_mid_run_resumes_the_run() {
    if !harness::temporal_cli_installed() {
        return;
    }
    let free = harness::free_port;
    let dir = tempfile::tempdir().expect("temporary directory");
    let database_url = format!("sqlite://{}", dir.path().join("steps.db").display());
    let state = dir.path().join("temporal.db");
    let (temporal_port, ui_port, receiver_port, api_port) = (free(), free(), free(), free());
    let start_dev = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_stephook"))
            .args(["dev", "--demo-steps", "0", "--task-queue", "dev-restart"])
            .args(["--temporal-port", &temporal_port.to_string()])
            .args(["--ui-port", &ui_port.to_string()])
            .args(["--receiver-port", &receiver_port.to_string()])
            .args(["--api-port", &api_port.to_string()])
            .arg("--temporal-db")
            .arg(&state)
            .env("STEPHOOK_DATABASE_URL", &database_url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start stephook dev")
    };
    let stop = |mut child: std::process::Child| {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().expect("dev exits")
    };
    let address = format!("127.0.0.1:{temporal_port}");
    let connect = || async {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            match stephook::temporal::connect(&TemporalArgs::at(address.clone())).await {
                Ok(client) => return client,
                Err(error) => assert!(std::time::Instant::now() < deadline, "{error:#}"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };

    // Arrange: a 3-step run whose steps take 2 s each; stop dev once step 0 is stored.
    let first = start_dev();
    let client = connect().await;
    let input = stephook_workflows::AgentRunInput {
        agent_id: "agent-dev".to_owned(),
        run_id: Some("across-restart".to_owned()),
        messages: vec![stephook_core::Message::user("go sleep-ms:2000")],
        max_steps: Some(3),
        ..Default::default()
    };
    let handle = stephook::temporal::start::start_agent_workflow(&client, "dev-restart", input)
        .await
        .expect("start the run");
    harness::wait_for_steps_done(&handle, 1).await;
    let stopped = stop(first);
    assert!(stopped.success(), "dev stops cleanly: {stopped:?}");

    // Act: start dev again on the same state file.
    let second = start_dev();
    let client = connect().await;
    let handle = client.get_workflow_handle::<stephook_workflows::AgentWorkflow>(
        stephook_workflows::workflow_id_for("across-restart"),
    );
    let result = harness::result(&handle).await;
    stop(second);

    // Assert
    assert_eq!(result.steps, 3);
    let store = stephook_store::Store::connect(
        &stephook_core::StoreArgs::at(stephook_core::Secret::new(database_url))
            .validate()
            .expect("valid URL"),
    )
    .await
    .expect("open the step store");
    let steps = store
        .list_steps(Some("across-restart"), 10)
        .await
        .expect("steps");
    assert_eq!(steps.len(), 3, "each step stored once: {steps:?}");
    assert!(steps.iter().all(|s| s.status == StepStatus::Success));
}

//! Issue 12 on a real dev server: `dev` never joins someone else's server, `run` says what
//! really became of its notifications, Ctrl-C on `run` says the run goes on and `stephook
//! cancel` stops it, and `dev` keeps its terminal readable with the full logs in a file.

use crate::harness::{self, env, free_port};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stephook::temporal::{RunWorkflowOptions, run_workflow_to};
use stephook_core::{StepStatus, StoreArgs};
use stephook_testkit::Reply;

const VARS: [&str; 6] = [
    "STEP_COMPLETE_WEBHOOK",
    "STEPHOOK_DATABASE_URL",
    "STEPHOOK_LOG_FORMAT",
    "RUST_LOG",
    "TEMPORAL_ADDRESS",
    "STEPHOOK_TASK_QUEUE",
];

fn stephook(data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stephook"));
    for var in VARS {
        command.env_remove(var);
    }
    command.env("XDG_DATA_HOME", data);
    command
}

/// Item 2: with its port taken, `dev` printed "is up", listed a UI that never started, and its
/// worker polled the other server's queue. Every port is checked first; a taken one stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_12_2_dev_stops_when_a_port_is_taken_and_starts_nothing() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let theirs: u16 = env
        .server
        .address()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the other server's port");
    let receiver_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let args = stephook::temporal::DevArgs {
        temporal_port: theirs,
        ui_port: free_port(),
        temporal_db: None,
        ephemeral: true,
        receiver_port,
        api_port: free_port(),
        demo_steps: 1,
        exit_after_demo: true,
        task_queue: env.task_queue.clone(),
        metrics_addr: None,
        store: StoreArgs::at(format!("sqlite://{}", dir.path().join("d.db").display())),
        agent: Default::default(),
    };

    let error = stephook::temporal::dev(args)
        .await
        .expect_err("a taken port stops dev");

    let said = format!("{error:#}");
    assert!(
        said.contains("--temporal-port") && said.contains(&theirs.to_string()),
        "{said}"
    );
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", receiver_port)).is_ok(),
        "nothing was started"
    );
    assert!(
        env.store.list_steps(None, 10).await.unwrap().is_empty(),
        "no run was started on the other server"
    );
}

/// Item 5: with the webhook unreachable, `run` ended with "webhooks delivered 0, failed 2",
/// which reads as final. It says the notifications wait in the outbox, when the next attempt
/// is, and the last error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_12_5_run_says_the_outbox_retries_what_it_could_not_deliver() {
    let Some(env) = env(Reply::Status(503)).await else {
        return;
    };
    let worker = env.start_worker();
    let output = stephook_testkit::LogCapture::default();
    let options = RunWorkflowOptions {
        run_id: Some("unreachable".to_owned()),
        steps: Some(2),
        task_queue: env.task_queue.clone(),
        temporal: env.server.temporal_args(),
        store: Some(StoreArgs::at(env.database_url.clone())),
        ..Default::default()
    };
    let mut out = output.clone();
    let outcome = run_workflow_to(options, &mut out)
        .await
        .expect("the run completes");

    let printed = output.text();
    assert_eq!(outcome.result.map(|r| r.steps), Some(2));
    assert!(
        printed.contains("notifications delivered: 0 of 2"),
        "{printed}"
    );
    assert!(
        printed.contains(
            "2 notification(s) not yet delivered: the outbox retries them (next attempt 20"
        ),
        "{printed}"
    );
    assert!(printed.contains("stephook deliveries list"), "{printed}");
    assert!(
        printed.contains("last error:") && printed.contains("503"),
        "{printed}"
    );
    assert!(!printed.contains("failed 2"), "{printed}");
    worker.stop().await.expect("graceful stop");
}

/// Item 7: Ctrl-C on `stephook run` left the workflow running without a word. It says the run
/// goes on and how to cancel it; `stephook cancel` (with the workflow id or the run id) does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_12_7_ctrl_c_on_run_says_the_run_goes_on_and_cancel_stops_it() {
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = env.start_worker();
    let data = tempfile::tempdir().unwrap();
    let address = env.server.address();
    let mut run = stephook(data.path())
        .args([
            "run",
            "--steps",
            "3",
            "--run-id",
            "interrupted",
            "--message",
            "go sleep-ms:4000",
            "--task-queue",
            &env.task_queue,
        ])
        .env("TEMPORAL_ADDRESS", &address)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stephook run");
    let mut lines = BufReader::new(run.stdout.take().expect("stdout")).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("started workflow"))
        .expect("the run started");
    assert!(started.contains("agent-run-interrupted"), "{started}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let sent = Command::new("kill")
        .args(["-INT", &run.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(sent.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = run.wait().expect("run exits");
    let said = rest.join("\n");
    assert_eq!(status.code(), Some(130), "{said}");
    assert!(said.contains("goes on in Temporal"), "{said}");
    assert!(
        said.contains("stephook cancel agent-run-interrupted"),
        "{said}"
    );

    // The run goes on until cancelled; the run id works as well as the workflow id.
    let cancelled = stephook(data.path())
        .args(["cancel", "interrupted"])
        .env("TEMPORAL_ADDRESS", &address)
        .output()
        .expect("stephook cancel");
    assert!(
        cancelled.status.success(),
        "{}",
        String::from_utf8_lossy(&cancelled.stderr)
    );
    let handle = env
        .client
        .get_workflow_handle::<stephook_workflows::AgentWorkflow>("agent-run-interrupted");
    let ended = tokio::time::timeout(
        harness::RUN_TIMEOUT,
        handle.get_result(temporalio_client::WorkflowGetResultOptions::default()),
    )
    .await
    .expect("ended in time");
    assert!(ended.is_err(), "the run was cancelled");
    let steps = env.steps("interrupted").await;
    assert_eq!(
        steps.last().map(|s| s.status),
        Some(StepStatus::Cancelled),
        "{steps:?}"
    );
    worker.stop().await.expect("graceful stop");
}

/// Item 18: `dev` mixed 400-character worker log lines with the receiver's output. The terminal
/// now shows the receiver's lines (and stephook's own warnings, short); the full logs are in a
/// file the banner names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_12_18_dev_keeps_the_terminal_short_and_the_full_logs_in_a_file() {
    if !harness::temporal_cli_installed() {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let ports: Vec<String> = (0..4).map(|_| free_port().to_string()).collect();
    let mut child = stephook(data.path())
        .args([
            "dev",
            "--ephemeral",
            "--exit-after-demo",
            "--demo-steps",
            "2",
            "--temporal-port",
            &ports[0],
            "--ui-port",
            &ports[1],
            "--receiver-port",
            &ports[2],
            "--api-port",
            &ports[3],
        ])
        .env(
            "TEMPORAL_CLI",
            stephook::temporal::DevServer::find_binary().expect("the Temporal CLI"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stephook dev");
    let deadline = Instant::now() + harness::RUN_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "dev did not end after its demo");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let output = child.wait_with_output().unwrap();
    let terminal = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{terminal}");

    let log = data.path().join("stephook/dev/stephook-dev.log");
    assert!(
        terminal.contains(&log.display().to_string()),
        "the banner names the log file: {terminal}"
    );
    let full = std::fs::read_to_string(&log).expect("the log file");
    assert!(
        full.contains("INFO") && full.contains("stephook worker started"),
        "{full}"
    );
    assert_eq!(
        terminal.matches("step-complete  step-").count(),
        2,
        "the receiver's lines: {terminal}"
    );
    assert!(
        !terminal.contains(" INFO "),
        "no INFO log lines on the terminal: {terminal}"
    );
    for line in terminal.lines() {
        assert!(
            line.chars().count() <= 220,
            "a long line on the terminal: {line}"
        );
    }
}

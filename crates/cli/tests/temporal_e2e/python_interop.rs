//! Another SDK drives stephook: the official Python SDK (`temporalio` from PyPI, pinned in
//! `tests/python_interop/requirements.txt`, installed by `.ci/run`) starts AgentWorkflow by name
//! and calls `create_step` and `send_step_complete_webhook` by name from its own workflow, as the
//! README shows. Skipped (a failure under CI=true) without Python or the package.

use crate::harness::{env, wait_until_delivered};
use std::time::Duration;
use stephook_core::{StepId, StepStatus};
use stephook_testkit::Reply;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/python_interop/interop.py"
);

fn python_sdk_installed() -> bool {
    let found = std::process::Command::new("python3")
        .args(["-c", "import temporalio"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        stephook_store::testing::skip(
            "python3 cannot import temporalio (pip install -r crates/cli/tests/python_interop/requirements.txt)",
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_runs_agent_workflow_and_calls_the_activities_by_name() {
    if !python_sdk_installed() {
        return;
    }
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let worker = env.start_worker();
    let own_step = StepId::new_random();

    let address = env.server.address();
    let queue = env.task_queue.clone();
    let step = own_step.to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([SCRIPT, &address, &queue, "py-run", &step])
            .output()
    })
    .await
    .expect("join")
    .expect("run the Python script");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object");

    // AgentWorkflow, started from Python: two steps, stored and notified, readable by query.
    assert_eq!(printed["agent"]["steps"], 2, "{printed}");
    assert_eq!(printed["agent"]["webhooks_delivered"], 2, "{printed}");
    assert_eq!(printed["progress"]["steps_done"], 2, "{printed}");
    let steps = env.steps("py-run").await;
    assert_eq!(steps.len(), 2);
    assert!(steps.iter().all(|s| s.status == StepStatus::Success));

    // Python's own workflow: its step stored by create_step, notified by the webhook activity.
    let webhook = &printed["py"]["webhook"];
    assert_eq!(webhook["step_id"], own_step.to_string(), "{printed}");
    assert_eq!(webhook["delivered"], true, "{printed}");
    assert_eq!(webhook["status"], 200, "{printed}");
    let stored = env.steps("py-run-py").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].id, own_step);
    wait_until_delivered(&env.store, &own_step, Duration::from_secs(30)).await;
    assert!(
        env.receiver
            .requests()
            .iter()
            .any(|r| r.step_id() == Some(own_step.to_string())),
        "the receiver got Python's step"
    );
    worker.stop().await.expect("graceful stop");
}

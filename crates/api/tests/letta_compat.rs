//! The official Letta Python client (`letta-client`, pinned in letta_compat/requirements.txt),
//! pointed at a real stephook server: retrieve, metrics, paging both ways, typed 401 and 404.
//! Skipped (and said so; a failure under CI=true) when python3 or letta-client is missing.

mod common;

use common::{BASE_MS, Db, Server, TOKEN};
use std::path::Path;
use std::process::Command;
use stephook_core::StepStatus;
use stephook_store::testing;

const PYTHON_VAR: &str = "STEPHOOK_PYTHON";
const PINNED: &str = "letta-client==1.12.1";
/// More than a few pages of two.
const STEPS: usize = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_letta_python_client_reads_stephook_steps() {
    let python = std::env::var(PYTHON_VAR).unwrap_or_else(|_| "python3".to_owned());
    if !common::have(&python, "--version") {
        testing::skip(&format!("{python} is not installed (set {PYTHON_VAR})"));
        return;
    }
    let import = Command::new(&python)
        .args(["-c", "import letta_client"])
        .output();
    if !import.is_ok_and(|out| out.status.success()) {
        testing::skip(&format!(
            "the Python package letta-client is missing: pip install {PINNED}"
        ));
        return;
    }
    let Some(server) = Server::start(Db::Sqlite, Some(TOKEN)).await else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..STEPS {
        // Pairs share a timestamp: the client's `after` paging must still see each step once.
        let created_at = BASE_MS + (i / 2) as i64;
        ids.push(seed_compat_step(&server, created_at).await);
    }

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/letta_compat/compat.py");
    let base = server.base.clone();
    let step_id = ids[0].clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(script)
            .args([base.as_str(), TOKEN, step_id.as_str(), &STEPS.to_string()])
            .output()
    })
    .await
    .expect("join")
    .expect("run the compatibility script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.trim_end().ends_with("OK"),
        "the Letta client failed against stephook:\n{stdout}\n{stderr}"
    );
    server.stop().await;
}

async fn seed_compat_step(server: &Server, created_at: i64) -> String {
    common::seed_step(
        server.store(),
        "agent-compat",
        "run-compat",
        StepStatus::Success,
        created_at,
    )
    .await
    .to_string()
}

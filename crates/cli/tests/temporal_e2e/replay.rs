//! Replay: recorded AgentWorkflow histories must replay against today's workflow code, so a
//! non-deterministic change (a new activity before an old one, a reordered step...) fails here
//! instead of in production. The fixtures cover a run with a webhook given up on, a run whose
//! step failed, and a cancelled run, each five times:
//!
//! - `*_pre_outbox.json`, recorded before the outbox: each notification was awaited before the
//!   next step, and a given-up one was recorded with `record_undelivered_webhook`. Runs started
//!   then must still finish on today's workers, so that path stays (see `OUTBOX_PATCH`).
//! - `*_pre_model.json`, recorded with the outbox but before the model step: the history starts
//!   with the `OUTBOX_PATCH` marker, each notification's activity is scheduled together with the
//!   next step's body (`run_step_body`, in the same workflow task), and a given-up notification
//!   issues no further command (its outbox row already exists).
//! - `*_pre_local.json`, recorded with the model step but before the local store: the
//!   `MODEL_STEP_PATCH` marker follows, a step is `call_model` (the offline echo when the worker
//!   has no model) then its `call_tool`s, and `create_step` is a regular activity.
//! - `*_pre_v4.json`, recorded with the local store but before the one marker: the
//!   `LOCAL_STORE_PATCH` marker follows, `create_step` is a local activity (a marker), and the
//!   notification's activity is scheduled in the same workflow task completion.
//! - the others, recorded since: the same commands, after one marker (`STEPS_V4_PATCH`) instead
//!   of three, so one `TemporalChangeVersion` upsert instead of three.
//!
//! `agent_run_model_tools*.json` are runs against a loopback model that asks for a tool and then
//! answers: two steps, one tool call, `end_turn`.
//!
//! Re-record the current ones (after an intended, versioned change) with
//! `cargo test -p stephook --test temporal_e2e -- --ignored record_replay_fixtures`.

use crate::harness::{self, env, wait_for_steps_notified};
use std::path::PathBuf;
use stephook_model::ModelConfig;
use stephook_testkit::{ModelAnswer, ModelServer, Reply};
use stephook_workflows::AgentWorkflow;
use temporalio_client::{WorkflowCancelOptions, WorkflowFetchHistoryOptions, WorkflowHistory};
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

const FIXTURES: [&str; 3] = [
    "agent_run_webhook_undelivered.json",
    "agent_run_step_failed.json",
    "agent_run_cancelled.json",
];
const MODEL_TOOLS_FIXTURE: &str = "agent_run_model_tools.json";
const PRE_V4_FIXTURES: [&str; 4] = [
    "agent_run_webhook_undelivered_pre_v4.json",
    "agent_run_step_failed_pre_v4.json",
    "agent_run_cancelled_pre_v4.json",
    "agent_run_model_tools_pre_v4.json",
];
const PRE_LOCAL_FIXTURES: [&str; 4] = [
    "agent_run_webhook_undelivered_pre_local.json",
    "agent_run_step_failed_pre_local.json",
    "agent_run_cancelled_pre_local.json",
    "agent_run_model_tools_pre_local.json",
];
const PRE_MODEL_FIXTURES: [&str; 3] = [
    "agent_run_webhook_undelivered_pre_model.json",
    "agent_run_step_failed_pre_model.json",
    "agent_run_cancelled_pre_model.json",
];
const PRE_OUTBOX_FIXTURES: [&str; 3] = [
    "agent_run_webhook_undelivered_pre_outbox.json",
    "agent_run_step_failed_pre_outbox.json",
    "agent_run_cancelled_pre_outbox.json",
];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(name)
}

fn replayer() -> WorkflowReplayer {
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<AgentWorkflow>()
        .expect("register AgentWorkflow")
        .build();
    WorkflowReplayer::new(options).expect("a replayer")
}

#[tokio::test]
async fn recorded_histories_replay_with_the_current_code() {
    let replayer = replayer();
    let all = FIXTURES
        .into_iter()
        .chain([MODEL_TOOLS_FIXTURE])
        .chain(PRE_V4_FIXTURES)
        .chain(PRE_LOCAL_FIXTURES)
        .chain(PRE_MODEL_FIXTURES)
        .chain(PRE_OUTBOX_FIXTURES);
    for name in all {
        let path = fixture(name);
        let json = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("read {}: {e} (see this file's docs)", path.display()));
        let history = WorkflowHistory::from_json(&json).expect("a history JSON");
        if let Err(error) = replayer.replay_workflow(history).await {
            panic!("{name} no longer replays: {error}");
        }
    }
}

/// Records the fixtures on a real dev server. Ignored: run it by hand (see the module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "records fixtures; run by hand"]
async fn record_replay_fixtures() {
    // Step 1's notification gets a permanent 404 (recorded undelivered), the others a 200.
    let Some(env) = env(Reply::Sequence(vec![200, 404, 200])).await else {
        return;
    };
    let worker = env.start_worker();

    let handle = env.start_run("fixture-undelivered", &["hello"], 3).await;
    let result = harness::result(&handle).await;
    assert_eq!(result.webhook_failures, 1);
    save(&handle, FIXTURES[0]).await;

    env.receiver.set_reply(Reply::Status(200));
    let handle = env
        .start_run("fixture-failed", &["go", "fail-at:2"], 3)
        .await;
    let _ = handle
        .get_result(temporalio_client::WorkflowGetResultOptions::default())
        .await
        .expect_err("fails");
    save(&handle, FIXTURES[1]).await;

    let handle = env
        .start_run("fixture-cancelled", &["go sleep-ms:1500"], 3)
        .await;
    wait_for_steps_notified(&handle, 1).await;
    handle
        .cancel(WorkflowCancelOptions::default())
        .await
        .expect("cancel");
    let _ = handle
        .get_result(temporalio_client::WorkflowGetResultOptions::default())
        .await
        .expect_err("cancelled");
    save(&handle, FIXTURES[2]).await;
    worker.stop().await.expect("graceful stop");

    // A model that asks for a tool (no MCP server has it: the tool answers with an error the
    // model reads), then answers.
    let model = ModelServer::start(vec![
        ModelAnswer::tools(&[("lookup", r#"{"q":"stephook"}"#)]),
        ModelAnswer::text("done"),
    ])
    .await;
    let mut config = env.worker_config(env.webhook_args());
    config.agent.model = Some(ModelConfig {
        base_url: model.base_url().parse().expect("a URL"),
        model: "gpt-4o-mini".into(),
        api_key: None,
        timeout: std::time::Duration::from_secs(5),
    });
    let worker = harness::TestWorker::start(config);
    let handle = env
        .start_run("fixture-model-tools", &["look it up"], 5)
        .await;
    let result = harness::result(&handle).await;
    assert_eq!(
        (result.steps, result.stop_reason.as_deref()),
        (2, Some("end_turn"))
    );
    save(&handle, MODEL_TOOLS_FIXTURE).await;
    worker.stop().await.expect("graceful stop");
}

async fn save(handle: &harness::Handle, name: &str) {
    let json = handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .to_json()
        .await
        .expect("history as JSON");
    // The live history must replay too before it becomes a fixture.
    replayer()
        .replay_workflow(WorkflowHistory::from_json(&json).expect("parse"))
        .await
        .expect("the recorded history replays");
    let path = fixture(name);
    std::fs::create_dir_all(path.parent().expect("fixtures dir")).expect("create fixtures dir");
    std::fs::write(&path, json).expect("write fixture");
    eprintln!("recorded {}", path.display());
}

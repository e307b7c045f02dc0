//! AgentWorkflow's input as agent platforms send it: chat-shaped messages run; anything
//! unusable fails the run at once (never its workflow task, which Temporal would retry forever),
//! with a message naming the field, and the worker logs it once.

use crate::harness::{self, env};
use std::time::Duration;
use stephook_testkit::Reply;
use stephook_workflows::{INVALID_INPUT_ERROR_TYPE, json_payload};
use temporalio_client::WorkflowGetResultOptions;
use temporalio_client::errors::WorkflowGetResultError;
use temporalio_common::data_converters::RawValue;
use temporalio_common::error::IncomingError;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;

/// A refused input must end the run this fast (a hung run never would).
const REFUSED_WITHIN: Duration = Duration::from_secs(15);

fn json(value: serde_json::Value) -> RawValue {
    RawValue::new(vec![json_payload(value.to_string().into_bytes())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_shaped_input_runs_and_bad_input_fails_the_run_at_once_naming_the_field() {
    // Arrange: the real worker binary, its log in a file.
    let Some(env) = env(Reply::Status(200)).await else {
        return;
    };
    let log_path = env.server_dir().join("worker.log");
    let log = std::fs::File::create(&log_path).expect("a log file");
    let mut worker = env
        .worker_command()
        .env("RUST_LOG", "info")
        .stderr(log)
        .spawn()
        .expect("start stephook worker");

    // Act + assert: Letta's / OpenAI's message shape runs, roles and text parts included.
    let chat = env
        .start_raw(
            "chat",
            json(serde_json::json!({
                "agent_id": "agent-chat",
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": [{"type": "text", "text": "plan a trip"}]}
                ],
                "max_steps": 2
            })),
        )
        .await;
    let result = harness::result(&chat).await;
    assert_eq!(result.steps, 2);

    let binary = Payload {
        metadata: [("encoding".to_owned(), b"binary/plain".to_vec())].into(),
        data: vec![0xde, 0xad],
        ..Default::default()
    };
    let cases = [
        (
            "bad-camel",
            json(serde_json::json!({"agentId": "a"})),
            "agentId",
        ),
        (
            "bad-steps",
            json(serde_json::json!({"agent_id": "a", "max_steps": -1})),
            "max_steps",
        ),
        (
            "bad-message",
            json(serde_json::json!({"agent_id": "a", "messages": [{"role": "user"}]})),
            "messages[0].content",
        ),
        ("bad-none", RawValue::new(Vec::new()), "input"),
        ("bad-binary", RawValue::new(vec![binary]), "json/plain"),
        (
            "bad-json",
            RawValue::new(vec![json_payload(b"{\"agent_id\": ".to_vec())]),
            "invalid JSON",
        ),
    ];
    for (run_id, input, expected) in cases {
        let handle = env.start_raw(run_id, input).await;
        let ended = tokio::time::timeout(
            REFUSED_WITHIN,
            handle.get_result(WorkflowGetResultOptions::default()),
        )
        .await
        .unwrap_or_else(|_| panic!("{run_id}: still running after {REFUSED_WITHIN:?}"));
        let Err(WorkflowGetResultError::Failed(cause)) = ended else {
            panic!("{run_id}: expected a failed run, got {ended:?}");
        };
        let IncomingError::Application(failure) = cause.as_ref() else {
            panic!("{run_id}: expected an application failure, got {cause:?}");
        };
        assert_eq!(
            failure.type_name(),
            Some(INVALID_INPUT_ERROR_TYPE),
            "{run_id}"
        );
        assert!(failure.is_non_retryable(), "{run_id}");
        assert!(
            failure.to_string().contains(expected),
            "{run_id}: {failure}"
        );
        let events = harness::history(&handle).await;
        let task_failures = events
            .iter()
            .filter(|e| {
                matches!(
                    e.attributes,
                    Some(Attributes::WorkflowTaskFailedEventAttributes(_))
                )
            })
            .count();
        assert_eq!(task_failures, 0, "{run_id}: the workflow task never fails");
    }

    // The worker said so once per refused run.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || worker.wait()).await;
    let logged = std::fs::read_to_string(&log_path).expect("read the worker's log");
    for (run_id, _, _) in [
        ("bad-camel", (), ()),
        ("bad-steps", (), ()),
        ("bad-none", (), ()),
    ] {
        let lines = logged
            .lines()
            .filter(|l| l.contains("input refused") && l.contains(&format!("agent-run-{run_id}")))
            .count();
        assert_eq!(lines, 1, "{run_id}: {logged}");
    }
}

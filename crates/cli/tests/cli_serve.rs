//! `stephook serve` as a user runs it: it refuses to serve beyond loopback without a token, and
//! with a webhook URL it serves the API and delivers due notifications; SIGTERM stops it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use stephook_core::{Step, StepId, StepStatus, StoreArgs};
use stephook_store::Store;
use stephook_testkit::{Receiver, Reply};

const WAIT: Duration = Duration::from_secs(15);
const CLEARED_VARS: [&str; 6] = [
    "STEP_COMPLETE_WEBHOOK",
    "STEP_COMPLETE_KEY",
    "STEP_COMPLETE_SIGNING_SECRET",
    "STEPHOOK_API_ADDR",
    "STEPHOOK_API_TOKEN",
    "STEPHOOK_DATABASE_URL",
];

fn stephook(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stephook"));
    for var in CLEARED_VARS {
        command.env_remove(var);
    }
    command
        .arg("serve")
        .env("STEPHOOK_DATABASE_URL", database_url)
        .env("RUST_LOG", "info");
    command
}

fn free_port() -> u16 {
    stephook_core::free_loopback_port().expect("a free loopback port")
}

#[test]
fn a_public_address_without_a_token_is_refused_naming_both_variables() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let output = stephook(&url)
        .env("STEPHOOK_API_ADDR", "0.0.0.0:0")
        .env("STEPHOOK_API_TOKEN", "")
        .output()
        .expect("run stephook serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("STEPHOOK_API_ADDR") && stderr.contains("STEPHOOK_API_TOKEN"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_delivers_due_notifications_and_answers_the_api() {
    // Arrange: a committed step whose notification is due, in a fresh SQLite store.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let store = Store::connect(&StoreArgs::at(url.as_str()).validate().unwrap())
        .await
        .unwrap();
    let id = StepId::new_random();
    let mut step = Step::pending(id.clone(), "agent", Some("run".into()));
    step.status = StepStatus::Success;
    store
        .upsert_step(
            &step,
            None,
            Some(stephook_store::Notify {
                after: std::time::Duration::ZERO,
                to: stephook_store::NotifyTo::Unbound,
            }),
        )
        .await
        .unwrap();
    store.close().await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let port = free_port();

    // Act: serve with a webhook URL and a token.
    let mut child = stephook(&url)
        .args([
            "--api-addr",
            &format!("127.0.0.1:{port}"),
            "--api-token",
            "serve-test-token",
        ])
        .env("STEP_COMPLETE_WEBHOOK", receiver.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stephook serve");

    // Assert: the dispatcher delivered it, and the API says so.
    let requests = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        requests.first().and_then(|r| r.step_id()),
        Some(id.to_string())
    );
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let answer = http
            .get(format!("http://127.0.0.1:{port}/v1/deliveries/{id}"))
            .bearer_auth("serve-test-token")
            .send()
            .await;
        if let Ok(response) = answer {
            let text = response.text().await.unwrap_or_default();
            let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if body["state"] == "delivered" {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the API never showed the delivery as delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM stops it cleanly.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(killed.success());
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stephook serve did not stop on SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
}

/// Issue 11, 8: tried as a new user: `run --direct` aimed at an endpoint that was down; a
/// second later another deployment's dispatcher on the same store (here `stephook serve` with
/// its own URL) delivered the row to its own receiver, and the history showed no URL. Now the row
/// waits for its own endpoint, shown as such, and moves only when the operator says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_11_8_a_direct_runs_notification_never_goes_to_another_deployments_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let theirs = Receiver::start(Reply::Status(200)).await;
    let down = Receiver::start(Reply::Status(503)).await;
    let port = free_port();
    let mut serve = stephook(&url)
        .args(["--api-addr", &format!("127.0.0.1:{port}")])
        .env("STEP_COMPLETE_WEBHOOK", theirs.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start stephook serve");

    // The direct run's endpoint is down: its row is retried after 1 s.
    let mut direct = Command::new(env!("CARGO_BIN_EXE_stephook"));
    for var in CLEARED_VARS {
        direct.env_remove(var);
    }
    let output = direct
        .args(["run", "--direct", "--steps", "1", "--run-id", "mine"])
        .env("STEPHOOK_DATABASE_URL", &url)
        .env("STEP_COMPLETE_WEBHOOK", down.url())
        .env("STEPHOOK_RETRY_SCHEDULE", "1s")
        .output()
        .expect("run --direct");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let id = stdout
        .split_whitespace()
        .find(|word| word.starts_with("step-"))
        .expect("the step id")
        .to_owned();
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Never sent to the other deployment's endpoint; shown waiting for its own.
    assert_eq!(theirs.count(), 0, "sent to another deployment's endpoint");
    let list = Command::new(env!("CARGO_BIN_EXE_stephook"))
        .args(["deliveries", "list"])
        .env("STEPHOOK_DATABASE_URL", &url)
        .output()
        .expect("deliveries list");
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.contains(&format!("waiting for {}", down.url())),
        "{list}"
    );
    let http = reqwest::Client::new();
    let detail = http
        .get(format!("http://127.0.0.1:{port}/v1/deliveries/{id}"))
        .send()
        .await
        .expect("GET delivery")
        .text()
        .await
        .expect("a body");
    let detail: serde_json::Value = serde_json::from_str(&detail).expect("JSON");
    assert_eq!(detail["endpoint"], down.url().as_str(), "{detail}");
    assert_eq!(detail["endpoint_served"], false, "{detail}");
    assert_eq!(detail["history"][0]["url"], down.url().as_str(), "{detail}");

    // The operator moves it: then, and only then, the other endpoint gets it.
    let moved = Command::new(env!("CARGO_BIN_EXE_stephook"))
        .args(["deliveries", "redeliver", &id, "--to-current-endpoint"])
        .env("STEPHOOK_DATABASE_URL", &url)
        .env("STEP_COMPLETE_WEBHOOK", theirs.url())
        .output()
        .expect("redeliver");
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    let requests = theirs.wait_for(1, WAIT).await;
    assert_eq!(requests.first().and_then(|r| r.step_id()), Some(id.clone()));
    let _ = serve.kill();
    let _ = serve.wait();
}

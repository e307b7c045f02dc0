//! The `stephook` binary as a user runs it: configuration errors, the local receiver, a direct
//! run end to end, redelivery, and what reaches the logs.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use stephook_testkit::{Receiver, Reply};

const KEY: &str = "cli-test-key-7a6b5c";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const WEBHOOK_VARS: [&str; 6] = [
    "STEP_COMPLETE_WEBHOOK",
    "STEP_COMPLETE_KEY",
    "STEP_COMPLETE_SIGNING_SECRET",
    "STEP_COMPLETE_TIMEOUT_MS",
    "STEPHOOK_DATABASE_URL",
    "STEPHOOK_LOG_FORMAT",
];

/// The binary with a clean webhook environment and a database in `dir`.
fn stephook(dir: &tempfile::TempDir) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stephook"));
    for var in WEBHOOK_VARS {
        command.env_remove(var);
    }
    command
        .env(
            "STEPHOOK_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("s.db").display()),
        )
        .env("RUST_LOG", "info")
        .current_dir(dir.path());
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run stephook")
}

fn free_port() -> u16 {
    stephook_core::free_loopback_port().expect("a free loopback port")
}

/// `stephook receive` in the background; its stdout lines are read as they come.
struct ReceiveProcess {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    port: u16,
}

impl ReceiveProcess {
    fn start(dir: &tempfile::TempDir, extra: &[&str]) -> Self {
        let port = free_port();
        let mut child = stephook(dir)
            .args(["receive", "--port", &port.to_string()])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start stephook receive");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("receiver started");
        assert!(first.contains("listening"), "{first}");
        Self { child, lines, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hooks/step-complete", self.port)
    }

    fn collect(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => got.push(line),
                Err(_) => break,
            }
        }
        got
    }
}

impl Drop for ReceiveProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn each_unusable_setting_stops_the_process_naming_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("STEP_COMPLETE_WEBHOOK", "ftp://127.0.0.1/hook"),
        ("STEP_COMPLETE_WEBHOOK", "not a url"),
        ("STEP_COMPLETE_TIMEOUT_MS", "15000"),
        ("STEP_COMPLETE_TIMEOUT_MS", "soon"),
        ("STEP_COMPLETE_SIGNING_SECRET", "sk_not_a_whsec_secret"),
        ("STEPHOOK_DATABASE_URL", "mysql://root@127.0.0.1/x"),
        (
            "STEPHOOK_DATABASE_URL",
            "postgres://app:pw-6f5e4d@127.0.0.1:1/unreachable",
        ),
        (
            "STEPHOOK_DATABASE_URL",
            "postgres://app@127.0.0.1:1/unreachable?password=pw-6f5e4d",
        ),
        // Credentials in the URL plus a key would send two Authorization headers.
        (
            "STEP_COMPLETE_WEBHOOK",
            "http://app:pw-6f5e4d@127.0.0.1:1/h",
        ),
        // An empty schedule would mean "never retry"; huge values would overflow.
        ("STEPHOOK_RETRY_SCHEDULE", ""),
        ("STEPHOOK_RETRY_SCHEDULE", " , "),
        ("STEPHOOK_RETRY_SCHEDULE", "99999999999999999999h"),
        ("STEPHOOK_RETRY_SCHEDULE", "8d"),
        ("STEPHOOK_RETRY_SCHEDULE", "5s,500ms"),
    ];
    for (var, value) in cases {
        let output = run(stephook(&dir)
            .args(["run", "--direct", "--steps", "1"])
            .env(var, value));

        let stderr = text(&output.stderr);
        assert!(
            !output.status.success(),
            "{var}={value} should stop the process"
        );
        assert!(
            stderr.contains(&format!("error: {var}")),
            "{var}={value}: {stderr}"
        );
        assert!(
            !stderr.contains("pw-6f5e4d") && !stderr.contains("sk_not_a_whsec"),
            "{stderr}"
        );
    }
}

#[test]
fn a_direct_run_shows_three_verified_events_at_the_local_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = ReceiveProcess::start(&dir, &["--key", KEY, "--secret", SECRET]);

    let output = run(stephook(&dir)
        .args(["run", "--direct", "--steps", "3"])
        .env("STEP_COMPLETE_WEBHOOK", receiver.url())
        .env("STEP_COMPLETE_KEY", KEY)
        .env("STEP_COMPLETE_SIGNING_SECRET", SECRET));

    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert_eq!(stdout.matches("  success").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("delivered").count(), 3, "{stdout}");
    let events = receiver.collect(3);
    assert_eq!(events.len(), 3, "{events:?}");
    for event in &events {
        assert!(event.contains("(bearer ok, signature verified)"), "{event}");
    }
    let listed =
        text(&run(stephook(&dir).args(["deliveries", "list", "--state", "delivered"])).stdout);
    assert_eq!(listed.lines().count(), 3, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_rejects_a_wrong_key_and_a_bad_signature() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = ReceiveProcess::start(&dir, &["--key", KEY, "--secret", SECRET]);
    let client = reqwest::Client::new();
    let body = r#"{"step_id":"step-01234567-89ab-cdef-0123-456789abcdef"}"#;

    let no_key = client.post(receiver.url()).body(body).send().await.unwrap();
    let wrong_key = client
        .post(receiver.url())
        .bearer_auth("wrong")
        .body(body)
        .send()
        .await
        .unwrap();
    let bad_signature = client
        .post(receiver.url())
        .bearer_auth(KEY)
        .header("webhook-id", "step-01234567-89ab-cdef-0123-456789abcdef")
        .header(
            "webhook-timestamp",
            stephook_core::now_unix_seconds().to_string(),
        )
        .header(
            "webhook-signature",
            "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(no_key.status(), 401);
    assert_eq!(wrong_key.status(), 401);
    assert_eq!(bad_signature.status(), 400);
    let lines = receiver.collect(3);
    assert!(lines[2].contains("bad signature"), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_redeliver_resends_a_dead_notification_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Receiver::start(Reply::Status(404)).await;
    let output = run(stephook(&dir)
        .args(["run", "--direct", "--steps", "1"])
        .env("STEP_COMPLETE_WEBHOOK", endpoint.url())
        .env("STEP_COMPLETE_SIGNING_SECRET", SECRET));
    assert!(
        text(&output.stdout).contains("dead"),
        "{}",
        text(&output.stdout)
    );
    let dead = text(&run(stephook(&dir).args(["deliveries", "list", "--state", "dead"])).stdout);
    let step_id = dead
        .split_whitespace()
        .next()
        .expect("one dead delivery")
        .to_owned();

    // Without --now, redeliver only queues it again for a running worker's dispatcher.
    endpoint.set_reply(Reply::Status(200));
    let queued = run(stephook(&dir).args(["deliveries", "redeliver", &step_id]));
    assert!(queued.status.success(), "{}", text(&queued.stderr));
    assert!(
        text(&queued.stdout).contains("queued 1"),
        "{}",
        text(&queued.stdout)
    );
    let pending =
        text(&run(stephook(&dir).args(["deliveries", "list", "--state", "pending"])).stdout);
    assert!(pending.contains(&step_id), "{pending}");
    assert!(
        pending.contains("attempts=0"),
        "the counters restart: {pending}"
    );
    assert_eq!(endpoint.count(), 1, "nothing sent by the command");

    // --now sends exactly it from the command and waits for the result.
    let output = run(stephook(&dir)
        .args(["deliveries", "redeliver", &step_id, "--now"])
        .env("STEP_COMPLETE_WEBHOOK", endpoint.url())
        .env("STEP_COMPLETE_SIGNING_SECRET", SECRET));

    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("delivered"),
        "{}",
        text(&output.stdout)
    );
    let requests = endpoint.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("webhook-id"), Some(step_id.as_str()));
    assert_eq!(requests[1].header("webhook-id"), Some(step_id.as_str()));
    let again = run(stephook(&dir)
        .args(["deliveries", "redeliver", "--dead", "--now"])
        .env("STEP_COMPLETE_WEBHOOK", endpoint.url()));
    assert!(
        text(&again.stdout).contains("nothing to redeliver"),
        "{}",
        text(&again.stdout)
    );
}

/// Operator commands on a shared store act only on what they name: an unconfigured direct run
/// and a `redeliver --now` of one id to another URL leave the other due rows alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_leave_other_due_rows_untouched() {
    // Arrange: one notification waiting for its retry (due again after 1 s), one dead.
    let dir = tempfile::tempdir().unwrap();
    let down = Receiver::start(Reply::Status(503)).await;
    let waiting = run(stephook(&dir)
        .args(["run", "--direct", "--steps", "1", "--run-id", "waiting"])
        .env("STEPHOOK_RETRY_SCHEDULE", "1s")
        .env("STEP_COMPLETE_WEBHOOK", down.url()));
    assert!(
        text(&waiting.stdout).contains("retrying"),
        "{}",
        text(&waiting.stdout)
    );
    let gone = Receiver::start(Reply::Status(410)).await;
    run(stephook(&dir)
        .args(["run", "--direct", "--steps", "1", "--run-id", "gone"])
        .env("STEP_COMPLETE_WEBHOOK", gone.url()));
    let list = |state: &str| {
        text(&run(stephook(&dir).args(["deliveries", "list", "--state", state])).stdout)
    };
    let retrying_before = list("retrying");
    let dead_id = list("dead")
        .split_whitespace()
        .next()
        .expect("one dead delivery")
        .to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Act: a run without a URL, then a redelivery of the dead one to another endpoint: refused
    // unless the operator says to move it.
    let unconfigured = run(stephook(&dir).args(["run", "--direct", "--steps", "1"]));
    let other = Receiver::start(Reply::Status(200)).await;
    let not_moved = run(stephook(&dir)
        .args(["deliveries", "redeliver", &dead_id, "--now"])
        .env("STEP_COMPLETE_WEBHOOK", other.url()));
    assert!(!not_moved.status.success());
    assert!(
        text(&not_moved.stdout).contains("--to-current-endpoint"),
        "{}",
        text(&not_moved.stdout)
    );
    assert_eq!(
        other.count(),
        0,
        "never sent to an endpoint it was not committed for"
    );
    let redelivered = run(stephook(&dir)
        .args([
            "deliveries",
            "redeliver",
            &dead_id,
            "--now",
            "--to-current-endpoint",
        ])
        .env("STEP_COMPLETE_WEBHOOK", other.url()));

    // Assert: the waiting row is exactly as it was; the other endpoint got only the named id.
    assert!(
        unconfigured.status.success(),
        "{}",
        text(&unconfigured.stderr)
    );
    assert!(
        redelivered.status.success(),
        "{}",
        text(&redelivered.stderr)
    );
    assert_eq!(list("retrying"), retrying_before);
    assert_eq!(down.count(), 1);
    let sent: Vec<_> = other
        .requests()
        .iter()
        .filter_map(|r| r.step_id())
        .collect();
    assert_eq!(sent, vec![dead_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_output_and_json_logs_are_json() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Receiver::start(Reply::Status(500)).await;

    let output = run(stephook(&dir)
        .args(["run", "--direct", "--steps", "2", "--retry-schedule", "10"])
        .env("STEPHOOK_RETRY_SCHEDULE_MIN_MS", "10")
        .env("STEP_COMPLETE_WEBHOOK", endpoint.url())
        .env("STEP_COMPLETE_KEY", KEY)
        .env("STEP_COMPLETE_SIGNING_SECRET", SECRET)
        .env("STEPHOOK_LOG_FORMAT", "json")
        .env("RUST_LOG", "trace"));

    let everything = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(!everything.contains(KEY), "{everything}");
    assert!(
        !everything.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "{everything}"
    );
    let stderr = text(&output.stderr);
    let warn_lines: Vec<_> = stderr.lines().filter(|l| l.contains("non-2xx")).collect();
    assert!(!warn_lines.is_empty(), "{stderr}");
    for line in stderr.lines().filter(|l| l.contains("stephook")) {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
}

/// SIGTERM (what a container runtime sends) in the middle of a step: the step is stored
/// `cancelled` with its metrics and notified before the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_direct_run_cancels_the_current_step_and_notifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = Receiver::start(Reply::Status(200)).await;
    let mut child = stephook(&dir)
        .args([
            "run",
            "--direct",
            "--steps",
            "3",
            "--message",
            "go sleep-ms:5000",
        ])
        .env("STEP_COMPLETE_WEBHOOK", endpoint.url())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a direct run");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let pending = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("pending"))
        .expect("step 0 started");
    let step_id = pending
        .split_whitespace()
        .nth(2)
        .expect("step id on the line")
        .to_owned();

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("send SIGTERM");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exited = child.wait().expect("the run exits");

    assert!(term.success());
    assert!(!exited.success(), "an interrupted run is not a success");
    assert!(
        rest.iter()
            .any(|l| l.contains(&step_id) && l.contains("cancelled")),
        "{rest:?}"
    );
    let requests = endpoint.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(requests[0].step_id().as_deref(), Some(step_id.as_str()));
    let shown = text(&run(stephook(&dir).args(["steps", "show", &step_id])).stdout);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(shown["step"]["status"], "cancelled");
    assert!(shown["step"]["step_ms"].as_i64().is_some(), "{shown}");
    assert_eq!(shown["delivery"]["state"], "delivered");
    assert_eq!(endpoint.count(), 1, "no step after the cancelled one");
}

#[test]
fn an_unusable_retention_stops_the_worker_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    for value in ["", "5m", "0", "forever", "99999999999999999999d"] {
        let output = run(stephook(&dir)
            .arg("worker")
            .env("STEPHOOK_RETENTION", value)
            .env("TEMPORAL_ADDRESS", "127.0.0.1:1"));
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{value:?}");
        assert!(
            stderr.contains("error: STEPHOOK_RETENTION"),
            "{value:?}: {stderr}"
        );
    }
}

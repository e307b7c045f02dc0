//! Issue 12, tried as a new user would: which store a command reads, step numbering, run ids as
//! `run` prints them, what a script can tell from the exit status, and bad input refused. Each
//! test runs the real binary with its own per-user data directory (XDG_DATA_HOME).

use std::process::{Command, Output};
use std::time::Duration;
use stephook_testkit::{Receiver, Reply};

const CLEARED_VARS: [&str; 8] = [
    "STEP_COMPLETE_WEBHOOK",
    "STEP_COMPLETE_KEY",
    "STEP_COMPLETE_SIGNING_SECRET",
    "STEP_COMPLETE_TIMEOUT_MS",
    "STEPHOOK_DATABASE_URL",
    "STEPHOOK_LOG_FORMAT",
    "STEPHOOK_API_ADDR",
    "RUST_LOG",
];

/// A user: a home for stephook's data, and a current directory of their own.
struct User {
    data: tempfile::TempDir,
    cwd: tempfile::TempDir,
}

impl User {
    fn new() -> Self {
        Self {
            data: tempfile::tempdir().unwrap(),
            cwd: tempfile::tempdir().unwrap(),
        }
    }

    /// `stephook` as this user runs it, from `cwd`, with nothing set but the data directory.
    fn stephook(&self, cwd: &std::path::Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_stephook"));
        for var in CLEARED_VARS {
            command.env_remove(var);
        }
        command
            .env("XDG_DATA_HOME", self.data.path())
            .current_dir(cwd);
        command
    }

    fn default_store(&self) -> std::path::PathBuf {
        self.data.path().join("stephook/stephook.db")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run stephook")
}

fn step_ids(stdout: &str) -> Vec<String> {
    let mut ids: Vec<String> = stdout
        .split_whitespace()
        .filter(|w| w.starts_with("step-"))
        .map(str::to_owned)
        .collect();
    ids.dedup();
    ids
}

/// Item 1: `cd elsewhere && stephook deliveries list` said "No deliveries" and created an empty
/// `stephook.db` there; `steps show <a demo step>` said "not found". One store per user now,
/// named on stderr, and a read-only command never creates one.
#[test]
fn issue_12_1_every_command_reads_one_store_per_user_whatever_the_directory() {
    let user = User::new();
    let elsewhere = tempfile::tempdir().unwrap();

    // Nothing has run yet: a read-only command says there is no store, and creates none.
    let empty = run(user.stephook(elsewhere.path()).args(["deliveries", "list"]));
    assert!(!empty.status.success());
    let said = text(&empty.stderr);
    assert!(
        said.contains("no step store at") && said.contains("STEPHOOK_DATABASE_URL"),
        "{said}"
    );
    assert!(
        !user.default_store().exists(),
        "a read-only command created a store"
    );
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none()
    );

    // A direct run from one directory; its step is found from another.
    let ran = run(user
        .stephook(user.cwd.path())
        .args(["run", "--direct", "--steps", "1"]));
    assert!(ran.status.success(), "{}", text(&ran.stderr));
    assert!(user.default_store().exists());
    let ids = step_ids(&text(&ran.stdout));
    let shown = run(user
        .stephook(elsewhere.path())
        .args(["steps", "show", &ids[0]]));
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let named = text(&shown.stderr);
    assert!(
        named.contains(&user.default_store().display().to_string()),
        "the store is named: {named}"
    );
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none()
    );
}

/// Items 3 and 4: `fail-at:1` failed the second step, direct mode printed `step 0`, and
/// `steps list --run-id agent-run-<id>` found nothing. Steps count from 1 everywhere; a run id is
/// accepted in both forms; times are ISO 8601.
#[test]
fn issue_12_3_and_4_steps_count_from_one_run_ids_in_both_forms_iso_times() {
    let user = User::new();
    let output = run(user.stephook(user.cwd.path()).args([
        "run",
        "--direct",
        "--steps",
        "3",
        "--run-id",
        "numbered",
        "--message",
        "go fail-at:2",
    ]));
    let stdout = text(&output.stdout);
    assert!(!output.status.success(), "the second step failed the run");
    assert!(stdout.contains("step 1/3"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("step 2/3") && l.ends_with("failed")),
        "{stdout}"
    );
    assert!(
        !stdout.contains("step 0") && !stdout.contains("step 3/3"),
        "{stdout}"
    );
    assert!(
        text(&output.stderr).contains("step 2 of 3 failed"),
        "{}",
        text(&output.stderr)
    );

    for run_id in ["numbered", "agent-run-numbered"] {
        let listed = text(
            &run(user
                .stephook(user.cwd.path())
                .args(["steps", "list", "--run-id", run_id]))
            .stdout,
        );
        assert_eq!(listed.lines().count(), 2, "{run_id}: {listed}");
        assert!(listed.contains("created=20"), "{listed}");
    }
    let first = step_ids(&stdout)[0].clone();
    let shown = text(
        &run(user
            .stephook(user.cwd.path())
            .args(["steps", "show", &first]))
        .stdout,
    );
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    let created = shown["step"]["created_at"].as_str().expect("a time");
    assert!(
        created.starts_with("20") && created.ends_with('Z'),
        "{created}"
    );
}

/// Item 6: `run --direct` whose notifications ended dead exited 0 and did not mention
/// redelivery. It exits 3 (documented) and says how to send them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_12_6_a_direct_run_with_a_dead_notification_exits_3_and_says_how_to_redeliver() {
    let user = User::new();
    let gone = Receiver::start(Reply::Status(410)).await;
    let output = run(user
        .stephook(user.cwd.path())
        .args(["run", "--direct", "--steps", "1"])
        .env("STEP_COMPLETE_WEBHOOK", gone.url()));
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stdout}{stderr}");
    let id = &step_ids(&stdout)[0];
    assert!(
        stderr.contains(&format!("stephook deliveries redeliver {id}")),
        "{stderr}"
    );
    assert!(stdout.contains("dead"), "{stdout}");

    let delivered = Receiver::start(Reply::Status(200)).await;
    let ok = run(user
        .stephook(user.cwd.path())
        .args(["run", "--direct", "--steps", "1"])
        .env("STEP_COMPLETE_WEBHOOK", delivered.url()));
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
}

/// Items 8 and 9: `deliveries list --state failed` printed "No deliveries", and
/// `STEPHOOK_LOG_FORMAT=jsno` was ignored. Both are refused, naming what is valid.
#[test]
fn issue_12_8_and_9_unknown_values_are_refused_naming_the_valid_ones() {
    let user = User::new();
    let state =
        run(user
            .stephook(user.cwd.path())
            .args(["deliveries", "list", "--state", "failed"]));
    assert!(!state.status.success());
    let said = text(&state.stderr);
    assert!(
        said.contains("pending") && said.contains("retrying") && said.contains("dead"),
        "{said}"
    );

    let format = run(user
        .stephook(user.cwd.path())
        .args(["steps", "list"])
        .env("STEPHOOK_LOG_FORMAT", "jsno"));
    assert!(!format.status.success());
    let said = text(&format.stderr);
    assert!(
        said.contains("STEPHOOK_LOG_FORMAT") && said.contains("json"),
        "{said}"
    );

    let filter = run(user
        .stephook(user.cwd.path())
        .args(["steps", "list"])
        .env("RUST_LOG", "info,=["));
    assert!(!filter.status.success());
    assert!(
        text(&filter.stderr).contains("RUST_LOG"),
        "{}",
        text(&filter.stderr)
    );

    let limit = run(user
        .stephook(user.cwd.path())
        .args(["deliveries", "list", "--limit", "-1"]));
    assert!(!limit.status.success(), "an unbounded list is refused");

    let help = text(&run(user.stephook(user.cwd.path()).args(["serve", "--help"])).stdout);
    assert!(
        help.contains(", d)") || help.contains(" d)"),
        "the schedule's units: {help}"
    );
}

/// Item 10: with the API port taken, the error said "Address already in use" twice.
#[test]
fn issue_12_10_a_taken_api_port_is_said_once() {
    let user = User::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut child = user
        .stephook(user.cwd.path())
        .args(["serve", "--api-addr", &addr])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start serve");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let said = text(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(said.matches("already in use").count(), 1, "{said}");
    assert!(said.contains("--api-addr"), "{said}");
}

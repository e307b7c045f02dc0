//! The worker under measurement: `stephook worker` as a separate process (this same binary), so
//! its CPU time and peak RSS, read from /proc, are its own. Stopped with SIGTERM, as a container
//! runtime would; killed if it outlives the graceful period, or if the bench itself fails.

use super::procfs::Procfs;
use crate::temporal::connect::Compression;
use anyhow::{Context as _, bail};
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The worker lets in-flight activities finish for up to 30 s after SIGTERM; then some slack.
const STOP_TIMEOUT: Duration = Duration::from_secs(45);
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How much of the worker's output an error or the report quotes.
const LOG_TAIL_BYTES: u64 = 2048;

/// What the worker is started with.
pub struct WorkerSpec<'a> {
    pub temporal_address: &'a str,
    pub database_url: &'a str,
    /// `None`: STEP_COMPLETE_WEBHOOK unset, notifications skipped (the ceiling run).
    pub webhook_url: Option<&'a str>,
    /// Makes requests carry `webhook-id`, so the receiver can tell redeliveries apart.
    pub signing_secret: Option<&'a str>,
    pub task_queue: &'a str,
    pub max_concurrent_activities: usize,
    pub grpc_compression: Compression,
    /// The dispatcher's retry schedule (the worker's default when `None`).
    pub retry_schedule: Option<&'a str>,
    /// `Some`: the steps call this OpenAI-compatible model (the bench's loopback one); `None`:
    /// the offline echo.
    pub model_base_url: Option<&'a str>,
    /// `Some`: the worker's `/metrics` listens here (the SDK's figures on its workflow tasks).
    pub metrics_addr: Option<SocketAddr>,
    /// The worker's stdout and stderr go here.
    pub log_path: &'a Path,
}

pub struct WorkerProcess {
    child: Child,
    log_path: PathBuf,
    procfs: Procfs,
}

impl WorkerProcess {
    pub fn spawn(spec: &WorkerSpec<'_>) -> anyhow::Result<Self> {
        let exe =
            std::env::current_exe().context("cannot find this executable to run the worker")?;
        let log = File::create(spec.log_path)
            .with_context(|| format!("cannot create {}", spec.log_path.display()))?;
        let mut command = Command::new(&exe);
        command
            .arg("worker")
            .args(["--task-queue", spec.task_queue])
            .args([
                "--max-concurrent-activities",
                &spec.max_concurrent_activities.to_string(),
            ])
            .args([
                "--temporal-grpc-compression",
                compression_name(spec.grpc_compression),
            ])
            .env("TEMPORAL_ADDRESS", spec.temporal_address)
            .env("TEMPORAL_NAMESPACE", "default")
            .env("STEPHOOK_DATABASE_URL", spec.database_url)
            .env("RUST_LOG", "warn")
            // Settings of the caller's own worker must not leak into the measured one.
            .env_remove("STEP_COMPLETE_KEY")
            .env_remove("STEP_COMPLETE_TIMEOUT_MS")
            .env_remove("STEPHOOK_MODEL_API_KEY")
            .env_remove("STEPHOOK_MODEL_TIMEOUT")
            .env_remove("STEPHOOK_MCP_CONFIG")
            .env_remove("STEPHOOK_TOOL_TIMEOUT")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        match spec.webhook_url {
            Some(url) => command.env("STEP_COMPLETE_WEBHOOK", url),
            None => command.env_remove("STEP_COMPLETE_WEBHOOK"),
        };
        match spec.model_base_url {
            Some(url) => command
                .env("STEPHOOK_MODEL_BASE_URL", url)
                .env("STEPHOOK_MODEL", super::model_server::BENCH_MODEL),
            None => command
                .env_remove("STEPHOOK_MODEL_BASE_URL")
                .env_remove("STEPHOOK_MODEL"),
        };
        match spec.metrics_addr {
            Some(addr) => command.env("STEPHOOK_METRICS_ADDR", addr.to_string()),
            None => command.env_remove("STEPHOOK_METRICS_ADDR"),
        };
        match spec.retry_schedule {
            Some(schedule) => command.env("STEPHOOK_RETRY_SCHEDULE", schedule),
            None => command.env_remove("STEPHOOK_RETRY_SCHEDULE"),
        };
        match spec.signing_secret {
            Some(secret) => command.env("STEP_COMPLETE_SIGNING_SECRET", secret),
            None => command.env_remove("STEP_COMPLETE_SIGNING_SECRET"),
        };
        let child = command
            .spawn()
            .with_context(|| format!("cannot run {} worker", exe.display()))?;
        Ok(Self {
            child,
            log_path: spec.log_path.to_owned(),
            procfs: Procfs::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error quoting the worker's output when it has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the worker (pid {}) exited ({status}); its output:\n{}",
                self.pid(),
                self.log_tail()
            );
        }
        Ok(())
    }

    /// User + system CPU time so far, all threads, in seconds.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        self.procfs.cpu_seconds(self.pid())
    }

    /// Peak resident set size (VmHWM) so far, in MiB.
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        self.procfs.peak_rss_mib(self.pid())
    }

    /// SIGTERM, then waits (bounded) for the graceful exit; kills it if it takes too long.
    pub async fn stop(mut self) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let sent = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("cannot run `kill -TERM` to stop the worker")?;
        if !sent.success() {
            // Raced with an exit, or no permission: fall through to the bounded wait and kill.
            tracing::warn!(pid = self.pid(), "kill -TERM did not succeed");
        }
        let deadline = tokio::time::Instant::now() + STOP_TIMEOUT;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            tokio::time::sleep(EXIT_POLL_INTERVAL).await;
        }
        self.child.kill()?;
        let status = self.child.wait()?;
        bail!(
            "the worker did not exit within {STOP_TIMEOUT:?} of SIGTERM and was killed ({status})"
        )
    }

    /// The last lines the worker wrote (it logs at warn, so usually nothing).
    pub fn log_tail(&self) -> String {
        read_tail(&self.log_path).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        // Only when the bench failed midway: `stop` has reaped it otherwise.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn compression_name(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "none",
        Compression::Gzip => "gzip",
    }
}

fn read_tail(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    Ok(String::from_utf8_lossy(&tail).into_owned())
}

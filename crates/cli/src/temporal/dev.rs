//! `stephook dev`: one command, a working local system. A Temporal dev server with its UI on
//! :8233, a worker, a receiver that prints each webhook (checking its Bearer key and signature),
//! and a demo run; then everything keeps serving until Ctrl-C, so `stephook run` from another
//! terminal shows up in the UI and at the receiver.

use super::devserver::{DevServer, DevServerOptions};
use super::start::{RunWorkflowOptions, run_workflow};
use super::worker::{
    DEFAULT_MAX_CONCURRENT_ACTIVITIES, WorkerConfig, run_worker_until, shutdown_signal,
};
use crate::receive::{ReceiverConfig, serve};
use anyhow::Context as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use stephook_core::{DEFAULT_TASK_QUEUE, Secret, SigningSecret, StoreArgs, WebhookArgs};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const DEFAULT_TEMPORAL_PORT: u16 = 7233;
pub const DEFAULT_UI_PORT: u16 = 8233;
pub const DEFAULT_RECEIVER_PORT: u16 = 8787;
/// Demo-only credentials shared by the worker and the built-in receiver, so the demo shows the
/// Bearer key and the signature being checked. Never use them anywhere else.
const DEV_KEY: &str = "stephook-dev-key";
const DEV_SIGNING_SECRET: &str = "whsec_c3RlcGhvb2stZGV2LXNpZ25pbmctc2VjcmV0";
const RECEIVER_PATH: &str = "/hooks/step-complete";
const STATE_DIR: &str = "dev";
const STATE_FILE: &str = "temporal.db";
const LOG_FILE: &str = "stephook-dev.log";

#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Temporal frontend port (the default TEMPORAL_ADDRESS, so other commands find it).
    #[arg(long, default_value_t = DEFAULT_TEMPORAL_PORT)]
    pub temporal_port: u16,
    /// Temporal web UI port.
    #[arg(long, default_value_t = DEFAULT_UI_PORT)]
    pub ui_port: u16,
    /// Keep Temporal's state in this SQLite file (default: `dev/temporal.db` in stephook's
    /// per-user directory, next to the default store, so a restart resumes the runs in flight).
    #[arg(long, conflicts_with = "ephemeral")]
    pub temporal_db: Option<PathBuf>,
    /// Keep Temporal's state in memory only (gone on exit).
    #[arg(long)]
    pub ephemeral: bool,
    /// Port of the built-in webhook receiver.
    #[arg(long, default_value_t = DEFAULT_RECEIVER_PORT)]
    pub receiver_port: u16,
    /// Port of the HTTP API and console on 127.0.0.1 (Letta's default port).
    #[arg(long, default_value_t = stephook_api::config::DEFAULT_PORT)]
    pub api_port: u16,
    /// Steps of the demo run (0: no demo run).
    #[arg(long, default_value_t = 3)]
    pub demo_steps: u32,
    /// Stop everything once the demo run has ended (for scripts and CI).
    #[arg(long)]
    pub exit_after_demo: bool,
    #[arg(long, env = "STEPHOOK_TASK_QUEUE", default_value = DEFAULT_TASK_QUEUE)]
    pub task_queue: String,
    /// Serve the worker's Prometheus metrics at http://ADDR/metrics.
    #[arg(long, env = "STEPHOOK_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub agent: super::agent_config::AgentArgs,
}

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    // Every port first: a taken one stops `dev` before anything starts, naming its flag (a
    // Temporal server already on 7233 must not be joined: its workers and runs are not ours).
    check_ports(&args)?;
    let listener = TcpListener::bind(("127.0.0.1", args.receiver_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on 127.0.0.1:{} (--receiver-port)",
                args.receiver_port
            )
        })?;
    let receiver_url = format!("http://{}{RECEIVER_PATH}", listener.local_addr()?);
    let (stop_tx, stop_rx) = watch::channel(false);
    let receiver = tokio::spawn(serve(
        listener,
        ReceiverConfig {
            key: Some(Secret::new(DEV_KEY)),
            secret: Some(SigningSecret::parse(DEV_SIGNING_SECRET)?),
            status: None,
        },
        stopped(stop_rx.clone()),
    ));

    let state = if args.ephemeral {
        None
    } else {
        Some(match &args.temporal_db {
            Some(path) => path.clone(),
            None => default_state_file()?,
        })
    };
    let server = DevServer::start(DevServerOptions {
        port: Some(args.temporal_port),
        ui_port: Some(args.ui_port),
        db_filename: state.clone(),
        inherit_output: true,
        // The server's warnings at start are noise in a demo; errors still show.
        log_level: "error".to_owned(),
        ..Default::default()
    })
    .await
    .context("cannot start the Temporal dev server (--temporal-port / --ui-port taken?)")?;
    let ui_url = server.ui_url().unwrap_or_default();

    let config = WorkerConfig {
        webhook: WebhookArgs {
            url: Some(Secret::new(receiver_url.clone())),
            key: Some(Secret::new(DEV_KEY)),
            signing_secret: Some(Secret::new(DEV_SIGNING_SECRET)),
            timeout_ms: None,
        }
        .validate()?,
        store: args.store.validate()?,
        temporal: server.temporal_args(),
        task_queue: args.task_queue.clone(),
        max_concurrent_activities: DEFAULT_MAX_CONCURRENT_ACTIVITIES,
        metrics_addr: args.metrics_addr,
        retry_schedule: stephook_direct::RetrySchedule::default(),
        sticky_queue_timeout: None,
        outbox_grace: stephook_activities::DEFAULT_OUTBOX_GRACE,
        retention: stephook_direct::DEFAULT_RETENTION,
        agent: args.agent.validate()?,
    };
    // The API and console over the worker's store (loopback, no token).
    let api = stephook_api::bind(
        &stephook_api::ApiConfig::loopback(args.api_port)
            .with_current_endpoint(config.webhook.endpoint()),
        crate::open::store_from(&config.store).await?,
    )
    .await
    .context("cannot start the API (--api-port taken?)")?;
    let api_url = api.base_url();
    let api_task = tokio::spawn(api.serve(stopped(stop_rx.clone())));
    println!("stephook dev is up:");
    println!("  Temporal UI      {ui_url}");
    println!(
        "  Temporal server  {} (namespace default)",
        server.address()
    );
    println!("  receiver         {receiver_url}  (Bearer key and signature checked)");
    println!(
        "  worker           task queue {}, step store {}",
        args.task_queue, config.store.url
    );
    match &state {
        Some(path) => println!(
            "  Temporal state   {}  (kept across restarts; --ephemeral keeps it in memory)",
            path.display()
        ),
        None => println!("  Temporal state   in memory (--ephemeral): gone when this stops"),
    }
    println!("  API              {api_url}/v1/steps/  (Letta clients: base_url={api_url})");
    println!("  console          {api_url}/  (deliveries, redeliver)");
    if let Some(addr) = args.metrics_addr {
        println!("  metrics          http://{addr}/metrics");
    }
    if let Ok(path) = log_file() {
        println!(
            "  logs             {}  (here: the receiver, and stephook's warnings)",
            path.display()
        );
    }
    println!(
        "Try `TEMPORAL_ADDRESS={} stephook run --task-queue {} --steps 3` in another terminal \
         (`stephook cancel <workflow id>` cancels a run). Ctrl-C stops everything.\n",
        server.address(),
        args.task_queue
    );

    let demo = (args.demo_steps > 0).then(|| {
        let options = RunWorkflowOptions {
            steps: Some(args.demo_steps),
            task_queue: args.task_queue.clone(),
            temporal: server.temporal_args(),
            ui_url: ui_url.clone(),
            ..Default::default()
        };
        let stop_tx = stop_tx.clone();
        let exit_after = args.exit_after_demo;
        tokio::spawn(async move {
            let outcome = run_workflow(options).await;
            if let Err(error) = &outcome {
                eprintln!("demo run: {error:#}");
            }
            if exit_after {
                let _ = stop_tx.send(true);
            }
            outcome
        })
    });

    let shutdown = async move {
        tokio::select! {
            () = shutdown_signal() => {}
            () = stopped(stop_rx) => {}
        }
    };
    let worker_result = run_worker_until(config, shutdown).await;
    let _ = stop_tx.send(true);
    let _ = receiver.await;
    let _ = api_task.await;
    drop(server);
    worker_result?;
    if let Some(demo) = demo.filter(|_| args.exit_after_demo) {
        demo.await.context("the demo run panicked")??;
    }
    Ok(())
}

/// Where `stephook dev` keeps what it writes besides the store: `dev/` in stephook's per-user
/// directory (next to the default store), so a restart from any directory finds it.
pub fn dev_dir() -> anyhow::Result<PathBuf> {
    let dir = stephook_core::stephook_data_dir()
        .context("no per-user data directory (HOME is not set): use --temporal-db or --ephemeral")?
        .join(STATE_DIR);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create {} (--temporal-db)", dir.display()))?;
    Ok(dir)
}

/// Where `stephook dev` writes its full logs (the terminal shows the receiver and short
/// warnings).
pub fn log_file() -> anyhow::Result<PathBuf> {
    Ok(dev_dir()?.join(LOG_FILE))
}

/// The dev server's state, by default: `dev/temporal.db` in stephook's per-user directory.
fn default_state_file() -> anyhow::Result<PathBuf> {
    Ok(dev_dir()?.join(STATE_FILE))
}

/// The ports `dev` listens on, each with the flag that changes it.
fn check_ports(args: &DevArgs) -> anyhow::Result<()> {
    let mut ports = vec![
        (args.temporal_port, "--temporal-port", "the Temporal server"),
        (args.ui_port, "--ui-port", "the Temporal UI"),
        (
            args.receiver_port,
            "--receiver-port",
            "the webhook receiver",
        ),
        (args.api_port, "--api-port", "the HTTP API and console"),
    ];
    if let Some(addr) = args.metrics_addr {
        ports.push((addr.port(), "--metrics-addr", "the worker's metrics"));
    }
    for (i, (port, flag, what)) in ports.iter().enumerate() {
        if let Some((_, other, _)) = ports[..i].iter().find(|(p, ..)| p == port && *port != 0) {
            anyhow::bail!("{flag} and {other} are both {port}: give each its own port");
        }
        if *port == 0 {
            continue;
        }
        if let Err(error) = std::net::TcpListener::bind(("127.0.0.1", *port)) {
            anyhow::bail!(
                "port {port} ({what}) is taken on 127.0.0.1: {error}. Something else listens \
                 there (another `stephook dev` or Temporal server?); stop it, or choose another \
                 port with {flag}"
            );
        }
    }
    Ok(())
}

/// Completes when `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

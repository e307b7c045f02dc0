//! `stephook worker`: registers AgentWorkflow and the step activities on a task queue and runs
//! until SIGINT / SIGTERM, letting in-flight activities finish.

use super::connect::{TemporalArgs, connect};
use super::metrics::{self, SdkMetrics};
use anyhow::{Context as _, anyhow, bail};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use stephook_activities::{StepActivities, WebhookMetrics};
use stephook_core::{DEFAULT_TASK_QUEUE, StoreArgs, StoreConfig, WebhookArgs, WebhookConfig};
use stephook_direct::{Dispatcher, DispatcherConfig, RetrySchedule, RunningRetention};
use stephook_webhook::WebhookService;
use stephook_workflows::AgentWorkflow;
use temporalio_common::telemetry::TelemetryOptions;
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::{Runtime, Worker, WorkerOptions};

pub const DEFAULT_MAX_CONCURRENT_ACTIVITIES: usize = 100;
/// Workflow tasks and local activities keep the SDK's default slot count.
const DEFAULT_SLOTS: usize = 100;
/// After a shutdown request, activities still running this long are cancelled (their attempts
/// then retry on another worker). The webhook activity always ends within its 15 s.
pub const GRACEFUL_SHUTDOWN_PERIOD: Duration = Duration::from_secs(30);
/// At stop, an early notification in flight gets its HTTP timeout plus this to be sent and
/// recorded (the fast path gives each of its two store steps 3 s).
const EARLY_SEND_RECORDING: Duration = Duration::from_secs(6);

#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub webhook: WebhookArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub temporal: TemporalArgs,
    #[arg(long, env = "STEPHOOK_TASK_QUEUE", default_value = DEFAULT_TASK_QUEUE)]
    pub task_queue: String,
    /// Activity tasks this worker runs at the same time.
    #[arg(
        long,
        env = "STEPHOOK_MAX_CONCURRENT_ACTIVITIES",
        default_value_t = DEFAULT_MAX_CONCURRENT_ACTIVITIES
    )]
    pub max_concurrent_activities: usize,
    /// Serve Prometheus metrics (the SDK's and stephook's) at http://ADDR/metrics.
    #[arg(long, env = "STEPHOOK_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Outbox dispatcher (redeliveries, direct-mode rows): waits after each failed delivery (ms, s, m, h, d), then dead.
    #[arg(long, env = "STEPHOOK_RETRY_SCHEDULE", default_value = crate::cli::DEFAULT_RETRY_SCHEDULE)]
    pub retry_schedule: String,
    /// How long delivered notifications and their steps are kept (dead ones twice as long).
    #[arg(long, env = "STEPHOOK_RETENTION", default_value = crate::cli::DEFAULT_RETENTION)]
    pub retention: String,
    #[command(flatten)]
    pub agent: super::agent_config::AgentArgs,
    /// Threads that run the worker (1: a single-threaded runtime, which spends the least CPU
    /// per step; more for a worker that should use several cores; 1 to 64).
    #[arg(long, env = "STEPHOOK_WORKER_THREADS", default_value_t = DEFAULT_WORKER_THREADS,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub worker_threads: u16,
}

/// One thread: `stephook bench temporal` measured less CPU per step than with two, at the same
/// throughput (the dev server is the limit, not the worker).
pub const DEFAULT_WORKER_THREADS: u16 = 1;

/// A worker's settings, validated; nothing is connected yet.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub webhook: WebhookConfig,
    pub store: StoreConfig,
    pub temporal: TemporalArgs,
    pub task_queue: String,
    pub max_concurrent_activities: usize,
    pub metrics_addr: Option<SocketAddr>,
    pub retry_schedule: RetrySchedule,
    /// How long a workflow task waits on this worker's sticky queue before any worker may take
    /// it (SDK default 10 s). Tests that kill a worker shorten it.
    pub sticky_queue_timeout: Option<Duration>,
    /// How long after `create_step` a notification falls due for the dispatchers
    /// ([`stephook_activities::DEFAULT_OUTBOX_GRACE`]); tests shorten it.
    pub outbox_grace: Duration,
    /// See [`stephook_direct::DEFAULT_RETENTION`].
    pub retention: Duration,
    /// The model and the MCP servers (none: the offline echo, no tools).
    pub agent: super::agent_config::AgentConfig,
}

impl WorkerArgs {
    pub fn validate(&self) -> anyhow::Result<WorkerConfig> {
        if self.task_queue.trim().is_empty() {
            bail!("STEPHOOK_TASK_QUEUE: must not be empty (--task-queue)");
        }
        if self.max_concurrent_activities == 0 {
            bail!(
                "STEPHOOK_MAX_CONCURRENT_ACTIVITIES: must be at least 1 (--max-concurrent-activities)"
            );
        }
        Ok(WorkerConfig {
            webhook: self.webhook.validate()?,
            store: self.store.validate()?,
            temporal: self.temporal.clone(),
            task_queue: self.task_queue.trim().to_owned(),
            max_concurrent_activities: self.max_concurrent_activities,
            metrics_addr: self.metrics_addr,
            retry_schedule: crate::open::retry_schedule(&self.retry_schedule)?,
            sticky_queue_timeout: None,
            outbox_grace: stephook_activities::DEFAULT_OUTBOX_GRACE,
            retention: crate::open::retention(&self.retention)?,
            agent: self.agent.validate()?,
        })
    }
}

/// `stephook worker`: runs until SIGINT or SIGTERM.
pub async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let config = args.validate()?;
    run_worker_until(config, shutdown_signal()).await
}

/// Runs a worker until `shutdown` completes, then shuts it down gracefully (polling stops,
/// in-flight activities finish) and returns. Fails at start with a message naming the setting
/// when the store, Temporal or the namespace cannot be reached.
///
/// The future is not `Send` (the SDK's worker is not): run it on the main task or a
/// current-thread runtime.
pub async fn run_worker_until(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let webhook_metrics = Arc::new(WebhookMetrics::new());
    let sdk_metrics = config
        .metrics_addr
        .map(|_| SdkMetrics::start())
        .transpose()?;
    let metrics_server = match (config.metrics_addr, &sdk_metrics) {
        (Some(addr), Some(sdk)) => {
            Some(metrics::bind(addr, sdk, Arc::clone(&webhook_metrics)).await?)
        }
        _ => None,
    };
    let telemetry = TelemetryOptions::builder()
        .maybe_metrics(sdk_metrics.as_ref().map(|sdk| Arc::clone(&sdk.meter)))
        .build();
    let runtime_options = RuntimeOptions::builder()
        .telemetry_options(telemetry)
        .build()
        .map_err(|e| anyhow!(e))?;
    let runtime = Runtime::from_current_tokio(runtime_options)
        .map_err(|e| anyhow!("{e}"))
        .context("cannot start the Temporal SDK runtime")?;

    let store = crate::open::store_from(&config.store).await?;
    let webhook = WebhookService::new(config.webhook.clone())?;
    let client = connect(&config.temporal).await?;
    // The outbox dispatcher delivers every notification that falls due: those the webhook
    // activity gave up on (or never ran for), redeliveries and direct-mode rows. Only a worker
    // configured to send runs one.
    let dispatcher = Dispatcher::new(
        store.clone(),
        webhook.clone(),
        DispatcherConfig {
            schedule: config.retry_schedule.clone(),
            ..Default::default()
        },
    )
    .ok()
    .map(Dispatcher::spawn);
    let retention = RunningRetention::spawn(store.clone(), config.retention);

    let agent = config.agent.start().await?;
    let tools = Arc::clone(&agent.tools);
    let activities = StepActivities::with_outbox_grace(
        store.clone(),
        webhook,
        Arc::clone(&webhook_metrics),
        config.outbox_grace,
    )
    .with_model(agent.model)
    .with_tools(agent.tools, agent.tool_timeout);
    let early_sends = activities.early_sends_in_flight();
    let options = WorkerOptions::new(config.task_queue.clone())
        .register_workflow::<AgentWorkflow>()
        .map_err(|e| anyhow!("{e}"))?
        .register_activities(activities)
        .tuner(tuner(config.max_concurrent_activities))
        .graceful_shutdown_period(GRACEFUL_SHUTDOWN_PERIOD)
        .maybe_sticky_queue_schedule_to_start_timeout(config.sticky_queue_timeout)
        .build();
    let mut worker = Worker::new(&runtime, client, options)
        .map_err(|e| anyhow!("{e}"))
        .context("cannot create the Temporal worker")?;
    let stop = worker.shutdown_handle();

    if let Some(server) = metrics_server {
        tokio::spawn(server);
    }
    tracing::info!(
        task_queue = %config.task_queue,
        max_concurrent_activities = config.max_concurrent_activities,
        webhook_configured = config.webhook.url.is_some(),
        metrics_addr = ?config.metrics_addr,
        "stephook worker started"
    );

    let run = worker.run();
    tokio::pin!(run);
    let result = tokio::select! {
        result = &mut run => result,
        () = shutdown => {
            tracing::info!("shutting down: no new tasks, waiting for in-flight activities");
            stop();
            run.await
        }
    };
    // Before the store closes: a send it could not record would be sent again.
    early_sends
        .finish(config.webhook.timeout + EARLY_SEND_RECORDING)
        .await;
    retention.stop();
    if let Some(dispatcher) = dispatcher {
        dispatcher.stop().await;
    }
    tools.close().await;
    store.close().await;
    result.map_err(|e| anyhow!("{e}")).with_context(|| {
        format!(
            "the worker stopped with an error (is namespace {:?} reachable?)",
            config.temporal.namespace.as_deref().unwrap_or("default")
        )
    })?;
    tracing::info!("stephook worker stopped");
    Ok(())
}

/// Slots: the activity limit is ours, the other kinds keep the SDK's default.
fn tuner(max_concurrent_activities: usize) -> TunerHolder {
    TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(DEFAULT_SLOTS))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(max_concurrent_activities))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(DEFAULT_SLOTS))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(DEFAULT_SLOTS))
        .build()
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM (what container runtimes send).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

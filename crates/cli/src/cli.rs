//! Every command, flag and environment variable of `stephook`, in one place.

use clap::{Args, Parser, Subcommand};
use stephook_core::{DEFAULT_TASK_QUEUE, StoreArgs, WebhookArgs};

pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";
pub const DEFAULT_RECEIVE_PORT: u16 = 8787;
pub const DEFAULT_RETENTION: &str = "30d";
/// The most rows a `list` command prints.
pub const MAX_LIST_LIMIT: i64 = 1000;

#[derive(Debug, Parser)]
#[command(
    name = "stephook",
    version,
    about = "Runs AI-agent steps as durable Temporal workflows and notifies an HTTP endpoint \
             every time a step completes, fails or is cancelled"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: crate::logging::LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The Temporal worker: AgentWorkflow and the step activities on a task queue.
    Worker(crate::temporal::WorkerArgs),
    /// One command, a working local system: Temporal dev server + UI, worker, receiver, demo run.
    Dev(crate::temporal::DevArgs),
    /// Run an agent: through Temporal (default) or in this process (--direct).
    Run(RunArgs),
    /// Cancel a running agent run (its current step is stored cancelled and notified).
    Cancel(crate::temporal::CancelArgs),
    /// Inspect stored steps.
    #[command(subcommand)]
    Steps(StepsCommand),
    /// Inspect and re-send webhook deliveries.
    #[command(subcommand)]
    Deliveries(DeliveriesCommand),
    /// A local webhook receiver that prints each event and checks its Bearer key and signature.
    Receive(ReceiveArgs),
    /// Benchmarks: figures measured in one run and printed (not a test).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The HTTP API (steps in Letta's shape, deliveries, redelivery) and its console; also
    /// delivers due notifications when a webhook URL is configured.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run the agent loop in this process, without Temporal (direct mode).
    #[arg(long)]
    pub direct: bool,
    /// At most this many steps (default: 50 with a model, 3 on the offline echo; direct mode: 3).
    #[arg(long)]
    pub steps: Option<u32>,
    /// The model to ask (the worker's STEPHOOK_MODEL when not given).
    #[arg(long)]
    pub model: Option<String>,
    /// A system prompt for the model, before the messages.
    #[arg(long)]
    pub system: Option<String>,
    /// Offer only this tool (repeatable; every tool of the worker's MCP servers when not given).
    #[arg(long = "tool")]
    pub tools: Vec<String>,
    #[arg(long, default_value = "demo-agent")]
    pub agent_id: String,
    /// Defaults to a new random id.
    #[arg(long)]
    pub run_id: Option<String>,
    /// A message for the agent (repeatable). Markers for demos: fail-at:N, sleep-ms:N.
    #[arg(long = "message", default_value = "Hello from stephook")]
    pub messages: Vec<String>,
    /// Temporal mode: print the workflow id and the UI link, and return at once.
    #[arg(long)]
    pub no_wait: bool,
    /// Direct mode: waits after each failed delivery (ms, s, m, h, d), then the delivery is dead.
    #[arg(long, env = "STEPHOOK_RETRY_SCHEDULE", default_value = DEFAULT_RETRY_SCHEDULE)]
    pub retry_schedule: String,
    #[arg(long, env = "STEPHOOK_TASK_QUEUE", default_value = DEFAULT_TASK_QUEUE)]
    pub task_queue: String,
    /// Base URL of the Temporal UI, for the printed link to the run.
    #[arg(long = "temporal-ui", env = crate::temporal::start::UI_URL_VAR, default_value = crate::temporal::start::DEFAULT_UI_URL)]
    pub temporal_ui: String,
    #[command(flatten)]
    pub webhook: WebhookArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub temporal: crate::temporal::TemporalArgs,
}

#[derive(Debug, Subcommand)]
pub enum StepsCommand {
    /// The newest steps first.
    List {
        /// Only this run's steps: the run id, or the workflow id `stephook run` printed
        /// (agent-run-<run id>).
        #[arg(long)]
        run_id: Option<String>,
        /// How many to show (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=MAX_LIST_LIMIT))]
        limit: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// One step (in the API's shape, times in ISO 8601), its metrics and its delivery.
    Show {
        step_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// The most recently changed deliveries first.
    List {
        /// Only deliveries in this state.
        #[arg(long, value_enum)]
        state: Option<StateFilter>,
        /// How many to show (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=MAX_LIST_LIMIT))]
        limit: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// One delivery with its whole attempt history (where each attempt went, what came back).
    Show {
        step_id: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Queue notifications again (same webhook-id; attempts and retry schedule restarted,
    /// history kept) for the dispatchers of their endpoint; with --now, send exactly those from
    /// here and wait for them. A notification being sent right now, or already waiting to be
    /// sent now, is left as it is.
    Redeliver {
        /// Step ids whose notification to queue again.
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        step_ids: Vec<String>,
        /// Every dead notification.
        #[arg(long)]
        dead: bool,
        /// Send them now from this process (needs STEP_COMPLETE_WEBHOOK) and wait for the result.
        #[arg(long)]
        now: bool,
        /// Move them to this process's STEP_COMPLETE_WEBHOOK (each notification otherwise goes
        /// only to the endpoint it was committed for).
        #[arg(long)]
        to_current_endpoint: bool,
        #[command(flatten)]
        webhook: WebhookArgs,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The delivery states a list can be narrowed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StateFilter {
    /// Queued, not attempted by a dispatcher yet.
    Pending,
    /// A dispatcher's attempt failed; the next one is scheduled.
    Retrying,
    Delivered,
    /// Given up on: waits for `deliveries redeliver`.
    Dead,
}

impl From<StateFilter> for stephook_store::DeliveryState {
    fn from(filter: StateFilter) -> Self {
        match filter {
            StateFilter::Pending => Self::Pending,
            StateFilter::Retrying => Self::Retrying,
            StateFilter::Delivered => Self::Delivered,
            StateFilter::Dead => Self::Dead,
        }
    }
}

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    #[arg(long, default_value_t = DEFAULT_RECEIVE_PORT)]
    pub port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Answer 401 unless the request carries `Authorization: Bearer <key>`.
    #[arg(long, env = "STEP_COMPLETE_KEY", hide_env_values = true)]
    pub key: Option<stephook_core::Secret>,
    /// Answer 400 unless the Standard Webhooks signature verifies with this `whsec_` secret.
    #[arg(long, env = "STEP_COMPLETE_SIGNING_SECRET", hide_env_values = true)]
    pub secret: Option<stephook_core::Secret>,
    /// Answer every request with this status instead (to try failure handling).
    #[arg(long)]
    pub status: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// W workflows x S steps on a dev server the bench starts (in memory), once with webhooks to
    /// a loopback receiver and once without (the ceiling): steps/s, worker CPU per 1000 steps,
    /// worker peak RSS, webhooks received / lost / duplicated. Needs the `temporal` CLI.
    Temporal(BenchTemporalArgs),
}

#[derive(Debug, Args)]
pub struct BenchTemporalArgs {
    /// Workflows per run (W).
    #[arg(long, default_value_t = 200)]
    pub workflows: u32,
    /// Steps per workflow (S).
    #[arg(long, default_value_t = 3)]
    pub steps: u32,
    /// Workflows running at the same time, at most.
    #[arg(long, default_value_t = 50)]
    pub in_flight: usize,
    /// The worker's activity slots (`stephook worker --max-concurrent-activities`).
    #[arg(long, default_value_t = crate::temporal::worker::DEFAULT_MAX_CONCURRENT_ACTIVITIES)]
    pub max_concurrent_activities: usize,
    /// Upper bound for each of the two measured runs, in seconds.
    #[arg(long, default_value_t = 600)]
    pub run_timeout_secs: u64,
    /// The worker's gRPC compression towards Temporal (its --temporal-grpc-compression).
    #[arg(long, value_enum, default_value_t = crate::temporal::connect::Compression::None)]
    pub worker_grpc_compression: crate::temporal::connect::Compression,
    /// Also measure model steps: the worker calls a loopback OpenAI-compatible model that
    /// answers at once with one tool call, so each step is a model call and a tool call; printed
    /// next to the echo steps' figures.
    #[arg(long)]
    pub model_step: bool,
    /// Turn on the measured worker's `/metrics` and print where its workflow tasks' time went:
    /// waiting at the server (scheduled to started) and in the worker (started to completed).
    /// Off by default: the metrics cost the worker some CPU and about 2 MB, and the other figures
    /// stay comparable with runs without them.
    #[arg(long)]
    pub worker_metrics: bool,
    /// Run the worker on PostgreSQL: each measured run gets a fresh database on this server
    /// (created and dropped by the bench; the user must be allowed to create databases). Default:
    /// a fresh SQLite file per run.
    #[arg(long, value_name = "postgres://...")]
    pub database_url: Option<stephook_core::Secret>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub api: stephook_api::ApiArgs,
    /// Do not run the outbox dispatcher, even with a webhook URL configured.
    #[arg(long)]
    pub no_dispatch: bool,
    /// The dispatcher's waits after each failed delivery (ms, s, m, h, d), then the delivery is dead.
    #[arg(long, env = "STEPHOOK_RETRY_SCHEDULE", default_value = DEFAULT_RETRY_SCHEDULE)]
    pub retry_schedule: String,
    /// How long delivered notifications and their steps are kept (dead ones twice as long).
    #[arg(long, env = "STEPHOOK_RETENTION", default_value = DEFAULT_RETENTION)]
    pub retention: String,
    #[command(flatten)]
    pub webhook: WebhookArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

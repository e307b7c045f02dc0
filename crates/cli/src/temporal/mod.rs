//! Temporal mode: the worker, starting runs, and a local dev server.

pub mod agent_config;
pub mod cancel;
pub mod connect;
pub mod dev;
pub mod devserver;
pub mod metrics;
pub mod metrics_page;
pub mod server_requests;
pub mod start;
pub mod worker;

pub use cancel::{CancelArgs, cancel};
pub use connect::{TemporalArgs, connect};
pub use dev::{DevArgs, dev};
pub use devserver::{DevServer, DevServerOptions, TEMPORAL_CLI_VAR};
pub use server_requests::Requests;
pub use start::{
    AgentHandle, RunOutcome, RunWorkflowOptions, run_workflow, run_workflow_to,
    start_agent_workflow, ui_link,
};
pub use worker::{WorkerArgs, WorkerConfig, run_worker_until, shutdown_signal, worker};

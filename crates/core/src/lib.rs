//! The vocabulary every other stephook crate speaks: steps, their ids and statuses, and the
//! validated configuration read from the environment or the command line.

pub mod chat;
pub mod config;
pub mod endpoint;
pub mod excerpt;
pub mod message;
pub mod port;
pub mod secret;
pub mod step;

pub use config::{
    ConfigError, DEFAULT_STORE_FILE, DEFAULT_TASK_QUEUE, DEFAULT_WEBHOOK_TIMEOUT_MS, DatabaseKind,
    DatabaseUrl, MAX_WEBHOOK_TIMEOUT, SigningSecret, StoreArgs, StoreConfig, WebhookArgs,
    WebhookConfig, default_database_url, redacted_url, stephook_data_dir,
};
pub use endpoint::Endpoint;
pub use message::{Message, MessageError};
pub use port::free_loopback_port;
pub use secret::Secret;
pub use step::{
    InvalidStepId, InvalidStepStatus, Step, StepId, StepMetrics, StepStatus, Usage,
    WORKFLOW_ID_PREFIX, duration_millis, now_millis, now_unix_seconds, run_id_of,
};
pub mod step_body;

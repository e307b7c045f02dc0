use stephook_core::{StepId, StepStatus};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or reached. The URL is shown redacted.
    #[error("cannot open the step store at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot migrate the step store: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("step {0} not found")]
    StepNotFound(StepId),
    #[error("step {id} is already {current}; it cannot become {requested}")]
    Conflict {
        id: StepId,
        current: StepStatus,
        requested: StepStatus,
    },
    #[error("step {0} is still pending: it has no notification to send yet")]
    NotTerminal(StepId),
    /// A row that does not decode (written by something else, or a newer version).
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A scratch database (tests, benchmarks) that cannot be made as asked.
    #[error("cannot make a scratch database: {0}")]
    Scratch(String),
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            table,
            reason: reason.to_string(),
        }
    }
}

//! Direct mode: step notifications for agent loops that run without Temporal.
//!
//! [`StepManager`] commits each status change together with an outbox row and returns at once;
//! the [`Dispatcher`] delivers outbox rows in the background with bounded concurrency, retries
//! them on a [`RetrySchedule`], and after a crash or restart picks up every row still due.
//! [`FastPath`] is the outbox's other holder: one fenced attempt, what Temporal's webhook
//! activity makes.

mod dispatcher;
mod fast_path;
mod manager;
mod retention;
mod schedule;

pub use dispatcher::{
    DEFAULT_CONCURRENCY, DEFAULT_LEASE_MARGIN, Dispatcher, DispatcherConfig, DispatcherHandle,
    DispatcherStats, NotConfigured, RunningDispatcher,
};
pub use fast_path::{
    FAST_PATH_LEASE_MARGIN, FastPath, FastPathError, FastPathResult, NotSent, Recorded,
    TakenOnCommit,
};
pub use manager::{StepError, StepManager};
pub use retention::{DEFAULT_RETENTION, MAX_RETENTION, MIN_RETENTION, RunningRetention};
pub use schedule::{
    DEFAULT_JITTER, DEFAULT_RETRY_DELAYS, MAX_RETRY_DELAY, MIN_DELAY_ENV, MIN_RETRY_DELAY,
    RetrySchedule, ScheduleError, min_delay_from_env, parse_bounded,
};

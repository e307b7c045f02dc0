//! The step store: steps, their metrics and webhook deliveries, on SQLite (embedded default, one
//! file in WAL mode) or PostgreSQL (shared, multi-worker). One portable SQL dialect serves both
//! through sqlx's `Any` driver, so every query is written, and tested, once.

mod batch;
mod clock;
mod connect;
mod deliveries;
mod error;
mod retention;
pub mod scratch;
mod sql_args;
mod steps;
mod steps_query;
pub mod testing;

pub use deliveries::{
    ActivityAttempt, Attempt, AttemptPath, AttemptRecord, ClaimScope, ClaimedDelivery,
    DISPATCHER_HEARTBEAT, Delivery, DeliveryQuery, DeliveryState, DispatcherRegistration,
    FLEET_MEMORY, FastPathTake, Fence, InvalidDeliveryState, Notify, NotifyTo, Rebind,
    RequeueOutcome, ServedEndpoint, Source,
};
pub use error::StoreError;
pub use retention::Purged;
pub use sql_args::SortOrder;
pub use steps::{TerminalTransition, TerminalUpdate};
pub use steps_query::{StepCursor, StepQuery, StepWithMetrics};

use sqlx::{Any, AnyPool, Transaction};
use std::sync::Arc;
use stephook_core::DatabaseKind;
use tokio::sync::{Mutex, MutexGuard};

/// A handle on the store; cheap to clone (it is a pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    kind: DatabaseKind,
    writer: Arc<Mutex<()>>,
}

impl Store {
    /// SQLite admits one writer at a time and makes the others sleep and retry, which wrecks
    /// throughput; queueing this process's writers here instead keeps them from backing off.
    /// PostgreSQL locks rows, not the database, and needs no gate.
    pub(crate) async fn write_gate(&self) -> Option<MutexGuard<'_, ()>> {
        match self.kind {
            DatabaseKind::Sqlite => Some(self.writer.lock().await),
            DatabaseKind::Postgres => None,
        }
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`, waiting out `busy_timeout`): a transaction that read first and wrote later
    /// would fail with `BUSY_SNAPSHOT` whenever another process (a worker beside `stephook
    /// serve`) had written in between, and `busy_timeout` cannot help with that.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.kind {
            DatabaseKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            DatabaseKind::Postgres => self.pool.begin().await,
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

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
    RequeueOutcome, ServedEndpoint, Source, TakeOnCommit,
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
    /// Reads, and on PostgreSQL writes too.
    pool: AnyPool,
    /// Where writes go, behind [`Store::write_gate`]: on SQLite a pool of one connection.
    writes: AnyPool,
    kind: DatabaseKind,
    writer: Arc<Mutex<()>>,
}

/// The right to write, and where to. On SQLite this process writes one at a time (SQLite admits
/// one writer and makes the others sleep and retry, which wrecks throughput), always on the same
/// connection: a connection forgets its page cache whenever another one has written since its
/// last transaction, and read every page again from the file (with writes spread over the pool,
/// that was nearly every write). PostgreSQL locks rows, not the database: any connection of the
/// pool, no turn to wait for.
pub(crate) struct WriteGate<'a> {
    _turn: Option<MutexGuard<'a, ()>>,
    pool: &'a AnyPool,
    kind: DatabaseKind,
}

impl WriteGate<'_> {
    pub(crate) fn pool(&self) -> &AnyPool {
        self.pool
    }

    /// Begins a transaction that writes. On SQLite it takes the write lock up front (`BEGIN
    /// IMMEDIATE`, waiting out `busy_timeout`): a transaction that read first and wrote later
    /// would fail with `BUSY_SNAPSHOT` whenever another process (a worker beside `stephook
    /// serve`) had written in between, and `busy_timeout` cannot help with that.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.kind {
            DatabaseKind::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            DatabaseKind::Postgres => self.pool.begin().await,
        }
    }
}

impl Store {
    /// Waits for this process's turn to write (SQLite) and says where to.
    pub(crate) async fn write_gate(&self) -> WriteGate<'_> {
        let turn = match self.kind {
            DatabaseKind::Sqlite => Some(self.writer.lock().await),
            DatabaseKind::Postgres => None,
        };
        WriteGate {
            _turn: turn,
            pool: &self.writes,
            kind: self.kind,
        }
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.writes.close().await;
        self.pool.close().await;
    }
}

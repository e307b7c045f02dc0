//! The step store: steps, their metrics and webhook deliveries, on SQLite (embedded default, one
//! file in WAL mode) or PostgreSQL (shared, multi-worker). One portable SQL dialect serves both
//! through sqlx's `Any` driver, so every query is written, and tested, once.

mod connect;
mod deliveries;
mod error;
mod steps;
pub mod testing;

pub use deliveries::{
    AttemptRecord, ClaimedDelivery, Delivery, DeliveryState, InvalidDeliveryState, Source,
};
pub use error::StoreError;
pub use steps::{TerminalTransition, TerminalUpdate};

use sqlx::AnyPool;
use stephook_core::DatabaseKind;

/// A handle on the store; cheap to clone (it is a pool).
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    kind: DatabaseKind,
}

impl Store {
    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

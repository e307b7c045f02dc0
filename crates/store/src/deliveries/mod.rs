//! Webhook deliveries: one row per step notification, in both modes. Direct mode writes it with
//! the step's terminal status, Temporal mode with the step (`create_step`); Temporal's webhook
//! activity is the fast path that marks it delivered, and any dispatcher sends what falls due.
//!
//! - `claims.rs`: fenced claims (claim token + lease on the database clock);
//! - `attempts.rs`: recording attempts (fenced for dispatchers) and their history;
//! - `requeue.rs`: operator redelivery (re-queue, schedule restarted, history kept).

mod attempts;
mod claims;
mod query;
mod requeue;

pub use attempts::{ActivityAttempt, Attempt, AttemptPath, AttemptRecord};
pub use claims::{ClaimScope, ClaimedDelivery};
pub use query::DeliveryQuery;

use crate::{Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::fmt;
use std::str::FromStr;
use stephook_core::{StepId, StepStatus, now_millis};

pub(crate) const DELIVERY_COLUMNS: &str = "step_id, step_status, state, source, attempts, scheduled_attempts, \
    next_attempt_at, last_http_status, last_error, last_duration_ms, delivered_at, created_at, \
    updated_at";

/// The states a delivery waits for an attempt in (the claimable ones).
const WAITING_STATES: &str = "('pending', 'retrying')";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Queued, not attempted by a dispatcher yet; due at `next_attempt_at`.
    Pending,
    /// A dispatcher's attempt failed; the next one is due at `next_attempt_at`.
    Retrying,
    Delivered,
    /// Given up (the retry schedule ran out, or a permanent answer); waits for a redelivery.
    Dead,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid delivery state {0:?}: expected pending, retrying, delivered or dead")]
pub struct InvalidDeliveryState(pub String);

impl DeliveryState {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Retrying, Self::Delivered, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

impl fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryState {
    type Err = InvalidDeliveryState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // `failed` was this state's name before 0.2; scripts that still say it keep working.
        if s == "failed" {
            return Ok(Self::Retrying);
        }
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| InvalidDeliveryState(s.to_owned()))
    }
}

/// Which mode produced the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Direct,
    Temporal,
    /// Queued by an operator for a step that had no row (`deliveries redeliver`).
    Operator,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Temporal => "temporal",
            Self::Operator => "operator",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub step_id: StepId,
    pub step_status: StepStatus,
    pub state: DeliveryState,
    pub source: String,
    /// Attempts since the row was (re)queued, by either path.
    pub attempts: i64,
    /// The dispatcher's attempts since the row was (re)queued: where it is in the retry schedule.
    pub scheduled_attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_http_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Writes a step's notification row in the caller's transaction, due `due_after_ms` from now on
/// the database clock. `replace` (direct mode's terminal transition, which happens once) resets
/// an existing row; otherwise an existing row is left as it is, so a retried `create_step` never
/// re-queues a notification that was already delivered.
pub(crate) async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    kind: stephook_core::DatabaseKind,
    id: &StepId,
    status: StepStatus,
    source: Source,
    due_after_ms: i64,
    replace: bool,
) -> Result<(), StoreError> {
    let db_now = crate::clock::now_sql(kind);
    let on_conflict = if replace {
        "DO UPDATE SET step_status = excluded.step_status, state = 'pending', \
           next_attempt_at = excluded.next_attempt_at, attempts = 0, scheduled_attempts = 0, \
           claim_token = NULL, updated_at = excluded.updated_at"
    } else {
        "DO NOTHING"
    };
    sqlx::query(&format!(
        "INSERT INTO webhook_deliveries \
           (step_id, step_status, state, source, attempts, scheduled_attempts, next_attempt_at, \
            created_at, updated_at) \
         VALUES ($1, $2, 'pending', $3, 0, 0, {db_now} + $4, $5, $5) \
         ON CONFLICT (step_id) {on_conflict}"
    ))
    .bind(id.as_str())
    .bind(status.as_str())
    .bind(source.as_str())
    .bind(due_after_ms)
    .bind(now_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    pub async fn delivery(&self, id: &StepId) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE step_id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(delivery_from_row).transpose()
    }

    /// The most recently changed deliveries first, optionally only those in one state.
    pub async fn list_deliveries(
        &self,
        state: Option<DeliveryState>,
        limit: i64,
    ) -> Result<Vec<Delivery>, StoreError> {
        let filter = if state.is_some() {
            "WHERE state = $2"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries {filter} \
             ORDER BY updated_at DESC, step_id LIMIT $1"
        );
        let mut query = sqlx::query(&sql).bind(limit);
        if let Some(state) = state {
            query = query.bind(state.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// How many deliveries are in each state.
    pub async fn count_deliveries(&self) -> Result<Vec<(DeliveryState, i64)>, StoreError> {
        let rows =
            sqlx::query("SELECT state, COUNT(*) AS n FROM webhook_deliveries GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok((
                    state
                        .parse()
                        .map_err(|e| StoreError::corrupt("webhook_deliveries", e))?,
                    row.try_get("n")?,
                ))
            })
            .collect()
    }

    /// How long until the earliest waiting delivery is due (leased ones included), on the
    /// database clock; zero when one is due already.
    pub async fn next_due_in_ms(&self) -> Result<Option<i64>, StoreError> {
        let db_now = crate::clock::now_sql(self.kind);
        let due: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT MIN(next_attempt_at) - {db_now} FROM webhook_deliveries \
             WHERE state IN {WAITING_STATES}"
        ))
        .fetch_one(&self.pool)
        .await?;
        Ok(due.map(|ms| ms.max(0)))
    }
}

pub(crate) fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StoreError> {
    let corrupt = |e: &dyn fmt::Display| StoreError::corrupt("webhook_deliveries", e);
    let id: String = row.try_get("step_id")?;
    let status: String = row.try_get("step_status")?;
    let state: String = row.try_get("state")?;
    Ok(Delivery {
        step_id: StepId::parse(&id).map_err(|e| corrupt(&e))?,
        step_status: status.parse().map_err(|e| corrupt(&e))?,
        state: state.parse().map_err(|e| corrupt(&e))?,
        source: row.try_get("source")?,
        attempts: row.try_get("attempts")?,
        scheduled_attempts: row.try_get("scheduled_attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_http_status: row.try_get("last_http_status")?,
        last_error: row.try_get("last_error")?,
        last_duration_ms: row.try_get("last_duration_ms")?,
        delivered_at: row.try_get("delivered_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) fn step_id_from_row(row: &AnyRow) -> Result<StepId, StoreError> {
    let id: String = row.try_get("step_id")?;
    StepId::parse(&id).map_err(|e| StoreError::corrupt("webhook_deliveries", e))
}

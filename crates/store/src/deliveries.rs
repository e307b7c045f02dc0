//! Webhook deliveries: one row per step notification. Direct mode's outbox (written in the
//! step's own transaction), Temporal mode's record of undelivered notifications, and the
//! bookkeeping of every attempt for both.

use crate::{Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::fmt;
use std::str::FromStr;
use stephook_core::{StepId, StepStatus, now_millis};

const DELIVERY_COLUMNS: &str = "step_id, step_status, state, source, attempts, next_attempt_at, \
    last_http_status, last_error, last_duration_ms, delivered_at, created_at, updated_at";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Queued, not attempted yet; due at `next_attempt_at`.
    Pending,
    /// Attempted and failed; the next attempt is due at `next_attempt_at`.
    Failed,
    Delivered,
    /// Given up (schedule exhausted, permanent answer, or Temporal's retries ran out);
    /// waits for `stephook deliveries redeliver`.
    Dead,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid delivery state {0:?}: expected pending, failed, delivered or dead")]
pub struct InvalidDeliveryState(pub String);

impl DeliveryState {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Failed, Self::Delivered, Self::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Failed => "failed",
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
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| InvalidDeliveryState(s.to_owned()))
    }
}

/// Which path produced the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Direct,
    Temporal,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Temporal => "temporal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub step_id: StepId,
    pub step_status: StepStatus,
    pub state: DeliveryState,
    pub source: String,
    pub attempts: i64,
    pub next_attempt_at: Option<i64>,
    pub last_http_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub delivered_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A due delivery taken by one dispatcher for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub step_id: StepId,
    /// Attempts made before this one.
    pub attempts: i64,
}

/// What one attempt ended with, to be written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub step_id: StepId,
    /// Delivered, Failed (then `next_attempt_at` is set) or Dead.
    pub state: DeliveryState,
    pub next_attempt_at: Option<i64>,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

pub(crate) async fn enqueue(
    tx: &mut Transaction<'_, Any>,
    id: &StepId,
    status: StepStatus,
    due_at: i64,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_deliveries \
           (step_id, step_status, state, source, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, 'pending', 'direct', 0, $3, $4, $4) \
         ON CONFLICT (step_id) DO UPDATE SET step_status = excluded.step_status, \
           state = 'pending', next_attempt_at = excluded.next_attempt_at, \
           updated_at = excluded.updated_at",
    )
    .bind(id.as_str())
    .bind(status.as_str())
    .bind(due_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Takes up to `limit` deliveries due at `now`, leasing them until `lease_until` so no other
    /// dispatcher takes them meanwhile; a dispatcher that dies holding a lease loses it when it
    /// expires and the row is due again, so nothing committed is lost.
    pub async fn claim_due(
        &self,
        now: i64,
        limit: i64,
        lease_until: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let _gate = self.write_gate().await;
        // The outer WHERE repeats the due condition: on PostgreSQL a concurrent claimer that
        // waited on the row lock re-checks it against the new row and skips what was taken.
        let rows = sqlx::query(
            "UPDATE webhook_deliveries SET next_attempt_at = $1, updated_at = $2 \
             WHERE step_id IN ( \
                 SELECT step_id FROM webhook_deliveries \
                 WHERE state IN ('pending', 'failed') AND next_attempt_at <= $2 \
                 ORDER BY next_attempt_at LIMIT $3) \
               AND state IN ('pending', 'failed') AND next_attempt_at <= $2 \
             RETURNING step_id, attempts",
        )
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("step_id")?;
                Ok(ClaimedDelivery {
                    step_id: StepId::parse(&id)
                        .map_err(|e| StoreError::corrupt("webhook_deliveries", e))?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Makes leased rows due again at `now` (a dispatcher that stops hands back what it claimed
    /// but did not attempt).
    pub async fn release_claims(&self, ids: &[StepId], now: i64) -> Result<(), StoreError> {
        let _gate = self.write_gate().await;
        let mut tx = self.pool.begin().await?;
        for id in ids {
            sqlx::query(
                "UPDATE webhook_deliveries SET next_attempt_at = $1, updated_at = $1 \
                 WHERE step_id = $2 AND state IN ('pending', 'failed')",
            )
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Writes back the outcome of attempts, in one transaction (one fsync for a whole batch).
    pub async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let now = now_millis();
        let _gate = self.write_gate().await;
        let mut tx = self.pool.begin().await?;
        for record in records {
            let delivered_at = (record.state == DeliveryState::Delivered).then_some(now);
            sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, state = $1, \
                   next_attempt_at = $2, last_http_status = $3, last_error = $4, \
                   last_duration_ms = $5, delivered_at = COALESCE($6, delivered_at), \
                   updated_at = $7 \
                 WHERE step_id = $8",
            )
            .bind(record.state.as_str())
            .bind(record.next_attempt_at)
            .bind(record.http_status.map(i64::from))
            .bind(record.error.clone())
            .bind(record.duration_ms)
            .bind(delivered_at)
            .bind(now)
            .bind(record.step_id.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records a notification that Temporal mode could not deliver (its retries ran out or the
    /// answer was permanent), as `dead`, so `deliveries redeliver` can send it later.
    pub async fn record_undelivered(
        &self,
        id: &StepId,
        status: StepStatus,
        attempts: i64,
        http_status: Option<u16>,
        error: &str,
    ) -> Result<(), StoreError> {
        let now = now_millis();
        let _gate = self.write_gate().await;
        sqlx::query(
            "INSERT INTO webhook_deliveries \
               (step_id, step_status, state, source, attempts, last_http_status, last_error, \
                created_at, updated_at) \
             VALUES ($1, $2, 'dead', 'temporal', $3, $4, $5, $6, $6) \
             ON CONFLICT (step_id) DO UPDATE SET step_status = excluded.step_status, \
               state = 'dead', next_attempt_at = NULL, attempts = excluded.attempts, \
               last_http_status = excluded.last_http_status, last_error = excluded.last_error, \
               updated_at = excluded.updated_at",
        )
        .bind(id.as_str())
        .bind(status.as_str())
        .bind(attempts)
        .bind(http_status.map(i64::from))
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| foreign_key_to_not_found(e, id))?;
        Ok(())
    }

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
        let rows = match state {
            Some(state) => {
                sqlx::query(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE state = $1 \
                     ORDER BY updated_at DESC, step_id LIMIT $2"
                ))
                .bind(state.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries \
                     ORDER BY updated_at DESC, step_id LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
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

    /// Queues the notification of a terminal step again, due now. Works for a step with no
    /// delivery row yet (a Temporal step notified in-workflow), so any terminal step can be
    /// re-sent; receivers dedupe on the unchanged `webhook-id`.
    pub async fn redeliver(&self, id: &StepId) -> Result<(), StoreError> {
        let step = self
            .step(id)
            .await?
            .ok_or_else(|| StoreError::StepNotFound(id.clone()))?;
        if !step.status.is_terminal() {
            return Err(StoreError::DeliveryNotFound(id.clone()));
        }
        let now = now_millis();
        let _gate = self.write_gate().await;
        let mut tx = self.pool.begin().await?;
        enqueue(&mut tx, id, step.status, now, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues every dead delivery again, due now; returns how many.
    pub async fn redeliver_dead(&self) -> Result<u64, StoreError> {
        let now = now_millis();
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, updated_at = $1 \
             WHERE state = 'dead'",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// When the earliest waiting delivery is due (leased ones included), if any.
    pub async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM webhook_deliveries WHERE state IN ('pending', 'failed')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(due)
    }
}

fn foreign_key_to_not_found(error: sqlx::Error, id: &StepId) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::StepNotFound(id.clone())
        }
        _ => StoreError::Database(error),
    }
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, StoreError> {
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
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_http_status: row.try_get("last_http_status")?,
        last_error: row.try_get("last_error")?,
        last_duration_ms: row.try_get("last_duration_ms")?,
        delivered_at: row.try_get("delivered_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

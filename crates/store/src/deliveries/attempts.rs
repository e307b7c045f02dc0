//! Recording attempts. A dispatcher's attempt is fenced by its claim token; Temporal's webhook
//! activity (the fast path) records on the row without a claim, and only a 2xx changes the row's
//! state. Every recorded attempt is also kept in `webhook_attempts`, the history that survives
//! redeliveries.

use super::{DeliveryState, WAITING_STATES};
use crate::clock::now_sql;
use crate::{Store, StoreError};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::fmt;
use std::str::FromStr;
use stephook_core::{StepId, now_millis};

/// Which path made an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptPath {
    /// Temporal's `send_step_complete_webhook` activity.
    Activity,
    /// An outbox dispatcher (any worker, `stephook serve`, `run --direct`, `redeliver --now`).
    Dispatcher,
}

impl AttemptPath {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Activity => "activity",
            Self::Dispatcher => "dispatcher",
        }
    }
}

impl FromStr for AttemptPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "activity" => Ok(Self::Activity),
            "dispatcher" => Ok(Self::Dispatcher),
            other => Err(format!("unknown attempt path {other:?}")),
        }
    }
}

/// What a dispatcher's attempt ended with, to be written back under its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub step_id: StepId,
    /// The claim token the row was taken under.
    pub token: String,
    /// Delivered, Retrying (then `retry_after_ms` is set) or Dead.
    pub state: DeliveryState,
    /// When Retrying: the wait before the next attempt, counted on the database clock.
    pub retry_after_ms: Option<i64>,
    /// The outcome label (delivered, timeout, http_status, transport, not_configured).
    pub outcome: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// What one attempt of Temporal's webhook activity ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityAttempt {
    pub step_id: StepId,
    pub delivered: bool,
    pub outcome: String,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

/// One attempt in a delivery's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub step_id: StepId,
    pub path: AttemptPath,
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub outcome: String,
    pub http_status: Option<i64>,
    pub error: Option<String>,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path.as_str(), self.outcome)?;
        if let Some(status) = self.http_status {
            write!(f, " {status}")?;
        }
        if let Some(error) = &self.error {
            write!(f, ": {error}")?;
        }
        Ok(())
    }
}

impl Store {
    /// Writes back dispatcher attempts in one transaction (one fsync for a whole batch). A
    /// record whose claim token is no longer the row's (its lease ran out and another dispatcher
    /// took the row, or the fast path delivered it) changes nothing; returns how many such
    /// stale records were refused.
    pub async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<usize, StoreError> {
        if records.is_empty() {
            return Ok(0);
        }
        let now = now_millis();
        let db_now = now_sql(self.kind);
        let sql = format!(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, \
               scheduled_attempts = scheduled_attempts + 1, state = $1, \
               next_attempt_at = {db_now} + $2, last_http_status = $3, last_error = $4, \
               last_duration_ms = $5, delivered_at = $6, claim_token = NULL, updated_at = $7 \
             WHERE step_id = $8 AND claim_token = $9 AND state IN {WAITING_STATES}"
        );
        let _gate = self.write_gate().await;
        let mut tx = self.pool.begin().await?;
        let mut stale = 0;
        for record in records {
            let delivered_at = (record.state == DeliveryState::Delivered).then_some(now);
            let applied = sqlx::query(&sql)
                .bind(record.state.as_str())
                .bind(record.retry_after_ms)
                .bind(record.http_status.map(i64::from))
                .bind(record.error.clone())
                .bind(record.duration_ms)
                .bind(delivered_at)
                .bind(now)
                .bind(record.step_id.as_str())
                .bind(record.token.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if applied == 0 {
                stale += 1;
                continue;
            }
            insert_attempt(
                &mut tx,
                &record.step_id,
                AttemptPath::Dispatcher,
                now,
                record.duration_ms,
                &record.outcome,
                record.http_status,
                record.error.as_deref(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(stale)
    }

    /// Records an attempt of Temporal's webhook activity on the step's row: a 2xx marks it
    /// delivered (and voids any dispatcher's claim, so a late result cannot overwrite it); any
    /// other outcome is noted without moving the row's due time, so the dispatcher takes over
    /// when the grace period ends. Returns false when there is no waiting row (a step stephook
    /// never stored, or one already delivered).
    pub async fn record_activity_attempt(
        &self,
        attempt: &ActivityAttempt,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let sql = if attempt.delivered {
            format!(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, state = 'delivered', \
                   next_attempt_at = NULL, delivered_at = $1, claim_token = NULL, \
                   last_http_status = $2, last_error = $3, last_duration_ms = $4, updated_at = $1 \
                 WHERE step_id = $5 AND state IN {WAITING_STATES}"
            )
        } else {
            format!(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, updated_at = $1, \
                   last_http_status = $2, last_error = $3, last_duration_ms = $4 \
                 WHERE step_id = $5 AND state IN {WAITING_STATES}"
            )
        };
        let _gate = self.write_gate().await;
        let mut tx = self.pool.begin().await?;
        let applied = sqlx::query(&sql)
            .bind(now)
            .bind(attempt.http_status.map(i64::from))
            .bind(attempt.error.clone())
            .bind(attempt.duration_ms)
            .bind(attempt.step_id.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if applied == 1 {
            insert_attempt(
                &mut tx,
                &attempt.step_id,
                AttemptPath::Activity,
                now,
                attempt.duration_ms,
                &attempt.outcome,
                attempt.http_status,
                attempt.error.as_deref(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(applied == 1)
    }

    /// A delivery's attempt history, oldest first (across redeliveries).
    pub async fn attempts(&self, id: &StepId, limit: i64) -> Result<Vec<Attempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT step_id, path, attempted_at, duration_ms, outcome, http_status, error \
             FROM webhook_attempts WHERE step_id = $1 ORDER BY attempted_at, id LIMIT $2",
        )
        .bind(id.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_attempt(
    tx: &mut Transaction<'_, Any>,
    id: &StepId,
    path: AttemptPath,
    at: i64,
    duration_ms: i64,
    outcome: &str,
    http_status: Option<u16>,
    error: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_attempts \
           (id, step_id, path, attempted_at, duration_ms, outcome, http_status, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(id.as_str())
    .bind(path.as_str())
    .bind(at)
    .bind(duration_ms)
    .bind(outcome)
    .bind(http_status.map(i64::from))
    .bind(error)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn attempt_from_row(row: &AnyRow) -> Result<Attempt, StoreError> {
    let corrupt = |e: &dyn fmt::Display| StoreError::corrupt("webhook_attempts", e);
    let id: String = row.try_get("step_id")?;
    let path: String = row.try_get("path")?;
    Ok(Attempt {
        step_id: StepId::parse(&id).map_err(|e| corrupt(&e))?,
        path: path.parse().map_err(|e: String| corrupt(&e))?,
        attempted_at: row.try_get("attempted_at")?,
        duration_ms: row.try_get("duration_ms")?,
        outcome: row.try_get("outcome")?,
        http_status: row.try_get("http_status")?,
        error: row.try_get("error")?,
    })
}

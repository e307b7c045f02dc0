//! Recording attempts. Every holder (a dispatcher, or Temporal's webhook activity) records under
//! the claim token it took the row with: a result whose token is no longer the row's changes
//! nothing on the row. Every send is kept in `webhook_attempts` all the same, with where it went
//! and whether its holder still held the row ([`Fence`]): the history that survives redeliveries
//! and shows every request a receiver got.

use super::{DeliveryState, WAITING_STATES};
use crate::batch::{Batch, Statement};
use crate::clock::now_sql;
use crate::{Store, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::fmt;
use std::str::FromStr;
use stephook_core::{DatabaseKind, StepId, now_millis};

/// Which path made an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptPath {
    /// Temporal's `send_step_complete_webhook` activity (its first attempt is made as soon as
    /// `create_step` has stored the step, on the worker that stored it).
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

/// Whether a holder still held the row when its result came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fence {
    /// The result was recorded on the row.
    Held,
    /// The holder had lost the row (its lease ran out and another holder took it, or an
    /// operator re-queued it): the send happened, the row was left as the new holder has it.
    LeaseLost,
}

impl Fence {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::LeaseLost => "lease_lost",
        }
    }
}

impl FromStr for Fence {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "held" => Ok(Self::Held),
            "lease_lost" => Ok(Self::LeaseLost),
            other => Err(format!("unknown fence {other:?}")),
        }
    }
}

/// What a dispatcher's attempt ended with, to be written back under its claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub step_id: StepId,
    /// The claim token the row was taken under.
    pub token: String,
    /// When the send started (Unix ms, this process's clock).
    pub started_at: i64,
    /// Where it went, redacted.
    pub url: String,
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

/// What one attempt of Temporal's webhook activity ended with, sent under the claim it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityAttempt {
    pub step_id: StepId,
    /// The claim token the fast path took the row with.
    pub token: String,
    pub started_at: i64,
    /// Where it went, redacted.
    pub url: String,
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
    /// When the send started.
    pub attempted_at: i64,
    pub duration_ms: i64,
    pub outcome: String,
    pub http_status: Option<i64>,
    pub error: Option<String>,
    /// Where it went, redacted (`None` for attempts recorded before 0.3).
    pub url: Option<String>,
    /// The claim token it was sent under.
    pub holder: Option<String>,
    pub fence: Fence,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path.as_str(), self.outcome)?;
        if let Some(status) = self.http_status {
            write!(f, " {status}")?;
        }
        if let Some(url) = &self.url {
            write!(f, " to {url}")?;
        }
        if let Some(error) = &self.error {
            write!(f, ": {error}")?;
        }
        if self.fence == Fence::LeaseLost {
            f.write_str(" (lease lost: not recorded on the row)")?;
        }
        Ok(())
    }
}

/// One row of `webhook_attempts`, but for its fence.
struct AttemptRow<'a> {
    step_id: &'a StepId,
    path: AttemptPath,
    started_at: i64,
    duration_ms: i64,
    outcome: &'a str,
    http_status: Option<u16>,
    error: Option<&'a str>,
    url: &'a str,
    holder: &'a str,
}

impl Store {
    /// Writes back dispatcher attempts in one transaction (one fsync for a whole batch). A
    /// record whose claim token is no longer the row's (its lease ran out and another holder
    /// took the row, or an operator re-queued it) changes nothing on the row, but its send is
    /// kept in the history as [`Fence::LeaseLost`]. Returns each record's fence, in order.
    pub async fn record_attempts(
        &self,
        records: &[AttemptRecord],
    ) -> Result<Vec<Fence>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_millis();
        let db_now = now_sql(self.kind);
        let update = format!(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, \
               scheduled_attempts = scheduled_attempts + 1, state = $1, \
               next_attempt_at = {db_now} + $2, last_http_status = $3, last_error = $4, \
               last_duration_ms = $5, delivered_at = $6, claim_token = NULL, lease_until = NULL, \
               updated_at = $7 \
             WHERE step_id = $8 AND claim_token = $9 AND state IN {WAITING_STATES}"
        );
        let mut batch = Batch::new(self.kind);
        for record in records {
            let delivered_at = (record.state == DeliveryState::Delivered).then_some(now);
            push_fenced(
                &mut batch,
                &update,
                |statement| {
                    statement
                        .bind(record.state.as_str())
                        .bind(record.retry_after_ms)
                        .bind(record.http_status.map(i64::from))
                        .bind(record.error.as_deref())
                        .bind(record.duration_ms)
                        .bind(delivered_at)
                        .bind(now)
                        .bind(record.step_id.as_str())
                        .bind(record.token.as_str());
                },
                &AttemptRow {
                    step_id: &record.step_id,
                    path: AttemptPath::Dispatcher,
                    started_at: record.started_at,
                    duration_ms: record.duration_ms,
                    outcome: &record.outcome,
                    http_status: record.http_status,
                    error: record.error.as_deref(),
                    url: &record.url,
                    holder: &record.token,
                },
            );
        }
        fences(&batch.commit(self).await?)
    }

    /// Records an attempt of Temporal's webhook activity, made under the claim it took (see
    /// `fast_path.rs`): a 2xx marks the row delivered; any other outcome is noted and the claim
    /// released without moving the row's due time, so the dispatchers take over when the grace
    /// period ends. Kept in the history either way; the fence says whether the row changed.
    pub async fn record_activity_attempt(
        &self,
        attempt: &ActivityAttempt,
    ) -> Result<Fence, StoreError> {
        let now = now_millis();
        let update = if attempt.delivered {
            format!(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, state = 'delivered', \
                   next_attempt_at = NULL, delivered_at = $1, claim_token = NULL, \
                   lease_until = NULL, last_http_status = $2, last_error = $3, \
                   last_duration_ms = $4, updated_at = $1 \
                 WHERE step_id = $5 AND claim_token = $6 AND state IN {WAITING_STATES}"
            )
        } else {
            format!(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, updated_at = $1, \
                   last_http_status = $2, last_error = $3, last_duration_ms = $4, \
                   claim_token = NULL, lease_until = NULL \
                 WHERE step_id = $5 AND claim_token = $6 AND state IN {WAITING_STATES}"
            )
        };
        let mut batch = Batch::new(self.kind);
        push_fenced(
            &mut batch,
            &update,
            |statement| {
                statement
                    .bind(now)
                    .bind(attempt.http_status.map(i64::from))
                    .bind(attempt.error.as_deref())
                    .bind(attempt.duration_ms)
                    .bind(attempt.step_id.as_str())
                    .bind(attempt.token.as_str());
            },
            &AttemptRow {
                step_id: &attempt.step_id,
                path: AttemptPath::Activity,
                started_at: attempt.started_at,
                duration_ms: attempt.duration_ms,
                outcome: &attempt.outcome,
                http_status: attempt.http_status,
                error: attempt.error.as_deref(),
                url: &attempt.url,
                holder: &attempt.token,
            },
        );
        let fences = fences(&batch.commit(self).await?)?;
        fences
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::corrupt("webhook_attempts", "the attempt was not written"))
    }

    /// A delivery's attempt history, oldest first (across redeliveries).
    pub async fn attempts(&self, id: &StepId, limit: i64) -> Result<Vec<Attempt>, StoreError> {
        let rows = sqlx::query(
            "SELECT step_id, path, attempted_at, duration_ms, outcome, http_status, error, url, \
               holder, fence \
             FROM webhook_attempts WHERE step_id = $1 ORDER BY attempted_at, id LIMIT $2",
        )
        .bind(id.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from_row).collect()
    }
}

/// A holder's result on its row (`update`, bound by `bind_update`, which changes the row only
/// under the holder's claim) and the attempt kept in the history, whose fence is whether that
/// update changed the row. The attempt returns its fence. SQLite reads it with `changes()` after
/// the update, in the same transaction; PostgreSQL, which has no `changes()`, runs both as one
/// statement, the update in a `WITH` that the insert looks into.
fn push_fenced<'q>(
    batch: &mut Batch<'q>,
    update: &str,
    bind_update: impl FnOnce(&mut Statement<'q>),
    row: &AttemptRow<'q>,
) {
    let insert = |applied: &str| {
        format!(
            "INSERT INTO webhook_attempts \
               (id, step_id, path, attempted_at, duration_ms, outcome, http_status, error, url, \
                holder, fence) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
               CASE WHEN {applied} THEN 'held' ELSE 'lease_lost' END) \
             RETURNING fence"
        )
    };
    let statement = match batch.kind() {
        DatabaseKind::Sqlite => {
            bind_update(batch.push(update));
            batch.push(insert("changes() = 1"))
        }
        DatabaseKind::Postgres => {
            let statement = batch.push(format!("WITH applied AS ({update} RETURNING 1) "));
            bind_update(statement);
            statement.append(&insert("EXISTS (SELECT 1 FROM applied)"))
        }
    };
    statement
        // Time-ordered (v7, and ordered within one process): the history sorts attempts that
        // started in the same millisecond by this id, so it must follow the order of recording.
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(row.step_id.as_str())
        .bind(row.path.as_str())
        .bind(row.started_at)
        .bind(row.duration_ms)
        .bind(row.outcome)
        .bind(row.http_status.map(i64::from))
        .bind(row.error)
        .bind(row.url)
        .bind(row.holder);
}

/// The fences the attempts of a batch returned, in order.
fn fences(rows: &[AnyRow]) -> Result<Vec<Fence>, StoreError> {
    rows.iter()
        .map(|row| {
            let fence: String = row.try_get("fence")?;
            fence
                .parse()
                .map_err(|e: String| StoreError::corrupt("webhook_attempts", e))
        })
        .collect()
}

fn attempt_from_row(row: &AnyRow) -> Result<Attempt, StoreError> {
    let corrupt = |e: &dyn fmt::Display| StoreError::corrupt("webhook_attempts", e);
    let id: String = row.try_get("step_id")?;
    let path: String = row.try_get("path")?;
    let fence: String = row.try_get("fence")?;
    Ok(Attempt {
        step_id: StepId::parse(&id).map_err(|e| corrupt(&e))?,
        path: path.parse().map_err(|e: String| corrupt(&e))?,
        attempted_at: row.try_get("attempted_at")?,
        duration_ms: row.try_get("duration_ms")?,
        outcome: row.try_get("outcome")?,
        http_status: row.try_get("http_status")?,
        error: row.try_get("error")?,
        url: row.try_get("url")?,
        holder: row.try_get("holder")?,
        fence: fence.parse().map_err(|e: String| corrupt(&e))?,
    })
}

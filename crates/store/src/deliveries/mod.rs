//! Webhook deliveries: one row per step notification, in both modes. Direct mode writes it with
//! the step's terminal status, Temporal mode with the step (`create_step`); Temporal's webhook
//! activity is the fast path that marks it delivered, and any dispatcher sends what falls due.
//!
//! Every sender is a *holder*: it takes the row under a fresh claim token and a lease on the
//! database clock before it sends, and only the current token can record the result.
//!
//! - `claims.rs`: dispatchers' fenced claims (their own endpoint's rows only);
//! - `fast_path.rs`: the webhook activity takes the row the same way before it sends;
//! - `attempts.rs`: recording attempts and their history (every send, by whichever holder);
//! - `requeue.rs`: operator redelivery (never across a live claim);
//! - `registry.rs`: the dispatchers running on this store, and the endpoints they serve;
//! - `query.rs`: pages for the HTTP API.

mod attempts;
mod claims;
mod fast_path;
mod query;
mod registry;
mod requeue;

pub use attempts::{ActivityAttempt, Attempt, AttemptPath, AttemptRecord, Fence};
pub use claims::{ClaimScope, ClaimedDelivery};
pub(crate) use fast_path::push_take;
pub use fast_path::{FastPathTake, TakeOnCommit};
pub use query::DeliveryQuery;
pub use registry::{DISPATCHER_HEARTBEAT, DispatcherRegistration, FLEET_MEMORY, ServedEndpoint};
pub use requeue::{Rebind, RequeueOutcome};

use crate::batch::Batch;
use crate::clock::now_sql;
use crate::{Store, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::fmt;
use std::str::FromStr;
use stephook_core::{DatabaseKind, Endpoint, StepId, StepStatus, now_millis};

/// `SELECT <what a [`Delivery`] is read from> FROM webhook_deliveries d` (joined to its step,
/// `s`, for the run and agent); `held` is computed on the database clock.
pub(crate) fn select_deliveries(kind: DatabaseKind) -> String {
    format!(
        "SELECT d.step_id, d.step_status, d.state, d.source, d.attempts, d.scheduled_attempts, \
           d.next_attempt_at, d.last_http_status, d.last_error, d.last_duration_ms, \
           d.delivered_at, d.created_at, d.updated_at, d.endpoint, d.endpoint_url, \
           CAST(CASE WHEN d.lease_until > {} THEN 1 ELSE 0 END AS BIGINT) AS held, \
           s.run_id, s.agent_id \
         FROM webhook_deliveries d LEFT JOIN steps s ON s.id = d.step_id",
        now_sql(kind)
    )
}

/// The states a delivery waits for an attempt in (the claimable ones).
const WAITING_STATES: &str = "('pending', 'retrying')";
/// Nobody holds the row now: no lease, or one that has run out (on the database clock).
fn unheld(kind: DatabaseKind) -> String {
    format!("(lease_until IS NULL OR lease_until <= {})", now_sql(kind))
}

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
#[error("invalid delivery state {0:?}: expected pending, retrying, delivered or dead{hint}",
    hint = if self.0 == "failed" {
        " (`failed` was renamed `retrying` in 0.2: a delivery waiting for its next attempt; \
         a delivery that was given up on is `dead`)"
    } else {
        ""
    })]
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
    /// The endpoint the notification is for; `None` until an endpoint takes it.
    pub endpoint: Option<Endpoint>,
    /// Whether a holder (a dispatcher or the webhook activity) is sending it right now.
    pub held: bool,
    /// The step's run and agent (`None` once retention has deleted the step).
    pub run_id: Option<String>,
    pub agent_id: Option<String>,
}

impl Delivery {
    /// Waiting for an attempt (pending or retrying).
    pub fn is_waiting(&self) -> bool {
        matches!(self.state, DeliveryState::Pending | DeliveryState::Retrying)
    }
}

/// A notification to queue with a step's terminal status: due `after` that long (on the
/// database clock), for `to`.
#[derive(Debug, Clone, Copy)]
pub struct Notify<'a> {
    pub after: std::time::Duration,
    pub to: NotifyTo<'a>,
}

/// The endpoint a notification row is written for, when its step is committed.
#[derive(Debug, Clone, Copy)]
pub enum NotifyTo<'a> {
    /// This endpoint (the committing process sends to it).
    Endpoint(&'a Endpoint),
    /// No endpoint yet: a worker without a URL in a fleet whose dispatchers have one; the first
    /// endpoint that takes the row binds it.
    Unbound,
}

impl<'a> NotifyTo<'a> {
    pub(crate) fn parts(self) -> (Option<&'a str>, Option<&'a str>) {
        match self {
            Self::Endpoint(endpoint) => (Some(endpoint.fingerprint()), Some(endpoint.shown())),
            Self::Unbound => (None, None),
        }
    }
}

/// Adds a step's notification row to the caller's batch (it runs in the caller's transaction),
/// as `notify` says. `replace` (direct mode's terminal transition, which happens once) resets an
/// existing row; otherwise an existing row is left as it is, so a retried `create_step` never
/// re-queues a notification that was already delivered.
pub(crate) fn enqueue<'q>(
    batch: &mut Batch<'q>,
    kind: DatabaseKind,
    (id, status): (&'q StepId, StepStatus),
    source: Source,
    notify: Notify<'q>,
    replace: bool,
) {
    let db_now = now_sql(kind);
    let on_conflict = if replace {
        "DO UPDATE SET step_status = excluded.step_status, state = 'pending', \
           next_attempt_at = excluded.next_attempt_at, attempts = 0, scheduled_attempts = 0, \
           claim_token = NULL, lease_until = NULL, endpoint = excluded.endpoint, \
           endpoint_url = excluded.endpoint_url, updated_at = excluded.updated_at"
    } else {
        "DO NOTHING"
    };
    let (endpoint, endpoint_url) = notify.to.parts();
    batch
        .push(format!(
            "INSERT INTO webhook_deliveries \
               (step_id, step_status, state, source, attempts, scheduled_attempts, \
                next_attempt_at, created_at, updated_at, endpoint, endpoint_url) \
             VALUES ($1, $2, 'pending', $3, 0, 0, {db_now} + $4, $5, $5, $6, $7) \
             ON CONFLICT (step_id) {on_conflict}"
        ))
        .bind(id.as_str())
        .bind(status.as_str())
        .bind(source.as_str())
        .bind(stephook_core::duration_millis(notify.after))
        .bind(now_millis())
        .bind(endpoint)
        .bind(endpoint_url);
}

impl Store {
    pub async fn delivery(&self, id: &StepId) -> Result<Option<Delivery>, StoreError> {
        let row = sqlx::query(&format!(
            "{} WHERE d.step_id = $1",
            select_deliveries(self.kind)
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
            "WHERE d.state = $2"
        } else {
            ""
        };
        let sql = format!(
            "{} {filter} ORDER BY d.updated_at DESC, d.step_id LIMIT $1",
            select_deliveries(self.kind)
        );
        let mut query = sqlx::query(&sql).bind(limit);
        if let Some(state) = state {
            query = query.bind(state.as_str());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(delivery_from_row).collect()
    }

    /// How many deliveries are in each state, each counted up to `cap`: one bounded index range
    /// per state, so the console's counts cost the same at a million rows as at a hundred. A
    /// state whose count reaches `cap` is reported as `cap` (read it as "at least").
    pub async fn count_deliveries(
        &self,
        cap: i64,
    ) -> Result<Vec<(DeliveryState, i64)>, StoreError> {
        let mut counts = Vec::with_capacity(DeliveryState::ALL.len());
        for state in DeliveryState::ALL {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM (SELECT 1 FROM webhook_deliveries WHERE state = $1 LIMIT $2) AS capped",
            )
            .bind(state.as_str())
            .bind(cap)
            .fetch_one(&self.pool)
            .await?;
            counts.push((state, n));
        }
        Ok(counts)
    }

    /// Waiting notifications (up to `cap`) that no dispatcher of `served` (endpoint
    /// fingerprints) takes: a row of another endpoint, or any row when nothing is served.
    pub async fn count_waiting_unserved(
        &self,
        served: &[&str],
        cap: i64,
    ) -> Result<i64, StoreError> {
        let taken = if served.is_empty() {
            String::new()
        } else {
            let placeholders: Vec<String> =
                (0..served.len()).map(|i| format!("${}", i + 2)).collect();
            format!(
                " AND endpoint IS NOT NULL AND endpoint NOT IN ({})",
                placeholders.join(", ")
            )
        };
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM webhook_deliveries \
             WHERE state IN {WAITING_STATES}{taken} LIMIT $1) AS capped"
        );
        let mut query = sqlx::query_scalar(&sql).bind(cap);
        for fingerprint in served {
            query = query.bind(*fingerprint);
        }
        Ok(query.fetch_one(&self.pool).await?)
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
        endpoint: endpoint_from_row(row)?,
        held: row.try_get::<i64, _>("held")? == 1,
        run_id: row.try_get("run_id")?,
        agent_id: row.try_get("agent_id")?,
    })
}

fn endpoint_from_row(row: &AnyRow) -> Result<Option<Endpoint>, StoreError> {
    let fingerprint: Option<String> = row.try_get("endpoint")?;
    let shown: Option<String> = row.try_get("endpoint_url")?;
    Ok(fingerprint.map(|fingerprint| Endpoint::from_parts(fingerprint, shown.unwrap_or_default())))
}

pub(crate) fn step_id_from_row(row: &AnyRow) -> Result<StepId, StoreError> {
    let id: String = row.try_get("step_id")?;
    StepId::parse(&id).map_err(|e| StoreError::corrupt("webhook_deliveries", e))
}

//! The outbox's fast path: one attempt at a step's notification, made by a holder that is not a
//! dispatcher (Temporal's `send_step_complete_webhook` activity). It takes the row exactly as a
//! dispatcher does (fenced, leased on the database clock) before it sends, so the same
//! notification is never sent by two holders at once, a delivered one is never sent again, and
//! every send is in the attempt history. A step the store does not hold (another SDK's workflow
//! notifying a step of its own) is sent as the reference sends it, with nothing to record.

use crate::dispatcher::{host_label, lease_covers_a_send};
use std::time::{Duration, Instant};
use stephook_core::{Endpoint, StepId, duration_millis, now_millis};
use stephook_store::{ActivityAttempt, FastPathTake, Fence, Store, StoreError, TakeOnCommit};
use stephook_webhook::{DeliveryReport, OutcomeClass, WebhookService};

/// Taking and recording the row get this long each: a slow store must not eat the attempt's
/// budget (a send the fast path cannot record is sent again by the outbox, never lost).
const STORE_STEP_TIMEOUT: Duration = Duration::from_secs(3);
/// The fast path's lease outlives its HTTP timeout by this much (a dispatcher's by 30 s, as it
/// keeps rows in a backlog). It sends at once after taking the row, so a few seconds cover the
/// start of the send; and a worker that dies holding the row frees it before the activity's
/// 15 s start-to-close, so the retry on another worker can send it.
pub const FAST_PATH_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// What one fast-path attempt did.
#[derive(Debug)]
pub enum FastPathResult {
    /// The notification was sent (`report` says how it went).
    Sent {
        report: DeliveryReport,
        /// Where the send is recorded: on the row it held (with its fence), nowhere (a step the
        /// store does not hold), or not at all because the store failed (then the outbox sends
        /// it again when the lease ends).
        recorded: Recorded,
        /// The row was missing and this attempt wrote it.
        wrote_row: bool,
    },
    /// Nothing was sent, for this reason.
    NotSent(NotSent),
}

/// A take of the row (or its renewal), given [`STORE_STEP_TIMEOUT`].
async fn within_store_step<T>(
    step: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, FastPathError> {
    tokio::time::timeout(STORE_STEP_TIMEOUT, step)
        .await
        .map_err(|_| FastPathError::Timeout(STORE_STEP_TIMEOUT))?
        .map_err(FastPathError::from)
}

/// What a holder knows of the row it is about to send.
struct Held {
    /// Its claim token; `None`: a step the store does not hold (nothing to record on).
    token: Option<String>,
    /// The row was missing and this attempt wrote it.
    wrote_row: bool,
    /// When the take was asked for: the lease cannot have started earlier.
    lease_started: Instant,
}

/// A take of a step's row made in the transaction that stores the step (see
/// [`FastPath::take_on_commit`]).
#[derive(Debug)]
pub struct TakenOnCommit {
    endpoint: Endpoint,
    token: String,
    lease_ms: i64,
    started: Instant,
}

impl TakenOnCommit {
    /// What the store writes in the step's transaction.
    pub fn take(&self) -> TakeOnCommit<'_> {
        TakeOnCommit {
            endpoint: &self.endpoint,
            token: &self.token,
            lease_ms: self.lease_ms,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    OnRow(Fence),
    NoRow,
    Failed,
}

/// Why the fast path sent nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotSent {
    /// This process has no webhook URL.
    NotConfigured,
    /// Delivered already (by an earlier attempt, a dispatcher, or a redelivery).
    AlreadyDelivered,
    /// A dispatcher (or another attempt) is sending it right now.
    HeldElsewhere,
    /// Dead: it waits for an operator's redelivery.
    Dead,
    /// The row is for another endpoint; that endpoint's dispatchers send it.
    OtherEndpoint(Endpoint),
    /// The process stalled after taking the row, past the point where its lease still covers
    /// a whole attempt: it must not send.
    LeaseUnproven,
}

impl NotSent {
    /// The label the activity's result and logs carry.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::AlreadyDelivered => "already_delivered",
            Self::HeldElsewhere => "held_elsewhere",
            Self::Dead => "dead",
            Self::OtherEndpoint(_) => "other_endpoint",
            Self::LeaseUnproven => "lease_unproven",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FastPathError {
    #[error("cannot take the notification's outbox row: {0}")]
    Store(#[from] StoreError),
    #[error("taking the notification's outbox row timed out after {0:?}")]
    Timeout(Duration),
}

/// One sender of fast-path attempts; cheap to clone.
#[derive(Clone, Debug)]
pub struct FastPath {
    store: Store,
    webhook: WebhookService,
    endpoint: Option<Endpoint>,
    /// How long after its write a row the fast path writes falls due for the dispatchers.
    grace: Duration,
    lease_margin: Duration,
}

impl FastPath {
    pub fn new(store: Store, webhook: WebhookService, grace: Duration) -> Self {
        let endpoint = webhook.config().endpoint();
        Self {
            store,
            webhook,
            endpoint,
            grace,
            lease_margin: FAST_PATH_LEASE_MARGIN,
        }
    }

    /// See [`FAST_PATH_LEASE_MARGIN`]; tests that stall a holder shorten it.
    pub fn with_lease_margin(mut self, margin: Duration) -> Self {
        self.lease_margin = margin;
        self
    }

    /// How long a fast-path holder keeps a row: its whole HTTP attempt, and the margin.
    fn lease(&self) -> Duration {
        self.webhook.config().timeout + self.lease_margin
    }

    /// One attempt (`attempt` is 1-based, for the log line) at the step's notification.
    pub async fn send_once(
        &self,
        step_id: &StepId,
        attempt: u32,
    ) -> Result<FastPathResult, FastPathError> {
        let Some(endpoint) = &self.endpoint else {
            return Ok(FastPathResult::NotSent(NotSent::NotConfigured));
        };
        let lease = self.lease();
        // Taken before the claim is asked for: the lease cannot have started earlier.
        let lease_started = Instant::now();
        let take = within_store_step(self.store.take_for_fast_path(
            step_id,
            endpoint,
            duration_millis(lease),
            duration_millis(self.grace),
        ))
        .await?;
        let (token, wrote_row) = match take {
            FastPathTake::Held { token, written } => (Some(token), written),
            FastPathTake::NotStored => (None, false),
            FastPathTake::AlreadyDelivered => {
                return Ok(FastPathResult::NotSent(NotSent::AlreadyDelivered));
            }
            FastPathTake::HeldElsewhere => {
                return Ok(FastPathResult::NotSent(NotSent::HeldElsewhere));
            }
            FastPathTake::Dead => return Ok(FastPathResult::NotSent(NotSent::Dead)),
            FastPathTake::OtherEndpoint(other) => {
                return Ok(FastPathResult::NotSent(NotSent::OtherEndpoint(other)));
            }
        };
        let held = Held {
            token,
            wrote_row,
            lease_started,
        };
        Ok(self.send_held(step_id, endpoint, held, attempt).await)
    }

    /// A take to write in the transaction that stores a step, for [`Self::send_taken`] once it
    /// commits; `None` without a webhook URL.
    pub fn take_on_commit(&self) -> Option<TakenOnCommit> {
        let endpoint = self.endpoint.clone()?;
        Some(TakenOnCommit {
            endpoint,
            token: uuid::Uuid::new_v4().to_string(),
            lease_ms: duration_millis(self.lease()),
            // Taken before the transaction is asked for: the lease cannot have started earlier.
            started: Instant::now(),
        })
    }

    /// The first attempt at a notification whose row the step's own transaction took (`taken`):
    /// it sends at once, with no write before it, unless that transaction waited so long (a
    /// locked store) that the lease can no longer be proven from when it was asked for: then it
    /// renews the take first.
    pub async fn send_taken(&self, step_id: &StepId, taken: TakenOnCommit) -> FastPathResult {
        let TakenOnCommit {
            endpoint,
            token,
            lease_ms,
            mut started,
        } = taken;
        if !lease_covers_a_send(started, self.lease_margin) {
            started = Instant::now();
            let renewed =
                within_store_step(self.store.renew_fast_path_take(step_id, &token, lease_ms)).await;
            if !matches!(renewed, Ok(true)) {
                tracing::warn!(step_id = step_id.as_str(), host = %host_label(),
                    "the step's commit outlasted the notification's lease and it could not be renewed; leaving it to the outbox");
                return FastPathResult::NotSent(NotSent::LeaseUnproven);
            }
        }
        let held = Held {
            token: Some(token),
            wrote_row: false,
            lease_started: started,
        };
        self.send_held(step_id, &endpoint, held, 1).await
    }

    /// Sends the notification of a row this holder took and records the send on it.
    async fn send_held(
        &self,
        step_id: &StepId,
        endpoint: &Endpoint,
        held: Held,
        attempt: u32,
    ) -> FastPathResult {
        let Held {
            token,
            wrote_row,
            lease_started,
        } = held;
        if token.is_some() && !lease_covers_a_send(lease_started, self.lease_margin) {
            tracing::warn!(step_id = step_id.as_str(), host = %host_label(),
                "stalled after taking the notification; leaving it to the outbox");
            return FastPathResult::NotSent(NotSent::LeaseUnproven);
        }
        let started_at = now_millis();
        let report = self.webhook.send(step_id, attempt).await;
        let recorded = match token {
            None => Recorded::NoRow,
            Some(token) => {
                self.record(step_id, token, started_at, endpoint, &report)
                    .await
            }
        };
        FastPathResult::Sent {
            report,
            recorded,
            wrote_row,
        }
    }

    async fn record(
        &self,
        step_id: &StepId,
        token: String,
        started_at: i64,
        endpoint: &Endpoint,
        report: &DeliveryReport,
    ) -> Recorded {
        let delivered = report.outcome.class() == OutcomeClass::Delivered;
        let attempt = ActivityAttempt {
            step_id: step_id.clone(),
            token,
            started_at,
            url: endpoint.shown().to_owned(),
            delivered,
            outcome: report.outcome.label().to_owned(),
            http_status: report.outcome.http_status(),
            error: (!delivered).then(|| report.outcome.to_string()),
            duration_ms: duration_millis(report.elapsed),
        };
        let recorded = tokio::time::timeout(
            STORE_STEP_TIMEOUT,
            self.store.record_activity_attempt(&attempt),
        )
        .await;
        match recorded {
            Ok(Ok(fence)) => Recorded::OnRow(fence),
            Ok(Err(error)) => {
                tracing::warn!(step_id = step_id.as_str(), %error,
                    "cannot record the webhook attempt; the outbox sends the notification again when its lease ends");
                Recorded::Failed
            }
            Err(_) => {
                tracing::warn!(
                    step_id = step_id.as_str(),
                    "recording the webhook attempt timed out; the outbox sends the notification again when its lease ends"
                );
                Recorded::Failed
            }
        }
    }
}

//! The webhook activity takes the row the way a dispatcher does before it sends: under a fresh
//! claim token with a lease on the database clock. Unlike a dispatcher's claim it leaves the
//! row's due time where `create_step` put it (the end of the grace period), so when the
//! activity gives up, or dies holding the row, the dispatchers take over at that time or when the
//! lease ends, whichever is later. A row that is already delivered, held by someone else, dead, or
//! bound to another endpoint is not sent; a terminal step with no row gets one, so a worker with
//! a URL that handles a notification always makes it durable.

use super::{DeliveryState, Source, WAITING_STATES, unheld};
use crate::batch::Batch;
use crate::clock::now_sql;
use crate::{Store, StoreError};
use stephook_core::{Endpoint, StepId, now_millis};

/// Attempts at taking a row that another process inserted at the same moment.
const TAKE_TRIES: usize = 2;

/// What the fast path found when it tried to take a step's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FastPathTake {
    /// Send it: the fast path holds the row under `token` until its lease ends. `written`: the
    /// row was missing (a `create_step` on a worker without the outbox, or without a URL) and
    /// the fast path wrote it.
    Held { token: String, written: bool },
    /// Already delivered: nothing to send.
    AlreadyDelivered,
    /// Someone else is sending it right now (a dispatcher, or another attempt of the activity):
    /// theirs to finish.
    HeldElsewhere,
    /// Given up on (dead): it waits for an operator's redelivery.
    Dead,
    /// Bound to another endpoint: that endpoint's dispatchers send it, never this one.
    OtherEndpoint(Endpoint),
    /// The store holds no terminal step of that id (another SDK's workflow notifying a step of
    /// its own): there is no row to hold or record on.
    NotStored,
}

/// A fast-path take of a step's row written in the transaction that stores the step
/// (`create_step`'s), for the send that starts once it commits: that send then makes no write of
/// its own before it goes out. The take is the one [`Store::take_for_fast_path`] makes of a
/// waiting row, so it holds only a row nobody else holds.
#[derive(Debug, Clone, Copy)]
pub struct TakeOnCommit<'a> {
    pub endpoint: &'a Endpoint,
    /// The holder's claim token; it fences the send's record.
    pub token: &'a str,
    /// The lease, on the database clock, from the statement's time.
    pub lease_ms: i64,
}

/// Adds the take of the step's waiting, unheld row (this endpoint's, or no endpoint's yet: then
/// it becomes this one's) to the batch; the row comes back (`RETURNING`) when it was taken.
pub(crate) fn push_take<'q>(batch: &mut Batch<'q>, id: &'q StepId, take: TakeOnCommit<'q>) {
    let kind = batch.kind();
    let sql = format!(
        "UPDATE webhook_deliveries SET claim_token = $1, lease_until = {db_now} + $2, \
           endpoint = COALESCE(endpoint, $3), endpoint_url = COALESCE(endpoint_url, $4), \
           updated_at = $5 \
         WHERE step_id = $6 AND state IN {WAITING_STATES} AND {unheld} \
           AND (endpoint = $3 OR endpoint IS NULL) \
         RETURNING step_id",
        db_now = now_sql(kind),
        unheld = unheld(kind),
    );
    batch
        .push(sql)
        .bind(take.token)
        .bind(take.lease_ms)
        .bind(take.endpoint.fingerprint())
        .bind(take.endpoint.shown())
        .bind(now_millis())
        .bind(id.as_str());
}

impl Store {
    /// Takes the step's row for one fast-path attempt to `endpoint`, leased for `lease_ms` on the
    /// database clock. A missing row of a terminal step is written (bound to `endpoint`, due
    /// after `grace_ms`) and taken in the same statement.
    pub async fn take_for_fast_path(
        &self,
        id: &StepId,
        endpoint: &Endpoint,
        lease_ms: i64,
        grace_ms: i64,
    ) -> Result<FastPathTake, StoreError> {
        for _ in 0..TAKE_TRIES {
            let token = uuid::Uuid::new_v4().to_string();
            if self.take_existing(id, endpoint, &token, lease_ms).await? {
                return Ok(FastPathTake::Held {
                    token,
                    written: false,
                });
            }
            if let Some(row) = self.delivery(id).await? {
                return Ok(match row.state {
                    DeliveryState::Delivered => FastPathTake::AlreadyDelivered,
                    DeliveryState::Dead => FastPathTake::Dead,
                    _ => match row.endpoint {
                        Some(other) if other.fingerprint() != endpoint.fingerprint() => {
                            FastPathTake::OtherEndpoint(other)
                        }
                        // Held, or taken and let go between the two reads: either way a
                        // dispatcher or the next attempt sees to it; never two at once.
                        _ => FastPathTake::HeldElsewhere,
                    },
                });
            }
            if self
                .write_taken(id, endpoint, &token, lease_ms, grace_ms)
                .await?
            {
                return Ok(FastPathTake::Held {
                    token,
                    written: true,
                });
            }
            // No row was written: either the step is not a stored terminal step, or another
            // process wrote the row in between (then the next try finds it).
        }
        Ok(FastPathTake::NotStored)
    }

    /// One write: takes the row when it waits, nobody holds it, and it is this endpoint's (or
    /// no endpoint's yet, then it becomes this one's).
    async fn take_existing(
        &self,
        id: &StepId,
        endpoint: &Endpoint,
        token: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut batch = Batch::new(self.kind);
        push_take(
            &mut batch,
            id,
            TakeOnCommit {
                endpoint,
                token,
                lease_ms,
            },
        );
        Ok(!batch.commit(self).await?.is_empty())
    }

    /// Starts the lease of a fast-path take again, on the database clock, while the row is still
    /// under `token` and waiting: for a holder that cannot prove its lease from the time it asked
    /// for it (the transaction that wrote the take waited behind a locked store). Nobody else can
    /// have sent the row meanwhile, since every take writes a token of its own. False when the
    /// row is no longer this holder's.
    pub async fn renew_fast_path_take(
        &self,
        id: &StepId,
        token: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut batch = Batch::new(self.kind);
        batch
            .push(format!(
                "UPDATE webhook_deliveries SET lease_until = {db_now} + $1, updated_at = $2 \
                 WHERE step_id = $3 AND claim_token = $4 AND state IN {WAITING_STATES} \
                 RETURNING step_id",
                db_now = now_sql(self.kind),
            ))
            .bind(lease_ms)
            .bind(now_millis())
            .bind(id.as_str())
            .bind(token);
        Ok(!batch.commit(self).await?.is_empty())
    }

    /// One write: the row of a terminal step that has none, held by the fast path.
    async fn write_taken(
        &self,
        id: &StepId,
        endpoint: &Endpoint,
        token: &str,
        lease_ms: i64,
        grace_ms: i64,
    ) -> Result<bool, StoreError> {
        let db_now = now_sql(self.kind);
        let sql = format!(
            "INSERT INTO webhook_deliveries \
               (step_id, step_status, state, source, attempts, scheduled_attempts, \
                next_attempt_at, created_at, updated_at, endpoint, endpoint_url, claim_token, \
                lease_until) \
             SELECT id, status, 'pending', $1, 0, 0, {db_now} + $2, $3, $3, $4, $5, $6, \
                    {db_now} + $7 \
             FROM steps WHERE id = $8 AND status IN ('success', 'failed', 'cancelled') \
             ON CONFLICT (step_id) DO NOTHING"
        );
        let gate = self.write_gate().await;
        let written = sqlx::query(&sql)
            .bind(Source::Temporal.as_str())
            .bind(grace_ms)
            .bind(now_millis())
            .bind(endpoint.fingerprint())
            .bind(endpoint.shown())
            .bind(token)
            .bind(lease_ms)
            .bind(id.as_str())
            .execute(gate.pool())
            .await?
            .rows_affected();
        Ok(written == 1)
    }
}

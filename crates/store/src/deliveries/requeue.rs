//! Operator redelivery: a re-queued notification is pending and due now, with its counters and
//! retry schedule restarted and its attempt history kept. Re-queueing only writes rows; a
//! dispatcher of the row's endpoint takes them from there.
//!
//! It never cuts across a live claim: a row that a holder is sending stays as it is until the
//! holder records its result (or its lease runs out), and a row that already waits to be sent
//! now is left alone, so a double click or a retried request changes nothing more. Each change is
//! one statement that writes first, so it never fails on SQLite's `BUSY_SNAPSHOT` beside another
//! process's writes.

use super::{Source, step_id_from_row, unheld};
use crate::clock::now_sql;
use crate::{Store, StoreError};
use stephook_core::{Endpoint, StepId, now_millis};

/// Which endpoint a redelivered notification goes to.
#[derive(Debug, Clone, Copy)]
pub enum Rebind<'a> {
    /// The one it was committed for (the default: a row never moves by itself).
    Keep,
    /// This one (`--to-current-endpoint`: an explicit operator choice).
    To(&'a Endpoint),
}

/// What a redelivery did to one notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequeueOutcome {
    /// Pending and due now, counters and schedule restarted.
    Queued,
    /// It was already waiting to be sent now: nothing changed.
    AlreadyQueued,
    /// A holder is sending it right now: nothing changed; its result will show.
    InFlight,
}

impl RequeueOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::AlreadyQueued => "already_queued",
            Self::InFlight => "in_flight",
        }
    }
}

/// A row changes hands only between sends, when it waits for a later attempt, or when it is
/// moved to another endpoint.
const REQUEUE_TRIES: usize = 3;

impl Store {
    /// Re-queues one step's notification, due now (see the module's rules). Works for a
    /// terminal step with no delivery row yet (notified by a process without the outbox), so any
    /// terminal step can be re-sent; receivers dedupe on the unchanged `webhook-id`.
    pub async fn requeue(
        &self,
        id: &StepId,
        rebind: Rebind<'_>,
    ) -> Result<RequeueOutcome, StoreError> {
        self.requeue_from(id, rebind, Source::Operator).await
    }

    /// Hands a Temporal notification whose fast path gave up to the dispatchers, due now (what
    /// the legacy `record_undelivered_webhook` activity of pre-outbox workflow histories does).
    pub async fn hand_over_to_dispatchers(&self, id: &StepId) -> Result<(), StoreError> {
        self.requeue_from(id, Rebind::Keep, Source::Temporal)
            .await
            .map(|_| ())
    }

    /// `source` is recorded only when the step had no row yet.
    async fn requeue_from(
        &self,
        id: &StepId,
        rebind: Rebind<'_>,
        source: Source,
    ) -> Result<RequeueOutcome, StoreError> {
        for _ in 0..REQUEUE_TRIES {
            if self.requeue_row(id, rebind).await? {
                return Ok(RequeueOutcome::Queued);
            }
            match self.delivery(id).await? {
                Some(row) if row.held => return Ok(RequeueOutcome::InFlight),
                Some(row) if row.is_waiting() => return Ok(RequeueOutcome::AlreadyQueued),
                // Its holder finished between the two reads: try again.
                Some(_) => {}
                None => {
                    if self.insert_requeued(id, rebind, source).await? {
                        return Ok(RequeueOutcome::Queued);
                    }
                }
            }
        }
        // Still changing hands after every try: a holder is at work on it.
        Ok(RequeueOutcome::InFlight)
    }

    /// Re-queues an existing row that nobody holds and that is not already due now (or is being
    /// moved to another endpoint).
    async fn requeue_row(&self, id: &StepId, rebind: Rebind<'_>) -> Result<bool, StoreError> {
        let db_now = now_sql(self.kind);
        let (set_endpoint, moved) = match rebind {
            Rebind::Keep => ("", ""),
            Rebind::To(_) => (
                ", endpoint = $3, endpoint_url = $4",
                " OR endpoint IS NULL OR endpoint <> $3",
            ),
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = {db_now}, \
               attempts = 0, scheduled_attempts = 0, claim_token = NULL, lease_until = NULL, \
               updated_at = $1{set_endpoint} \
             WHERE step_id = $2 AND {unheld} \
               AND (state IN ('delivered', 'dead') OR next_attempt_at > {db_now}{moved})",
            unheld = unheld(self.kind),
        );
        let mut query = sqlx::query(&sql).bind(now_millis()).bind(id.as_str());
        if let Rebind::To(endpoint) = rebind {
            query = query.bind(endpoint.fingerprint()).bind(endpoint.shown());
        }
        let gate = self.write_gate().await;
        Ok(query.execute(gate.pool()).await?.rows_affected() == 1)
    }

    /// The row of a terminal step that has none, due now.
    async fn insert_requeued(
        &self,
        id: &StepId,
        rebind: Rebind<'_>,
        source: Source,
    ) -> Result<bool, StoreError> {
        let step = self
            .step(id)
            .await?
            .ok_or_else(|| StoreError::StepNotFound(id.clone()))?;
        if !step.status.is_terminal() {
            return Err(StoreError::NotTerminal(id.clone()));
        }
        let (endpoint, endpoint_url) = match rebind {
            Rebind::Keep => (None, None),
            Rebind::To(endpoint) => (Some(endpoint.fingerprint()), Some(endpoint.shown())),
        };
        let db_now = now_sql(self.kind);
        let gate = self.write_gate().await;
        let written = sqlx::query(&format!(
            "INSERT INTO webhook_deliveries \
               (step_id, step_status, state, source, attempts, scheduled_attempts, \
                next_attempt_at, created_at, updated_at, endpoint, endpoint_url) \
             VALUES ($1, $2, 'pending', $3, 0, 0, {db_now}, $4, $4, $5, $6) \
             ON CONFLICT (step_id) DO NOTHING"
        ))
        .bind(id.as_str())
        .bind(step.status.as_str())
        .bind(source.as_str())
        .bind(now_millis())
        .bind(endpoint)
        .bind(endpoint_url)
        .execute(gate.pool())
        .await;
        match written {
            Ok(done) => Ok(done.rows_affected() == 1),
            // Retention deleted the step between the read and the write.
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                Err(StoreError::StepNotFound(id.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Re-queues up to `limit` dead notifications whose step id sorts after `after`, in step id
    /// order, and returns their ids in that order: callers page through every dead row in
    /// bounded memory, and a row that dies again while they work is not taken twice. One
    /// statement: the rows it picks are re-checked as it writes them.
    pub async fn requeue_dead_page(
        &self,
        after: Option<&StepId>,
        limit: i64,
        rebind: Rebind<'_>,
    ) -> Result<Vec<StepId>, StoreError> {
        let db_now = now_sql(self.kind);
        let set_endpoint = match rebind {
            Rebind::Keep => "",
            Rebind::To(_) => ", endpoint = $4, endpoint_url = $5",
        };
        let sql = format!(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = {db_now}, \
               attempts = 0, scheduled_attempts = 0, claim_token = NULL, lease_until = NULL, \
               updated_at = $1{set_endpoint} \
             WHERE state = 'dead' AND step_id IN ( \
                 SELECT step_id FROM webhook_deliveries WHERE state = 'dead' AND step_id > $2 \
                 ORDER BY step_id LIMIT $3) \
             RETURNING step_id"
        );
        let mut query = sqlx::query(&sql)
            .bind(now_millis())
            .bind(after.map_or("", StepId::as_str))
            .bind(limit);
        if let Rebind::To(endpoint) = rebind {
            query = query.bind(endpoint.fingerprint()).bind(endpoint.shown());
        }
        let gate = self.write_gate().await;
        let rows = query.fetch_all(gate.pool()).await?;
        let mut ids = rows
            .iter()
            .map(step_id_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        Ok(ids)
    }
}

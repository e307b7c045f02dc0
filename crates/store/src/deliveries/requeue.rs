//! Operator redelivery: a re-queued notification is pending and due now, with its counters and
//! retry schedule restarted and its attempt history kept. Re-queueing only writes rows; a
//! dispatcher configured to send takes them from there.

use super::{Source, step_id_from_row};
use crate::clock::now_sql;
use crate::{Store, StoreError};
use stephook_core::{StepId, now_millis};

impl Store {
    /// Re-queues one step's notification, due now. Works for a terminal step with no delivery
    /// row yet (notified by a process without the outbox), so any terminal step can be re-sent;
    /// receivers dedupe on the unchanged `webhook-id`. Repeating it changes nothing more.
    pub async fn requeue(&self, id: &StepId) -> Result<(), StoreError> {
        self.requeue_from(id, Source::Operator).await
    }

    /// Hands a Temporal notification whose fast path gave up to the dispatchers, due now (what
    /// the legacy `record_undelivered_webhook` activity of pre-outbox workflow histories does).
    pub async fn hand_over_to_dispatchers(&self, id: &StepId) -> Result<(), StoreError> {
        self.requeue_from(id, Source::Temporal).await
    }

    /// `source` is recorded only when the step had no row yet.
    async fn requeue_from(&self, id: &StepId, source: Source) -> Result<(), StoreError> {
        let step = self
            .step(id)
            .await?
            .ok_or_else(|| StoreError::StepNotFound(id.clone()))?;
        if !step.status.is_terminal() {
            return Err(StoreError::NotTerminal(id.clone()));
        }
        let db_now = now_sql(self.kind);
        let _gate = self.write_gate().await;
        sqlx::query(&format!(
            "INSERT INTO webhook_deliveries \
               (step_id, step_status, state, source, attempts, scheduled_attempts, \
                next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, 'pending', $3, 0, 0, {db_now}, $4, $4) \
             ON CONFLICT (step_id) DO UPDATE SET step_status = excluded.step_status, \
               state = 'pending', next_attempt_at = excluded.next_attempt_at, attempts = 0, \
               scheduled_attempts = 0, claim_token = NULL, updated_at = excluded.updated_at"
        ))
        .bind(id.as_str())
        .bind(step.status.as_str())
        .bind(source.as_str())
        .bind(now_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Re-queues up to `limit` dead notifications whose step id sorts after `after`, in step id
    /// order, and returns their ids: callers page through every dead row in bounded memory, and
    /// a row that dies again while they work is not taken twice.
    pub async fn requeue_dead_page(
        &self,
        after: Option<&StepId>,
        limit: i64,
    ) -> Result<Vec<StepId>, StoreError> {
        let db_now = now_sql(self.kind);
        let _gate = self.write_gate().await;
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT step_id FROM webhook_deliveries WHERE state = 'dead' AND step_id > $1 \
             ORDER BY step_id LIMIT $2",
        )
        .bind(after.map_or("", StepId::as_str))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let ids = rows
            .iter()
            .map(step_id_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let sql = format!(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = {db_now}, \
               attempts = 0, scheduled_attempts = 0, claim_token = NULL, updated_at = $1 \
             WHERE step_id = $2 AND state = 'dead'"
        );
        let now = now_millis();
        for id in &ids {
            sqlx::query(&sql)
                .bind(now)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }
}

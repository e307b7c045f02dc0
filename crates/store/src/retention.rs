//! Retention: the store stays bounded. Old delivered notifications (and their attempt history)
//! go, then old steps that have ended and no longer have a notification row; dead notifications
//! are kept for twice as long, so an operator has time to redeliver them. Every delete is a
//! small batch in its own transaction, so a purge never holds SQLite's writer for long.
//!
//! What retention never deletes: a step that is still running (pending), and a notification
//! that is waiting (pending or retrying) or was re-queued while the purge ran. The delete
//! statements check state and age themselves, so a row that changed after it was picked (an
//! operator redelivering an old dead notification) is left alone.

use crate::{Store, StoreError};
use sqlx::Row;
use stephook_core::StepId;

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub deliveries: u64,
    pub attempts: u64,
    pub steps: u64,
}

impl Store {
    /// Deletes, in batches of `batch` rows, what is older than `retention_ms` at `now_ms`:
    /// delivered notifications with their attempts; dead ones past twice the retention; then
    /// steps (and their metrics) created before the cutoff that have ended and have no
    /// notification row left (delivered and purged, or never had one). Pending steps, pending and
    /// retrying notifications, and their steps, are never deleted.
    pub async fn purge_expired(
        &self,
        now_ms: i64,
        retention_ms: i64,
        batch: i64,
    ) -> Result<Purged, StoreError> {
        let cutoff = now_ms.saturating_sub(retention_ms);
        let dead_cutoff = now_ms.saturating_sub(retention_ms.saturating_mul(2));
        let mut purged = Purged::default();
        loop {
            let (deliveries, attempts) = self.purge_deliveries(cutoff, dead_cutoff, batch).await?;
            purged.deliveries += deliveries;
            purged.attempts += attempts;
            if deliveries < batch.unsigned_abs() {
                break;
            }
        }
        loop {
            let steps = self.purge_steps(cutoff, batch).await?;
            purged.steps += steps;
            if steps < batch.unsigned_abs() {
                break;
            }
        }
        Ok(purged)
    }

    async fn purge_deliveries(
        &self,
        cutoff: i64,
        dead_cutoff: i64,
        batch: i64,
    ) -> Result<(u64, u64), StoreError> {
        const EXPIRED: &str = "((state = 'delivered' AND updated_at < $1) \
                                OR (state = 'dead' AND updated_at < $2))";
        let gate = self.write_gate().await;
        let mut tx = gate.begin().await?;
        let rows = sqlx::query(&format!(
            "DELETE FROM webhook_deliveries WHERE {EXPIRED} AND step_id IN ( \
                 SELECT step_id FROM webhook_deliveries WHERE {EXPIRED} \
                 ORDER BY updated_at LIMIT $3) \
             RETURNING step_id"
        ))
        .bind(cutoff)
        .bind(dead_cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        let ids = ids_of(&rows, "step_id")?;
        let attempts = delete_where_in(&mut tx, "webhook_attempts", "step_id", &ids).await?;
        tx.commit().await?;
        Ok((ids.len() as u64, attempts))
    }

    async fn purge_steps(&self, cutoff: i64, batch: i64) -> Result<u64, StoreError> {
        let gate = self.write_gate().await;
        let mut tx = gate.begin().await?;
        let rows = sqlx::query(&format!(
            "SELECT id FROM steps WHERE {EXPIRED_STEP} ORDER BY steps.created_at LIMIT $2"
        ))
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        let ids = ids_of(&rows, "id")?;
        // What hangs off a step goes with it: its metrics, messages, and the attempts of a
        // notification sent by another SDK's workflow (which have no row). Every delete checks
        // again that the step is still expired: a row written since (a redelivery) keeps the
        // step and all it has (on PostgreSQL, that row's foreign key makes the step's delete
        // fail, and the whole batch waits for the next purge).
        for table in ["webhook_attempts", "step_metrics", "step_messages"] {
            delete_expired(&mut tx, table, "step_id", cutoff, &ids).await?;
        }
        let steps = delete_expired(&mut tx, "steps", "id", cutoff, &ids).await?;
        tx.commit().await?;
        Ok(steps)
    }
}

/// A step retention may delete: ended before the cutoff (`$1`), with no notification row left
/// (delivered and purged, or never had one). A pending step is never taken, however old.
const EXPIRED_STEP: &str = "steps.created_at < $1 \
    AND steps.status IN ('success', 'failed', 'cancelled') \
    AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.step_id = steps.id)";

/// Deletes the rows of `table` whose `column` is one of `ids` and still an expired step;
/// `table` and `column` are this module's constants.
async fn delete_expired(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    column: &str,
    cutoff: i64,
    ids: &[StepId],
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let placeholders: Vec<String> = (2..=ids.len() + 1).map(|i| format!("${i}")).collect();
    let sql = format!(
        "DELETE FROM {table} WHERE {column} IN ({}) \
           AND {column} IN (SELECT id FROM steps WHERE {EXPIRED_STEP})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(cutoff);
    for id in ids {
        query = query.bind(id.as_str().to_owned());
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

fn ids_of(rows: &[sqlx::any::AnyRow], column: &str) -> Result<Vec<StepId>, StoreError> {
    rows.iter()
        .map(|row| {
            let id: String = row.try_get(column)?;
            StepId::parse(&id).map_err(|e| StoreError::corrupt("steps", e))
        })
        .collect()
}

/// `DELETE FROM table WHERE column IN (ids)`; `table` and `column` are this module's constants.
async fn delete_where_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    table: &str,
    column: &str,
    ids: &[StepId],
) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "DELETE FROM {table} WHERE {column} IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for id in ids {
        query = query.bind(id.as_str().to_owned());
    }
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

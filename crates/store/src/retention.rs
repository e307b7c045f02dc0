//! Retention: the store stays bounded. Old delivered notifications (and their attempt history)
//! go, then old steps that no longer have a notification row; dead notifications are kept for
//! twice as long, so an operator has time to redeliver them. Every delete is a small batch in
//! its own transaction, so a purge never holds SQLite's writer for long.

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
    /// steps (and their metrics) created before the cutoff that have no notification row left
    /// (delivered and purged, or never had one). Pending and retrying notifications, and their
    /// steps, are never deleted.
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
        let _gate = self.write_gate().await;
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT step_id FROM webhook_deliveries \
             WHERE (state = 'delivered' AND updated_at < $1) \
                OR (state = 'dead' AND updated_at < $2) \
             ORDER BY updated_at LIMIT $3",
        )
        .bind(cutoff)
        .bind(dead_cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        let ids = ids_of(&rows, "step_id")?;
        let attempts = delete_where_in(&mut tx, "webhook_attempts", "step_id", &ids).await?;
        let deliveries = delete_where_in(&mut tx, "webhook_deliveries", "step_id", &ids).await?;
        tx.commit().await?;
        Ok((deliveries, attempts))
    }

    async fn purge_steps(&self, cutoff: i64, batch: i64) -> Result<u64, StoreError> {
        let _gate = self.write_gate().await;
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(
            "SELECT id FROM steps s WHERE s.created_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.step_id = s.id) \
             ORDER BY s.created_at LIMIT $2",
        )
        .bind(cutoff)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
        let ids = ids_of(&rows, "id")?;
        // Attempts of a notification sent by another SDK's workflow have no row; they go with
        // the step.
        delete_where_in(&mut tx, "webhook_attempts", "step_id", &ids).await?;
        delete_where_in(&mut tx, "step_metrics", "step_id", &ids).await?;
        let steps = delete_where_in(&mut tx, "steps", "id", &ids).await?;
        tx.commit().await?;
        Ok(steps)
    }
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

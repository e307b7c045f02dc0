//! Steps and step metrics.

use crate::batch::Batch;
use crate::deliveries::TakeOnCommit;
use crate::{Notify, NotifyTo, Source, Store, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;
use stephook_core::chat::ChatMessage;
use stephook_core::{DatabaseKind, Step, StepId, StepMetrics, StepStatus, Usage, now_millis};

const STEP_COLUMNS: &str = "id, agent_id, run_id, status, model, provider, prompt_tokens, \
    completion_tokens, total_tokens, stop_reason, error_type, error_data, created_at, updated_at, \
    completed_at, cached_tokens, reasoning_tokens";

/// What a step ends with.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalUpdate {
    pub status: StepStatus,
    pub usage: Option<Usage>,
    pub stop_reason: Option<String>,
    pub error_type: Option<String>,
    pub error_data: Option<serde_json::Value>,
    /// Step time and model-call time, stored with the status (before the notification).
    pub metrics: Option<StepMetrics>,
}

impl TerminalUpdate {
    pub fn new(status: StepStatus) -> Self {
        Self {
            status,
            usage: None,
            stop_reason: None,
            error_type: None,
            error_data: None,
            metrics: None,
        }
    }
}

/// The result of asking a step to reach a terminal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminalTransition {
    /// The step moved from pending to the new state and its notification was queued.
    Applied,
    /// The step was already in exactly that state: nothing changed, nothing was queued.
    AlreadyInState,
}

impl Store {
    /// Inserts a new step; fails if the id exists.
    pub async fn insert_step(&self, step: &Step) -> Result<(), StoreError> {
        let mut batch = Batch::new(self.kind);
        write_step(&mut batch, step, false);
        batch.commit(self).await?;
        Ok(())
    }

    /// Inserts or replaces a step (and its metrics) by id, in one transaction: what an activity
    /// that may be retried needs, since a retry must never store the step twice. With `notify`,
    /// the step's notification row is written in the same transaction (due after Temporal's
    /// grace period for its fast path); an existing row is kept as it is, so a retry never
    /// re-queues a delivered notification.
    pub async fn upsert_step(
        &self,
        step: &Step,
        metrics: Option<StepMetrics>,
        notify: Option<Notify<'_>>,
    ) -> Result<(), StoreError> {
        self.upsert_step_with_messages(step, metrics, &[], notify)
            .await
    }

    /// [`Self::upsert_step`], with the step's messages (the assistant message and the tool
    /// results), written in the same transaction.
    pub async fn upsert_step_with_messages(
        &self,
        step: &Step,
        metrics: Option<StepMetrics>,
        messages: &[ChatMessage],
        notify: Option<Notify<'_>>,
    ) -> Result<(), StoreError> {
        upsert_batch(self.kind, step, metrics, messages, notify)?
            .commit(self)
            .await?;
        Ok(())
    }

    /// [`Self::upsert_step_with_messages`] of a step notified to `take`'s endpoint (due after
    /// `after`) and, when the step is terminal, the take of its notification's row for the send
    /// that follows the commit, in the same transaction. True when the row was taken; not when
    /// it was already delivered, is held by someone else, or is dead (a retried `create_step`):
    /// then the send takes its own look.
    pub async fn upsert_step_and_take(
        &self,
        step: &Step,
        metrics: Option<StepMetrics>,
        messages: &[ChatMessage],
        take: TakeOnCommit<'_>,
        after: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let notify = Notify {
            after,
            to: NotifyTo::Endpoint(take.endpoint),
        };
        let mut batch = upsert_batch(self.kind, step, metrics, messages, Some(notify))?;
        if step.status.is_terminal() {
            crate::deliveries::push_take(&mut batch, &step.id, take);
        }
        Ok(!batch.commit(self).await?.is_empty())
    }

    pub async fn step(&self, id: &StepId) -> Result<Option<Step>, StoreError> {
        let row = sqlx::query(&format!("SELECT {STEP_COLUMNS} FROM steps WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(step_from_row).transpose()
    }

    /// The newest steps first, optionally only those of one run.
    pub async fn list_steps(
        &self,
        run_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Step>, StoreError> {
        let rows = match run_id {
            Some(run_id) => {
                sqlx::query(&format!(
                    "SELECT {STEP_COLUMNS} FROM steps WHERE run_id = $1 \
                     ORDER BY created_at DESC, id LIMIT $2"
                ))
                .bind(run_id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {STEP_COLUMNS} FROM steps ORDER BY created_at DESC, id LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(step_from_row).collect()
    }

    /// The step's messages, in order (empty for a step that has none).
    pub async fn step_messages(&self, id: &StepId) -> Result<Vec<ChatMessage>, StoreError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT message FROM step_messages WHERE step_id = $1 ORDER BY seq")
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|raw| {
                serde_json::from_str(raw).map_err(|e| StoreError::corrupt("step_messages", e))
            })
            .collect()
    }

    pub async fn step_metrics(&self, id: &StepId) -> Result<Option<StepMetrics>, StoreError> {
        let row = sqlx::query(
            "SELECT step_ms, model_call_ms, tool_execution_ms FROM step_metrics WHERE step_id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(StepMetrics {
                step_ms: row.try_get("step_ms")?,
                model_call_ms: row.try_get("model_call_ms")?,
                tool_execution_ms: row.try_get("tool_execution_ms")?,
            })
        })
        .transpose()
    }

    /// Moves a pending step to a terminal state and, when `notify` is given, queues its
    /// notification in the same transaction, so a committed step always has its outbox row.
    /// `None` is for a process with no webhook configured: nothing to queue.
    pub async fn complete_step(
        &self,
        id: &StepId,
        update: &TerminalUpdate,
        notify: Option<Notify<'_>>,
    ) -> Result<TerminalTransition, StoreError> {
        let now = now_millis();
        let gate = self.write_gate().await;
        let mut tx = gate.begin().await?;
        // Write first, read only when nothing changed: an SQLite transaction that reads and then
        // writes can fail to upgrade its lock under concurrency.
        let usage = update.usage.clone().unwrap_or_default();
        let changed = sqlx::query(
            "UPDATE steps SET status = $1, \
               model = COALESCE($2, model), provider = COALESCE($3, provider), \
               prompt_tokens = $4, completion_tokens = $5, total_tokens = $6, \
               stop_reason = $7, error_type = $8, error_data = $9, \
               updated_at = $10, completed_at = $11 \
             WHERE id = $12 AND status = 'pending'",
        )
        .bind(update.status.as_str())
        .bind(usage.model)
        .bind(usage.provider)
        .bind(usage.prompt_tokens)
        .bind(usage.completion_tokens)
        .bind(usage.total_tokens)
        .bind(update.stop_reason.clone())
        .bind(update.error_type.clone())
        .bind(update.error_data.as_ref().map(|v| v.to_string()))
        .bind(now)
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 1 {
            let mut batch = Batch::new(self.kind);
            if let Some(metrics) = update.metrics {
                write_metrics(&mut batch, id, metrics);
            }
            if let Some(notify) = notify {
                crate::deliveries::enqueue(
                    &mut batch,
                    self.kind,
                    (id, update.status),
                    Source::Direct,
                    notify,
                    true,
                );
            }
            batch.execute(&mut tx).await?;
            tx.commit().await?;
            return Ok(TerminalTransition::Applied);
        }
        let current: Option<String> = sqlx::query_scalar("SELECT status FROM steps WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        tx.rollback().await?;
        let current = current
            .ok_or_else(|| StoreError::StepNotFound(id.clone()))?
            .parse::<StepStatus>()
            .map_err(|e| StoreError::corrupt("steps", e))?;
        if current == update.status {
            Ok(TerminalTransition::AlreadyInState)
        } else {
            Err(StoreError::Conflict {
                id: id.clone(),
                current,
                requested: update.status,
            })
        }
    }
}

/// The writes of an upsert (see [`Store::upsert_step`]), encoded before the commit takes the
/// gate: the write lock is held only while it writes.
fn upsert_batch<'q>(
    kind: DatabaseKind,
    step: &'q Step,
    metrics: Option<StepMetrics>,
    messages: &'q [ChatMessage],
    notify: Option<Notify<'q>>,
) -> Result<Batch<'q>, StoreError> {
    let mut batch = Batch::new(kind);
    write_step(&mut batch, step, true);
    if !messages.is_empty() {
        write_messages(&mut batch, &step.id, messages)?;
    }
    if let Some(notify) = notify.filter(|_| step.status.is_terminal()) {
        crate::deliveries::enqueue(
            &mut batch,
            kind,
            (&step.id, step.status),
            Source::Temporal,
            notify,
            false,
        );
    }
    if let Some(metrics) = metrics {
        write_metrics(&mut batch, &step.id, metrics);
    }
    Ok(batch)
}

fn write_step<'q>(batch: &mut Batch<'q>, step: &'q Step, replace: bool) {
    let on_conflict = if replace {
        " ON CONFLICT (id) DO UPDATE SET agent_id = excluded.agent_id, run_id = excluded.run_id, \
          status = excluded.status, model = excluded.model, provider = excluded.provider, \
          prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, \
          total_tokens = excluded.total_tokens, stop_reason = excluded.stop_reason, \
          error_type = excluded.error_type, error_data = excluded.error_data, \
          updated_at = excluded.updated_at, completed_at = excluded.completed_at, \
          cached_tokens = excluded.cached_tokens, reasoning_tokens = excluded.reasoning_tokens"
    } else {
        ""
    };
    batch
        .push(format!(
            "INSERT INTO steps ({STEP_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
               $17){on_conflict}"
        ))
        .bind(step.id.as_str())
        .bind(step.agent_id.as_str())
        .bind(step.run_id.clone())
        .bind(step.status.as_str())
        .bind(step.usage.model.clone())
        .bind(step.usage.provider.clone())
        .bind(step.usage.prompt_tokens)
        .bind(step.usage.completion_tokens)
        .bind(step.usage.total_tokens)
        .bind(step.stop_reason.clone())
        .bind(step.error_type.clone())
        .bind(step.error_data.as_ref().map(|v| v.to_string()))
        .bind(step.created_at)
        .bind(step.updated_at)
        .bind(step.completed_at)
        .bind(step.usage.cached_tokens)
        .bind(step.usage.reasoning_tokens);
}

/// Replaces the step's messages (a retried `create_step` writes the same ones again).
fn write_messages<'q>(
    batch: &mut Batch<'q>,
    id: &'q StepId,
    messages: &[ChatMessage],
) -> Result<(), StoreError> {
    batch
        .push("DELETE FROM step_messages WHERE step_id = $1")
        .bind(id.as_str());
    for (seq, message) in messages.iter().enumerate() {
        let text =
            serde_json::to_string(message).map_err(|e| StoreError::corrupt("step_messages", e))?;
        batch
            .push("INSERT INTO step_messages (step_id, seq, message) VALUES ($1, $2, $3)")
            .bind(id.as_str())
            .bind(i64::try_from(seq).unwrap_or(i64::MAX))
            .bind(text);
    }
    Ok(())
}

fn write_metrics<'q>(batch: &mut Batch<'q>, id: &'q StepId, metrics: StepMetrics) {
    batch
        .push(
            "INSERT INTO step_metrics (step_id, step_ms, model_call_ms, recorded_at, \
           tool_execution_ms) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (step_id) DO UPDATE SET step_ms = excluded.step_ms, \
         model_call_ms = excluded.model_call_ms, recorded_at = excluded.recorded_at, \
         tool_execution_ms = excluded.tool_execution_ms",
        )
        .bind(id.as_str())
        .bind(metrics.step_ms)
        .bind(metrics.model_call_ms)
        .bind(now_millis())
        .bind(metrics.tool_execution_ms);
}

pub(crate) fn step_from_row(row: &AnyRow) -> Result<Step, StoreError> {
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let error_data: Option<String> = row.try_get("error_data")?;
    Ok(Step {
        id: StepId::parse(&id).map_err(|e| StoreError::corrupt("steps", e))?,
        agent_id: row.try_get("agent_id")?,
        run_id: row.try_get("run_id")?,
        status: status
            .parse()
            .map_err(|e| StoreError::corrupt("steps", e))?,
        usage: Usage {
            model: row.try_get("model")?,
            provider: row.try_get("provider")?,
            prompt_tokens: row.try_get("prompt_tokens")?,
            completion_tokens: row.try_get("completion_tokens")?,
            total_tokens: row.try_get("total_tokens")?,
            cached_tokens: row.try_get("cached_tokens")?,
            reasoning_tokens: row.try_get("reasoning_tokens")?,
        },
        stop_reason: row.try_get("stop_reason")?,
        error_type: row.try_get("error_type")?,
        error_data: error_data
            .map(|raw| serde_json::from_str(&raw))
            .transpose()
            .map_err(|e| StoreError::corrupt("steps", e))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}

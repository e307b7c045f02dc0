//! Reading steps for the HTTP API: filtered, keyset-paged lists in both orders, and a step with
//! its metrics in one query. Pages are keyed on `(created_at, id)`, which is unique, so paging
//! visits every step exactly once even when many share a timestamp.

use crate::sql_args::{SortOrder, SqlArgs, keyset_after};
use crate::steps::step_from_row;
use crate::{Store, StoreError};
use sqlx::Row;
use sqlx::any::AnyRow;
use stephook_core::{Step, StepId, StepMetrics, StepStatus};

const STEP_COLUMNS_S: &str = "s.id, s.agent_id, s.run_id, s.status, s.model, s.provider, \
    s.prompt_tokens, s.completion_tokens, s.total_tokens, s.stop_reason, s.error_type, \
    s.error_data, s.created_at, s.updated_at, s.completed_at, s.cached_tokens, \
    s.reasoning_tokens, m.step_ms, m.model_call_ms, m.tool_execution_ms";
const FROM_STEPS: &str = "steps s LEFT JOIN step_metrics m ON m.step_id = s.id";

/// A page cursor: the step the page starts after (or ends before).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepCursor {
    /// Steps after this one in the requested order.
    After(StepId),
    /// Steps before this one in the requested order (the ones closest to it).
    Before(StepId),
}

/// Which steps to list. Dates are Unix milliseconds: `start_ms` inclusive, `end_ms` exclusive.
#[derive(Debug, Clone)]
pub struct StepQuery {
    pub agent_id: Option<String>,
    pub run_id: Option<String>,
    pub model: Option<String>,
    pub status: Option<StepStatus>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub order: SortOrder,
    pub cursor: Option<StepCursor>,
    pub limit: i64,
}

impl Default for StepQuery {
    fn default() -> Self {
        Self {
            agent_id: None,
            run_id: None,
            model: None,
            status: None,
            start_ms: None,
            end_ms: None,
            order: SortOrder::Desc,
            cursor: None,
            limit: 50,
        }
    }
}

/// A step with its metrics, when they were recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct StepWithMetrics {
    pub step: Step,
    pub metrics: Option<StepMetrics>,
}

impl Store {
    /// One step and its metrics.
    pub async fn step_with_metrics(
        &self,
        id: &StepId,
    ) -> Result<Option<StepWithMetrics>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {STEP_COLUMNS_S} FROM {FROM_STEPS} WHERE s.id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(with_metrics_from_row).transpose()
    }

    /// A page of steps. A cursor step that does not exist is `StepNotFound`.
    pub async fn query_steps(&self, query: &StepQuery) -> Result<Vec<StepWithMetrics>, StoreError> {
        let mut args = SqlArgs::default();
        let mut filters = Vec::new();
        if let Some(agent_id) = &query.agent_id {
            filters.push(format!("s.agent_id = {}", args.text(agent_id)));
        }
        if let Some(run_id) = &query.run_id {
            filters.push(format!("s.run_id = {}", args.text(run_id)));
        }
        if let Some(model) = &query.model {
            filters.push(format!("s.model = {}", args.text(model)));
        }
        if let Some(status) = query.status {
            filters.push(format!("s.status = {}", args.text(status.as_str())));
        }
        if let Some(start) = query.start_ms {
            filters.push(format!("s.created_at >= {}", args.int(start)));
        }
        if let Some(end) = query.end_ms {
            filters.push(format!("s.created_at < {}", args.int(end)));
        }
        // A `before` page walks backwards from its cursor and is turned around afterwards, so
        // it holds the steps closest to the cursor, in the requested order.
        let (walk, cursor) = match &query.cursor {
            None => (query.order, None),
            Some(StepCursor::After(id)) => (query.order, Some(id)),
            Some(StepCursor::Before(id)) => (query.order.reversed(), Some(id)),
        };
        if let Some(id) = cursor {
            let created_at = self.step_created_at(id).await?;
            filters.push(keyset_after(
                &mut args,
                "s.created_at",
                "s.id",
                walk,
                created_at,
                id.as_str(),
            ));
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let limit = args.int(query.limit);
        let dir = walk.sql();
        let sql = format!(
            "SELECT {STEP_COLUMNS_S} FROM {FROM_STEPS} {filter} \
             ORDER BY s.created_at {dir}, s.id {dir} LIMIT {limit}"
        );
        let rows = args
            .bind_all(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await?;
        let mut steps = rows
            .iter()
            .map(with_metrics_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if walk != query.order {
            steps.reverse();
        }
        Ok(steps)
    }

    async fn step_created_at(&self, id: &StepId) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT created_at FROM steps WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::StepNotFound(id.clone()))
    }

    /// Whether the store answers a trivial query (for health checks).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: i64 = sqlx::query_scalar("SELECT CAST(1 AS BIGINT)")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }
}

fn with_metrics_from_row(row: &AnyRow) -> Result<StepWithMetrics, StoreError> {
    let step = step_from_row(row)?;
    let step_ms: Option<i64> = row.try_get("step_ms")?;
    let model_call_ms: Option<i64> = row.try_get("model_call_ms")?;
    let metrics = match (step_ms, model_call_ms) {
        (Some(step_ms), Some(model_call_ms)) => Some(StepMetrics {
            step_ms,
            model_call_ms,
            tool_execution_ms: row.try_get("tool_execution_ms")?,
        }),
        _ => None,
    };
    Ok(StepWithMetrics { step, metrics })
}

//! Reading deliveries for the HTTP API and its console: keyset pages over `(created_at,
//! step_id)`, newest first, so a table of 10,000 rows is read one bounded page at a time and a
//! row never moves between pages when a dispatcher updates it.

use super::{Delivery, DeliveryState, delivery_from_row, select_deliveries};
use crate::sql_args::{SortOrder, SqlArgs, keyset_after};
use crate::{Store, StoreError};
use stephook_core::StepId;

/// Which deliveries to list: newest first, after `after` (the last step id of the previous page).
/// Dates are Unix milliseconds: `created_from` inclusive, `created_before` exclusive.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub state: Option<DeliveryState>,
    pub step_id: Option<StepId>,
    /// Only the notifications of this run's steps.
    pub run_id: Option<String>,
    pub created_from: Option<i64>,
    pub created_before: Option<i64>,
    pub after: Option<StepId>,
    pub limit: i64,
}

impl Store {
    /// A page of deliveries, newest first. A cursor that names no delivery is `StepNotFound`.
    pub async fn query_deliveries(
        &self,
        query: &DeliveryQuery,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut args = SqlArgs::default();
        let mut filters = Vec::new();
        if let Some(state) = query.state {
            filters.push(format!("d.state = {}", args.text(state.as_str())));
        }
        if let Some(id) = &query.step_id {
            filters.push(format!("d.step_id = {}", args.text(id.as_str())));
        }
        if let Some(run_id) = &query.run_id {
            filters.push(format!("s.run_id = {}", args.text(run_id.as_str())));
        }
        if let Some(from) = query.created_from {
            filters.push(format!("d.created_at >= {}", args.int(from)));
        }
        if let Some(before) = query.created_before {
            filters.push(format!("d.created_at < {}", args.int(before)));
        }
        if let Some(after) = &query.after {
            let created_at: i64 =
                sqlx::query_scalar("SELECT created_at FROM webhook_deliveries WHERE step_id = $1")
                    .bind(after.as_str())
                    .fetch_optional(&self.pool)
                    .await?
                    .ok_or_else(|| StoreError::StepNotFound(after.clone()))?;
            filters.push(keyset_after(
                &mut args,
                "d.created_at",
                "d.step_id",
                SortOrder::Desc,
                created_at,
                after.as_str(),
            ));
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", filters.join(" AND "))
        };
        let limit = args.int(query.limit);
        let sql = format!(
            "{} {filter} ORDER BY d.created_at DESC, d.step_id DESC LIMIT {limit}",
            select_deliveries(self.kind)
        );
        let rows = args
            .bind_all(sqlx::query(&sql))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(delivery_from_row).collect()
    }
}

//! Fenced claims. A claim marks due rows with a fresh claim token and leases them on the
//! database clock: the lease is written as the row's next due time, so a dispatcher that dies
//! holding rows loses them when the lease runs out, and any dispatcher sends them then. Only the
//! holder of the current token can record an attempt (see `attempts.rs`), so a dispatcher whose
//! lease ran out can no longer change the row.

use super::{WAITING_STATES, step_id_from_row};
use crate::clock::now_sql;
use crate::{Store, StoreError};
use sqlx::Row;
use stephook_core::{DatabaseKind, StepId, now_millis};

/// Which rows a dispatcher may claim: a process only sends what it is responsible for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimScope {
    /// Every due row (a long-running worker or `stephook serve`).
    All,
    /// The rows of one agent run (`stephook run --direct` sends its own steps only).
    Run(String),
    /// Exactly these rows (`stephook deliveries redeliver --now`).
    Steps(Vec<StepId>),
}

/// A due delivery taken by one dispatcher for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    pub step_id: StepId,
    /// The claim's token: recording the attempt needs it.
    pub token: String,
    /// The dispatcher's attempts before this one (indexes the retry schedule).
    pub scheduled_attempts: i64,
}

impl ClaimScope {
    /// The extra condition on `step_id`, with placeholders numbered from `first`.
    fn condition(&self, first: usize) -> String {
        match self {
            Self::All => String::new(),
            Self::Run(_) => {
                format!(" AND step_id IN (SELECT id FROM steps WHERE run_id = ${first})")
            }
            Self::Steps(ids) => {
                let placeholders: Vec<String> =
                    (0..ids.len()).map(|i| format!("${}", first + i)).collect();
                format!(" AND step_id IN ({})", placeholders.join(", "))
            }
        }
    }
}

impl Store {
    /// Takes up to `limit` due rows within `scope`, leasing them for `lease_ms` from now on the
    /// database clock, under one new claim token. PostgreSQL skips rows another claimer has
    /// locked, so two dispatchers never wait on (or take) the same rows.
    pub async fn claim_due(
        &self,
        scope: &ClaimScope,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if matches!(scope, ClaimScope::Steps(ids) if ids.is_empty()) {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().to_string();
        let db_now = now_sql(self.kind);
        let skip_locked = match self.kind {
            DatabaseKind::Postgres => " FOR UPDATE SKIP LOCKED",
            DatabaseKind::Sqlite => "",
        };
        let sql = format!(
            "UPDATE webhook_deliveries \
               SET next_attempt_at = {db_now} + $1, claim_token = $2, updated_at = $3 \
             WHERE step_id IN ( \
                 SELECT step_id FROM webhook_deliveries \
                 WHERE state IN {WAITING_STATES} AND next_attempt_at <= {db_now}{scope} \
                 ORDER BY next_attempt_at LIMIT $4{skip_locked}) \
             RETURNING step_id, scheduled_attempts",
            scope = scope.condition(5),
        );
        let _gate = self.write_gate().await;
        let mut query = sqlx::query(&sql)
            .bind(lease_ms)
            .bind(token.clone())
            .bind(now_millis())
            .bind(limit);
        match scope {
            ClaimScope::All => {}
            ClaimScope::Run(run_id) => query = query.bind(run_id.clone()),
            ClaimScope::Steps(ids) => {
                for id in ids {
                    query = query.bind(id.as_str().to_owned());
                }
            }
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedDelivery {
                    step_id: step_id_from_row(row)?,
                    token: token.clone(),
                    scheduled_attempts: row.try_get("scheduled_attempts")?,
                })
            })
            .collect()
    }

    /// Restarts the lease of the rows still held under `token`, from now on the database clock;
    /// returns the ones still held (a row whose lease ran out and was claimed again is not).
    pub async fn renew_claims(
        &self,
        token: &str,
        lease_ms: i64,
    ) -> Result<Vec<StepId>, StoreError> {
        let db_now = now_sql(self.kind);
        let _gate = self.write_gate().await;
        let rows = sqlx::query(&format!(
            "UPDATE webhook_deliveries SET next_attempt_at = {db_now} + $1 \
             WHERE claim_token = $2 AND state IN {WAITING_STATES} RETURNING step_id"
        ))
        .bind(lease_ms)
        .bind(token)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(step_id_from_row).collect()
    }

    /// Hands back rows claimed but not attempted (a dispatcher that stops), due at once instead
    /// of after their lease. Rows no longer held under their token are left alone.
    pub async fn release_claims(&self, claims: &[ClaimedDelivery]) -> Result<(), StoreError> {
        if claims.is_empty() {
            return Ok(());
        }
        let db_now = now_sql(self.kind);
        let sql = format!(
            "UPDATE webhook_deliveries SET next_attempt_at = {db_now}, claim_token = NULL \
             WHERE step_id = $1 AND claim_token = $2 AND state IN {WAITING_STATES}"
        );
        let _gate = self.write_gate().await;
        let mut tx = self.pool.begin().await?;
        for claim in claims {
            sqlx::query(&sql)
                .bind(claim.step_id.as_str())
                .bind(claim.token.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

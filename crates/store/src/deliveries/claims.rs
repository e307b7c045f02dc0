//! Dispatchers' fenced claims. A claim marks due rows of the dispatcher's own endpoint with a
//! fresh claim token and leases them on the database clock (`lease_until`; the row's due time
//! moves to the lease's end too, so a dispatcher that dies holding rows loses them when the lease
//! runs out and any dispatcher of that endpoint sends them then). Only the holder of the current
//! token can record an attempt (see `attempts.rs`). A row held by anyone (a dispatcher, or the
//! webhook activity) is never claimed.

use super::{WAITING_STATES, step_id_from_row, unheld};
use crate::clock::now_sql;
use crate::{Store, StoreError};
use sqlx::Row;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use stephook_core::{DatabaseKind, Endpoint, StepId, now_millis};

/// Which rows a dispatcher may claim: a process only sends what it is responsible for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimScope {
    /// Every due row of its endpoint (a long-running worker or `stephook serve`).
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
    /// How the scope is named in the dispatcher registry.
    pub fn label(&self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Run(_) => "run",
            Self::Steps(_) => "steps",
        }
    }

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

    fn bind<'q>(
        &self,
        mut query: Query<'q, sqlx::Any, AnyArguments<'q>>,
    ) -> Query<'q, sqlx::Any, AnyArguments<'q>> {
        match self {
            Self::All => {}
            Self::Run(run_id) => query = query.bind(run_id.clone()),
            Self::Steps(ids) => {
                for id in ids {
                    query = query.bind(id.as_str().to_owned());
                }
            }
        }
        query
    }

    fn is_empty(&self) -> bool {
        matches!(self, Self::Steps(ids) if ids.is_empty())
    }
}

/// The rows a dispatcher of `$1` (its endpoint's fingerprint) may take, within `scope`
/// (placeholders from `$2`): its own endpoint's, and rows no endpoint has taken yet.
fn claimable(kind: DatabaseKind, scope: &ClaimScope) -> String {
    format!(
        "state IN {WAITING_STATES} AND {unheld} AND (endpoint = $1 OR endpoint IS NULL){scope}",
        unheld = unheld(kind),
        scope = scope.condition(2),
    )
}

impl Store {
    /// Takes up to `limit` due rows of `endpoint` within `scope`, leasing them for `lease_ms`
    /// from now on the database clock, under one new claim token. A row no endpoint has taken
    /// yet is bound to this one. PostgreSQL skips rows another claimer has locked, so two
    /// dispatchers never wait on (or take) the same rows.
    pub async fn claim_due(
        &self,
        scope: &ClaimScope,
        endpoint: &Endpoint,
        limit: i64,
        lease_ms: i64,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if scope.is_empty() {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().to_string();
        let db_now = now_sql(self.kind);
        let skip_locked = match self.kind {
            DatabaseKind::Postgres => " FOR UPDATE SKIP LOCKED",
            DatabaseKind::Sqlite => "",
        };
        let n = scope_len(scope) + 2;
        let sql = format!(
            "UPDATE webhook_deliveries \
               SET next_attempt_at = {db_now} + ${lease}, lease_until = {db_now} + ${lease}, \
                   claim_token = ${token_p}, updated_at = ${now_p}, \
                   endpoint = COALESCE(endpoint, $1), endpoint_url = COALESCE(endpoint_url, ${url_p}) \
             WHERE step_id IN ( \
                 SELECT step_id FROM webhook_deliveries \
                 WHERE next_attempt_at <= {db_now} AND {claimable} \
                 ORDER BY next_attempt_at LIMIT ${limit_p}{skip_locked}) \
             RETURNING step_id, scheduled_attempts",
            claimable = claimable(self.kind, scope),
            lease = n,
            token_p = n + 1,
            now_p = n + 2,
            url_p = n + 3,
            limit_p = n + 4,
        );
        let gate = self.write_gate().await;
        let query = scope
            .bind(sqlx::query(&sql).bind(endpoint.fingerprint().to_owned()))
            .bind(lease_ms)
            .bind(token.clone())
            .bind(now_millis())
            .bind(endpoint.shown().to_owned())
            .bind(limit);
        let rows = query.fetch_all(gate.pool()).await?;
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

    /// How long until the earliest row a dispatcher of `endpoint` may take within `scope` is
    /// due, on the database clock (a held row counts from its lease's end); zero when one is due
    /// already, `None` when there is none.
    pub async fn next_due_in_ms(
        &self,
        scope: &ClaimScope,
        endpoint: &Endpoint,
    ) -> Result<Option<i64>, StoreError> {
        if scope.is_empty() {
            return Ok(None);
        }
        let db_now = now_sql(self.kind);
        let sql = format!(
            "SELECT MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until \
                        ELSE next_attempt_at END) - {db_now} \
               AS due_in \
             FROM webhook_deliveries \
             WHERE state IN {WAITING_STATES} AND (endpoint = $1 OR endpoint IS NULL){scope}",
            scope = scope.condition(2),
        );
        let query = scope.bind(sqlx::query(&sql).bind(endpoint.fingerprint().to_owned()));
        let due: Option<i64> = query.fetch_one(&self.pool).await?.try_get("due_in")?;
        Ok(due.map(|ms| ms.max(0)))
    }

    /// Restarts the lease of the rows still held under `token`, from now on the database clock;
    /// returns the ones still held (a row whose lease ran out and was taken by another holder,
    /// or re-queued by an operator, is not).
    pub async fn renew_claims(
        &self,
        token: &str,
        lease_ms: i64,
    ) -> Result<Vec<StepId>, StoreError> {
        let db_now = now_sql(self.kind);
        let gate = self.write_gate().await;
        let rows = sqlx::query(&format!(
            "UPDATE webhook_deliveries SET next_attempt_at = {db_now} + $1, \
               lease_until = {db_now} + $1 \
             WHERE claim_token = $2 AND state IN {WAITING_STATES} RETURNING step_id"
        ))
        .bind(lease_ms)
        .bind(token)
        .fetch_all(gate.pool())
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
            "UPDATE webhook_deliveries SET next_attempt_at = {db_now}, claim_token = NULL, \
               lease_until = NULL \
             WHERE step_id = $1 AND claim_token = $2 AND state IN {WAITING_STATES}"
        );
        let gate = self.write_gate().await;
        let mut tx = gate.begin().await?;
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

/// How many placeholders the scope's condition takes.
fn scope_len(scope: &ClaimScope) -> usize {
    match scope {
        ClaimScope::All => 0,
        ClaimScope::Run(_) => 1,
        ClaimScope::Steps(ids) => ids.len(),
    }
}

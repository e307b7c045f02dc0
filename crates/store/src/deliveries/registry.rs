//! The dispatchers running on this store. Each one heartbeats its row on the database clock, so
//! anyone reading the store can tell which endpoints are served right now (a notification
//! waiting for an endpoint no running dispatcher serves is shown as such), and a worker without a
//! URL knows whether the fleet it belongs to sends webhooks at all: a dispatcher has run on this
//! store within the last day, even if none runs at this very moment (a rolling restart).

use crate::clock::now_sql;
use crate::{Store, StoreError};
use sqlx::Row;
use std::time::Duration;
use stephook_core::{Endpoint, duration_millis};

/// How often a running dispatcher says it is alive.
pub const DISPATCHER_HEARTBEAT: Duration = Duration::from_secs(10);
/// A dispatcher not heard from for this long is taken for gone (three missed heartbeats).
const LIVE_WINDOW: Duration = Duration::from_secs(30);
/// Registrations of dispatchers gone this long are deleted when another one registers; until
/// then they say that the fleet sends webhooks.
pub const FLEET_MEMORY: Duration = Duration::from_secs(86_400);

/// One running dispatcher, as it registers itself.
#[derive(Debug, Clone)]
pub struct DispatcherRegistration {
    /// Unique per dispatcher instance.
    pub id: String,
    pub endpoint: Endpoint,
    /// `all`, `run` or `steps` (see [`crate::ClaimScope::label`]).
    pub scope: &'static str,
    /// Where it runs (host name and process id), for people.
    pub host: String,
}

/// An endpoint that running dispatchers (of scope `all`) serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedEndpoint {
    pub endpoint: Endpoint,
    pub dispatchers: i64,
}

impl Store {
    /// Registers the dispatcher, or says it is still alive; both are the same write.
    pub async fn heartbeat_dispatcher(
        &self,
        registration: &DispatcherRegistration,
    ) -> Result<(), StoreError> {
        let db_now = now_sql(self.kind);
        let gate = self.write_gate().await;
        sqlx::query(&format!(
            "INSERT INTO dispatchers (id, endpoint, endpoint_url, scope, host, started_at, seen_at) \
             VALUES ($1, $2, $3, $4, $5, {db_now}, {db_now}) \
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, stopped_at = NULL"
        ))
        .bind(registration.id.as_str())
        .bind(registration.endpoint.fingerprint())
        .bind(registration.endpoint.shown())
        .bind(registration.scope)
        .bind(registration.host.as_str())
        .execute(gate.pool())
        .await?;
        sqlx::query(&format!(
            "DELETE FROM dispatchers WHERE seen_at < {db_now} - $1"
        ))
        .bind(duration_millis(FLEET_MEMORY))
        .execute(gate.pool())
        .await?;
        Ok(())
    }

    /// A dispatcher that stops says so, so its endpoint stops counting as served at once (its
    /// row stays: the fleet still sends webhooks).
    pub async fn deregister_dispatcher(&self, id: &str) -> Result<(), StoreError> {
        let db_now = now_sql(self.kind);
        let gate = self.write_gate().await;
        sqlx::query(&format!(
            "UPDATE dispatchers SET stopped_at = {db_now} WHERE id = $1"
        ))
        .bind(id)
        .execute(gate.pool())
        .await?;
        Ok(())
    }

    /// Whether a long-running dispatcher (scope `all`) has run on this store within
    /// [`FLEET_MEMORY`]: then the fleet sends webhooks, and a worker without a URL queues its
    /// steps' notifications for it.
    pub async fn fleet_sends_webhooks(&self) -> Result<bool, StoreError> {
        let db_now = now_sql(self.kind);
        let seen: Option<String> = sqlx::query_scalar(&format!(
            "SELECT id FROM dispatchers WHERE scope = 'all' AND seen_at >= {db_now} - $1 LIMIT 1"
        ))
        .bind(duration_millis(FLEET_MEMORY))
        .fetch_optional(&self.pool)
        .await?;
        Ok(seen.is_some())
    }

    /// The endpoints that long-running dispatchers (scope `all`) heard from within the last
    /// 30 s serve. A `run --direct` or `redeliver --now` dispatcher sends only its own rows and
    /// does not count.
    pub async fn served_endpoints(&self) -> Result<Vec<ServedEndpoint>, StoreError> {
        let db_now = now_sql(self.kind);
        let rows = sqlx::query(&format!(
            "SELECT endpoint, MIN(endpoint_url) AS endpoint_url, COUNT(*) AS n FROM dispatchers \
             WHERE scope = 'all' AND stopped_at IS NULL AND seen_at >= {db_now} - $1 \
             GROUP BY endpoint ORDER BY endpoint"
        ))
        .bind(duration_millis(LIVE_WINDOW))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ServedEndpoint {
                    endpoint: Endpoint::from_parts(
                        row.try_get("endpoint")?,
                        row.try_get("endpoint_url")?,
                    ),
                    dispatchers: row.try_get("n")?,
                })
            })
            .collect()
    }
}

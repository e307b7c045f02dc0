//! The retention loop that long-running processes (workers) run beside their dispatcher: every
//! so often it deletes, in bounded batches, what the store no longer needs to keep.

use std::time::Duration;
use stephook_core::{duration_millis, now_millis};
use stephook_store::Store;
use tokio::task::JoinHandle;

/// How long delivered notifications and their steps are kept (dead ones twice as long).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);
pub const MIN_RETENTION: Duration = Duration::from_secs(3_600);
pub const MAX_RETENTION: Duration = Duration::from_secs(3_650 * 86_400);
/// A purge runs this soon after start, then this often.
const FIRST_PURGE_AFTER: Duration = Duration::from_secs(60);
const PURGE_EVERY: Duration = Duration::from_secs(3_600);
/// Rows deleted per transaction.
const PURGE_BATCH: i64 = 500;

/// The retention loop, running on its own task until stopped.
pub struct RunningRetention {
    task: JoinHandle<()>,
}

impl RunningRetention {
    /// Starts purging what is older than `retention`.
    pub fn spawn(store: Store, retention: Duration) -> Self {
        let task = tokio::spawn(async move {
            tokio::time::sleep(FIRST_PURGE_AFTER).await;
            loop {
                purge_once(&store, retention).await;
                tokio::time::sleep(PURGE_EVERY).await;
            }
        });
        Self { task }
    }

    /// Stops the loop (a batch in progress is rolled back by the database).
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn purge_once(store: &Store, retention: Duration) {
    match store
        .purge_expired(now_millis(), duration_millis(retention), PURGE_BATCH)
        .await
    {
        Ok(purged) if purged == Default::default() => {}
        Ok(purged) => tracing::info!(
            deliveries = purged.deliveries,
            attempts = purged.attempts,
            steps = purged.steps,
            "retention: deleted what is older than STEPHOOK_RETENTION"
        ),
        Err(error) => tracing::warn!(%error, "retention: purge failed; trying again later"),
    }
}

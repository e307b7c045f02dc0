//! Whether the fleet this worker belongs to sends webhooks: a worker without a URL still queues
//! its steps' notifications when a dispatcher with one has run on the same store lately (within
//! [`stephook_store::FLEET_MEMORY`], so a rolling restart of the workers that have the URL loses
//! nothing), so which worker of a fleet runs `create_step` never decides whether a step is
//! notified. Read from the store's registry of dispatchers, at most once per [`FLEET_RECHECK`].

use std::time::{Duration, Instant};
use stephook_store::Store;
use tokio::sync::Mutex;

/// How long an answer is reused: `create_step` runs for every step.
const FLEET_RECHECK: Duration = Duration::from_secs(5);

pub(crate) struct FleetWebhooks {
    store: Store,
    last: Mutex<Option<(Instant, bool)>>,
}

impl FleetWebhooks {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            last: Mutex::new(None),
        }
    }

    /// True when a dispatcher with a URL has run on this store lately. A store that cannot be
    /// read counts as yes: a notification queued for nobody is shown as waiting, one never
    /// queued is lost.
    pub(crate) async fn sends_webhooks(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = *last
            && at.elapsed() < FLEET_RECHECK
        {
            return answer;
        }
        let answer = match self.store.fleet_sends_webhooks().await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, "cannot read the dispatcher registry; queueing the notification");
                true
            }
        };
        *last = Some((Instant::now(), answer));
        answer
    }
}

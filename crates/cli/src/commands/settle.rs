//! Waiting, bounded, for a queued notification's attempt to be recorded, so the commands that
//! queue deliveries can report what became of them, even when a running worker's dispatcher took
//! the row before this process did.

use std::time::{Duration, Instant};
use stephook_core::StepId;
use stephook_store::{Delivery, DeliveryState, Store};
use stephook_webhook::WebhookService;

/// Beyond one HTTP timeout, how long a command waits for an attempt to be recorded.
const SETTLE_MARGIN: Duration = Duration::from_secs(5);
const SETTLE_POLL: Duration = Duration::from_millis(50);

/// The deadline for attempts that start now: one HTTP timeout plus a margin.
pub fn deadline(webhook: &WebhookService) -> Instant {
    Instant::now() + webhook.config().timeout + SETTLE_MARGIN
}

/// The delivery once it has left `pending` (an attempt was recorded), or as it stands at
/// `deadline`.
pub async fn settled(
    store: &Store,
    id: &StepId,
    deadline: Instant,
) -> anyhow::Result<Option<Delivery>> {
    loop {
        let delivery = store.delivery(id).await?;
        let waiting = matches!(&delivery, Some(d) if d.state == DeliveryState::Pending);
        if !waiting || Instant::now() >= deadline {
            return Ok(delivery);
        }
        tokio::time::sleep(SETTLE_POLL).await;
    }
}

//! `stephook deliveries list | redeliver`.

use super::settle;
use crate::cli::DeliveriesCommand;
use crate::open;
use stephook_core::StepId;
use stephook_direct::{Dispatcher, DispatcherConfig};
use stephook_store::{ClaimScope, Delivery, DeliveryState, Store};
use stephook_webhook::WebhookService;

/// Dead rows are re-queued (and, with --now, sent) this many at a time: memory stays bounded
/// whatever the number of dead rows.
const REDELIVER_PAGE: i64 = 500;

pub async fn run(command: DeliveriesCommand) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::List {
            state,
            limit,
            store,
        } => {
            let state = state.map(|s| s.parse::<DeliveryState>()).transpose()?;
            let store = open::store(&store).await?;
            let deliveries = store.list_deliveries(state, limit).await?;
            if deliveries.is_empty() {
                println!("no deliveries");
            }
            for delivery in &deliveries {
                println!("{}", summary(delivery));
            }
        }
        DeliveriesCommand::Redeliver {
            step_ids,
            dead,
            now,
            webhook,
            store,
        } => {
            // Parse everything before changing anything.
            let ids = step_ids
                .iter()
                .map(|id| StepId::parse(id))
                .collect::<Result<Vec<_>, _>>()?;
            let sender = if now {
                let webhook = open::webhook(&webhook)?;
                anyhow::ensure!(
                    webhook.is_configured(),
                    "STEP_COMPLETE_WEBHOOK: not set; --now needs somewhere to send to (--webhook-url)"
                );
                Some(webhook)
            } else {
                None
            };
            let store = open::store(&store).await?;
            let mut redelivery = Redelivery {
                store,
                sender,
                queued: 0,
                all_delivered: true,
            };
            if dead {
                let mut after = None;
                loop {
                    let page = redelivery
                        .store
                        .requeue_dead_page(after.as_ref(), REDELIVER_PAGE)
                        .await?;
                    let Some(last) = page.last().cloned() else {
                        break;
                    };
                    redelivery.queued_now(page).await?;
                    after = Some(last);
                }
            } else {
                for id in &ids {
                    redelivery.store.requeue(id).await?;
                }
                redelivery.queued_now(ids).await?;
            }
            redelivery.finish()?;
        }
    }
    Ok(())
}

/// What `deliveries redeliver` has done so far.
struct Redelivery {
    store: Store,
    /// Set with --now: this process sends what it queued.
    sender: Option<WebhookService>,
    queued: usize,
    all_delivered: bool,
}

impl Redelivery {
    /// `ids` were just re-queued: report them, and with --now send exactly them and wait.
    async fn queued_now(&mut self, ids: Vec<StepId>) -> anyhow::Result<()> {
        self.queued += ids.len();
        let Some(webhook) = &self.sender else {
            for id in &ids {
                println!("{id}  queued");
            }
            return Ok(());
        };
        let deadline = settle::deadline(webhook);
        let config = DispatcherConfig {
            scope: ClaimScope::Steps(ids.clone()),
            ..Default::default()
        };
        Dispatcher::new(self.store.clone(), webhook.clone(), config)?
            .drain()
            .await;
        for id in &ids {
            // A running worker's dispatcher may have taken the row first: wait for its result.
            match settle::settled(&self.store, id, deadline).await? {
                Some(delivery) => {
                    self.all_delivered &= delivery.state == DeliveryState::Delivered;
                    println!("{}", summary(&delivery));
                }
                None => println!("{id}  no delivery recorded"),
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match (self.queued, &self.sender) {
            (0, _) => println!("nothing to redeliver"),
            (n, None) => println!(
                "queued {n} notification(s); the dispatcher of a running `stephook worker` \
                 (or `stephook serve`) with a webhook URL sends them"
            ),
            (_, Some(_)) => anyhow::ensure!(
                self.all_delivered,
                "not every notification was delivered (the undelivered ones stay queued for the \
                 workers' retry schedule)"
            ),
        }
        Ok(())
    }
}

fn summary(delivery: &Delivery) -> String {
    format!(
        "{}  {:<9}  step={:<9}  attempts={}  http={}  {}",
        delivery.step_id,
        delivery.state,
        delivery.step_status,
        delivery.attempts,
        delivery
            .last_http_status
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        delivery.last_error.as_deref().unwrap_or("")
    )
}

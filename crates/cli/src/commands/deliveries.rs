//! `stephook deliveries list | redeliver`.

use super::settle;
use crate::cli::DeliveriesCommand;
use crate::open;
use stephook_core::StepId;
use stephook_direct::{Dispatcher, DispatcherConfig};
use stephook_store::{Delivery, DeliveryState};

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
            step_id,
            dead,
            webhook,
            store,
        } => {
            let webhook = open::webhook(&webhook)?;
            anyhow::ensure!(
                webhook.is_configured(),
                "STEP_COMPLETE_WEBHOOK: not set; there is nowhere to redeliver to (--webhook-url)"
            );
            let store = open::store(&store).await?;
            let ids = if dead {
                let ids: Vec<StepId> = store
                    .list_deliveries(Some(DeliveryState::Dead), i64::MAX)
                    .await?
                    .into_iter()
                    .map(|d| d.step_id)
                    .collect();
                store.redeliver_dead().await?;
                ids
            } else {
                let id = StepId::parse(step_id.as_deref().unwrap_or_default())?;
                store.redeliver(&id).await?;
                vec![id]
            };
            if ids.is_empty() {
                println!("no dead deliveries");
                return Ok(());
            }
            // Deliver now, once each; a failure is scheduled for a running dispatcher to retry.
            let deadline = settle::deadline(&webhook);
            Dispatcher::new(store.clone(), webhook, DispatcherConfig::default())
                .drain()
                .await;
            let mut all_delivered = true;
            for id in &ids {
                match settle::settled(&store, id, deadline).await? {
                    Some(delivery) => {
                        all_delivered &= delivery.state == DeliveryState::Delivered;
                        println!("{}", summary(&delivery));
                    }
                    None => println!("{id}  no delivery recorded"),
                }
            }
            anyhow::ensure!(all_delivered, "not every notification was delivered");
        }
    }
    Ok(())
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

//! `stephook steps list | show`: read-only, they never create a store.

use crate::cli::StepsCommand;
use crate::open;
use stephook_api::deliveries::DeliveryView;
use stephook_api::steps::LettaStep;
use stephook_api::time::iso;
use stephook_core::{Step, StepId, run_id_of};

pub async fn run(command: StepsCommand) -> anyhow::Result<()> {
    match command {
        StepsCommand::List {
            run_id,
            limit,
            store,
        } => {
            let store = open::existing_store(&store).await?;
            let run_id = run_id.as_deref().map(run_id_of);
            let steps = store.list_steps(run_id, limit).await?;
            if steps.is_empty() {
                match run_id {
                    Some(run_id) => println!("no steps of run {run_id} in this store"),
                    None => println!("no steps in this store"),
                }
            }
            for step in &steps {
                println!("{}", summary(step));
            }
        }
        StepsCommand::Show { step_id, store } => {
            let id = StepId::parse(&step_id)?;
            let store = open::existing_store(&store).await?;
            let step = store.step_with_metrics(&id).await?.ok_or_else(|| {
                anyhow::anyhow!("step {id} is not in this store (the store is named above)")
            })?;
            let served = store.served_endpoints().await?;
            let delivery = store
                .delivery(&id)
                .await?
                .map(|d| DeliveryView::of(d, &served));
            let shown = serde_json::json!({
                "step": LettaStep::from(step),
                "delivery": delivery,
            });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}

fn summary(step: &Step) -> String {
    format!(
        "{}  {:<9}  agent={}  run={}  tokens={}  created={}",
        step.id,
        step.status,
        step.agent_id,
        step.run_id.as_deref().unwrap_or("-"),
        step.usage.total_tokens,
        iso(step.created_at).unwrap_or_default()
    )
}

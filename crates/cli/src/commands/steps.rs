//! `stephook steps list | show`.

use crate::cli::StepsCommand;
use crate::open;
use stephook_core::{Step, StepId};

pub async fn run(command: StepsCommand) -> anyhow::Result<()> {
    match command {
        StepsCommand::List {
            run_id,
            limit,
            store,
        } => {
            let store = open::store(&store).await?;
            let steps = store.list_steps(run_id.as_deref(), limit).await?;
            if steps.is_empty() {
                println!("no steps");
            }
            for step in &steps {
                println!("{}", summary(step));
            }
        }
        StepsCommand::Show { step_id, store } => {
            let id = StepId::parse(&step_id)?;
            let store = open::store(&store).await?;
            let step = store
                .step(&id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("step {id} not found"))?;
            let metrics = store.step_metrics(&id).await?;
            let delivery = store.delivery(&id).await?;
            let shown = serde_json::json!({
                "step": step,
                "metrics": metrics,
                "delivery": delivery.map(|d| serde_json::json!({
                    "state": d.state.as_str(),
                    "source": d.source,
                    "attempts": d.attempts,
                    "last_http_status": d.last_http_status,
                    "last_error": d.last_error,
                    "next_attempt_at": d.next_attempt_at,
                    "delivered_at": d.delivered_at,
                })),
            });
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}

fn summary(step: &Step) -> String {
    format!(
        "{}  {:<9}  agent={}  run={}  tokens={}",
        step.id,
        step.status,
        step.agent_id,
        step.run_id.as_deref().unwrap_or("-"),
        step.usage.total_tokens
    )
}

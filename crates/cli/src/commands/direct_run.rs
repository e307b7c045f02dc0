//! `stephook run --direct`: an in-process agent loop on the offline step body, notifying
//! through StepManager and the outbox dispatcher.

use super::settle;
use crate::cli::RunArgs;
use crate::open;
use std::time::Instant;
use stephook_core::step_body::plan_step;
use stephook_core::{Message, StepId};
use stephook_direct::{Dispatcher, DispatcherConfig, DispatcherHandle, StepManager};
use stephook_store::{ClaimScope, Delivery, DeliveryState, Store};

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let webhook = open::webhook(&args.webhook)?;
    let schedule = open::retry_schedule(&args.retry_schedule)?;
    let store = open::store(&args.store).await?;
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| format!("run-{}", uuid::Uuid::new_v4()));
    // This process sends its own run's notifications only: other rows in a shared store belong
    // to the workers (and their URL, key and schedule). Without a URL it sends nothing at all.
    let dispatcher = Dispatcher::new(
        store.clone(),
        webhook.clone(),
        DispatcherConfig {
            schedule,
            scope: ClaimScope::Run(run_id.clone()),
            ..Default::default()
        },
    )
    .ok();
    let handle = dispatcher
        .as_ref()
        .map_or_else(DispatcherHandle::unconfigured, Dispatcher::handle);
    let manager = StepManager::new(store.clone(), handle);
    let dispatcher = dispatcher.map(Dispatcher::spawn);

    println!(
        "direct run {run_id}: agent {}, {} steps, webhook {}",
        args.agent_id,
        args.steps,
        if webhook.is_configured() {
            "on"
        } else {
            "off (STEP_COMPLETE_WEBHOOK not set)"
        }
    );
    let outcome = agent_loop(&manager, &args, &run_id).await;
    let ids = match &outcome {
        Ok(ids) | Err((ids, _)) => ids.clone(),
    };
    if webhook.is_configured() {
        report_deliveries(&store, &ids, settle::deadline(&webhook)).await?;
    }
    if let Some(dispatcher) = dispatcher {
        dispatcher.stop().await;
    }
    match outcome {
        Ok(_) => Ok(()),
        Err((_, error)) => Err(error),
    }
}

type LoopResult = Result<Vec<StepId>, (Vec<StepId>, anyhow::Error)>;

/// Runs the steps; on failure or Ctrl-C the current step is stored failed / cancelled (and so
/// notified) before the loop ends.
async fn agent_loop(manager: &StepManager, args: &RunArgs, run_id: &str) -> LoopResult {
    let mut ids = Vec::new();
    let messages: Vec<Message> = args.messages.iter().map(Message::user).collect();
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    for index in 0..args.steps {
        let step = match manager.log_step(&args.agent_id, Some(run_id)).await {
            Ok(step) => step,
            Err(error) => return Err((ids, error.into())),
        };
        ids.push(step.id.clone());
        println!("step {index}  {}  pending", step.id);
        let plan = plan_step(&messages, index);
        tokio::select! {
            () = tokio::time::sleep(plan.delay) => {}
            _ = &mut interrupted => {
                let result = manager.update_step_cancelled(&step.id).await;
                println!("step {index}  {}  cancelled", step.id);
                let error = match result {
                    Ok(_) => anyhow::anyhow!("interrupted: step {index} cancelled"),
                    Err(error) => error.into(),
                };
                return Err((ids, error));
            }
        }
        let result = match plan.result {
            Ok(output) => {
                manager
                    .update_step_success(&step.id, output.usage, Some(output.stop_reason))
                    .await
            }
            Err(failure) => {
                let data = serde_json::json!({ "message": failure.message });
                let stored = manager
                    .update_step_error(&step.id, &failure.error_type, data)
                    .await;
                println!("step {index}  {}  failed", step.id);
                let error = match stored {
                    Ok(_) => anyhow::anyhow!("step {index} failed: {failure}"),
                    Err(error) => error.into(),
                };
                return Err((ids, error));
            }
        };
        if let Err(error) = result {
            return Err((ids, error.into()));
        }
        println!("step {index}  {}  success", step.id);
    }
    Ok(ids)
}

/// Waits (bounded) until each step's first delivery attempt is recorded, then prints where
/// each notification stands.
async fn report_deliveries(store: &Store, ids: &[StepId], deadline: Instant) -> anyhow::Result<()> {
    for id in ids {
        match settle::settled(store, id, deadline).await? {
            Some(delivery) if delivery.state != DeliveryState::Pending => {
                println!("{}", describe(&delivery));
            }
            _ => println!("webhook {id}  still queued (a running `stephook worker` delivers it)"),
        }
    }
    Ok(())
}

fn describe(delivery: &Delivery) -> String {
    let detail = match (&delivery.last_error, delivery.last_http_status) {
        (Some(error), _) => format!(": {error}"),
        (None, Some(status)) => format!(" (HTTP {status})"),
        (None, None) => String::new(),
    };
    let retry = if delivery.next_attempt_at.is_some() {
        "  (will be retried: `stephook deliveries list`)"
    } else {
        ""
    };
    format!(
        "webhook {}  {}{detail}{retry}",
        delivery.step_id, delivery.state
    )
}

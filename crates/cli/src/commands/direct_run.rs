//! `stephook run --direct`: an in-process agent loop on the offline step body, notifying
//! through StepManager and the outbox dispatcher.

use super::settle;
use crate::cli::RunArgs;
use crate::open;
use crate::report::{EXIT_NOTIFICATION_DEAD, ExitWith};
use std::time::Instant;
use stephook_core::step_body::{DEFAULT_ECHO_STEPS, plan_step};
use stephook_core::{Message, StepId, StepMetrics, duration_millis};
use stephook_direct::{Dispatcher, DispatcherConfig, DispatcherHandle, StepManager};
use stephook_store::{ClaimScope, Delivery, DeliveryState, Store};
use tokio::sync::watch;

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
        args.steps.unwrap_or(DEFAULT_ECHO_STEPS),
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
    let dead = if webhook.is_configured() {
        report_deliveries(&store, &ids, settle::deadline(&webhook)).await?
    } else {
        Vec::new()
    };
    if let Some(dispatcher) = dispatcher {
        dispatcher.stop().await;
    }
    outcome.map_err(|(_, error)| error)?;
    if dead.is_empty() {
        return Ok(());
    }
    // The run went through; a script still needs to know that a notification needs a person.
    Err(ExitWith {
        code: EXIT_NOTIFICATION_DEAD,
        message: format!(
            "{} notification(s) dead (the endpoint gave a permanent answer): fix the endpoint, \
             then `stephook deliveries redeliver {}`",
            dead.len(),
            dead.iter()
                .map(StepId::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
    .into())
}

type LoopResult = Result<Vec<StepId>, (Vec<StepId>, anyhow::Error)>;

/// Runs the steps; on failure, or SIGINT / SIGTERM, the current step is stored failed /
/// cancelled (with its metrics, and so notified) before the loop ends.
async fn agent_loop(manager: &StepManager, args: &RunArgs, run_id: &str) -> LoopResult {
    let mut ids = Vec::new();
    let messages: Vec<Message> = args.messages.iter().map(Message::user).collect();
    let (interrupt_tx, mut interrupted) = watch::channel(false);
    let signals = tokio::spawn(async move {
        crate::temporal::worker::shutdown_signal().await;
        let _ = interrupt_tx.send(true);
    });
    let outcome = 'steps: {
        let total = args.steps.unwrap_or(DEFAULT_ECHO_STEPS);
        for index in 0..total {
            let number = index + 1;
            if *interrupted.borrow() {
                break 'steps Err(anyhow::anyhow!(
                    "interrupted before step {number} of {total}"
                ));
            }
            let step = match manager.log_step(&args.agent_id, Some(run_id)).await {
                Ok(step) => step,
                Err(error) => break 'steps Err(error.into()),
            };
            ids.push(step.id.clone());
            println!("step {number}/{total}  {}  pending", step.id);
            let started = Instant::now();
            let plan = plan_step(&messages, index);
            let finished = tokio::select! {
                () = tokio::time::sleep(plan.delay) => true,
                _ = interrupted.wait_for(|stop| *stop) => false,
            };
            // The offline body's wait stands in for the model call.
            let metrics = Some(StepMetrics {
                step_ms: duration_millis(started.elapsed()),
                model_call_ms: duration_millis(started.elapsed().min(plan.delay)),
                tool_execution_ms: None,
            });
            if !finished {
                let stored = manager.update_step_cancelled(&step.id, metrics).await;
                println!("step {number}/{total}  {}  cancelled", step.id);
                break 'steps Err(match stored {
                    Ok(_) => anyhow::anyhow!("interrupted: step {number} of {total} cancelled"),
                    Err(error) => error.into(),
                });
            }
            match plan.result {
                Ok(output) => {
                    let stored = manager
                        .update_step_success(
                            &step.id,
                            output.usage,
                            Some(output.stop_reason),
                            metrics,
                        )
                        .await;
                    if let Err(error) = stored {
                        break 'steps Err(error.into());
                    }
                    println!("step {number}/{total}  {}  success", step.id);
                }
                Err(failure) => {
                    let data = serde_json::json!({ "message": failure.message });
                    let stored = manager
                        .update_step_error(&step.id, &failure.error_type, data, metrics)
                        .await;
                    println!("step {number}/{total}  {}  failed", step.id);
                    break 'steps Err(match stored {
                        Ok(_) => anyhow::anyhow!("step {number} of {total} failed: {failure}"),
                        Err(error) => error.into(),
                    });
                }
            }
        }
        Ok(())
    };
    signals.abort();
    match outcome {
        Ok(()) => Ok(ids),
        Err(error) => Err((ids, error)),
    }
}

/// Waits (bounded) until each step's first delivery attempt is recorded, then prints where
/// each notification stands; returns the dead ones.
async fn report_deliveries(
    store: &Store,
    ids: &[StepId],
    deadline: Instant,
) -> anyhow::Result<Vec<StepId>> {
    let mut dead = Vec::new();
    for id in ids {
        match settle::settled(store, id, deadline).await? {
            Some(delivery) if delivery.state != DeliveryState::Pending => {
                println!("{}", describe(&delivery));
                if delivery.state == DeliveryState::Dead {
                    dead.push(id.clone());
                }
            }
            _ => println!("webhook {id}  still queued (a running `stephook worker` delivers it)"),
        }
    }
    Ok(dead)
}

fn describe(delivery: &Delivery) -> String {
    let detail = match (&delivery.last_error, delivery.last_http_status) {
        (Some(error), _) => format!(": {error}"),
        (None, Some(status)) => format!(" (HTTP {status})"),
        (None, None) => String::new(),
    };
    let retry = match delivery.state {
        DeliveryState::Dead => format!(
            "  (send it again: `stephook deliveries redeliver {}`)",
            delivery.step_id
        ),
        _ if delivery.next_attempt_at.is_some() => {
            "  (will be retried: `stephook deliveries list`)".to_owned()
        }
        _ => String::new(),
    };
    format!(
        "webhook {}  {}{detail}{retry}",
        delivery.step_id, delivery.state
    )
}

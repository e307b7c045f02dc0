//! `stephook deliveries list | show | redeliver`. `list` and `show` only read: they never
//! create a store.

use super::settle;
use crate::cli::DeliveriesCommand;
use crate::open;
use stephook_api::time::iso;
use stephook_core::{Endpoint, StepId};
use stephook_direct::{Dispatcher, DispatcherConfig};
use stephook_store::{
    ClaimScope, Delivery, DeliveryState, Rebind, RequeueOutcome, ServedEndpoint, Store,
};
use stephook_webhook::WebhookService;

/// Dead rows are re-queued (and, with --now, sent) this many at a time: memory stays bounded
/// whatever the number of dead rows.
const REDELIVER_PAGE: i64 = 500;
/// The longest attempt history `show` prints (oldest first).
const MAX_HISTORY_SHOWN: i64 = 1000;

pub async fn run(command: DeliveriesCommand) -> anyhow::Result<()> {
    match command {
        DeliveriesCommand::List {
            state,
            limit,
            store,
        } => {
            let state = state.map(DeliveryState::from);
            let store = open::existing_store(&store).await?;
            let deliveries = store.list_deliveries(state, limit).await?;
            if deliveries.is_empty() {
                match state {
                    Some(state) => println!("no {state} deliveries in this store"),
                    None => println!("no deliveries in this store"),
                }
            }
            let served = store.served_endpoints().await?;
            for delivery in &deliveries {
                println!("{}", summary(delivery));
                if let Some(note) = waiting_note(delivery, &served) {
                    println!("    {note}");
                }
            }
        }
        DeliveriesCommand::Show { step_id, store } => {
            let id = StepId::parse(&step_id)?;
            let store = open::existing_store(&store).await?;
            let delivery = store.delivery(&id).await?.ok_or_else(|| {
                anyhow::anyhow!("no delivery for {id} in this store (the store is named above)")
            })?;
            let served = store.served_endpoints().await?;
            let history = store.attempts(&id, MAX_HISTORY_SHOWN).await?;
            println!("{}", summary(&delivery));
            if let Some(note) = waiting_note(&delivery, &served) {
                println!("    {note}");
            }
            if history.is_empty() {
                println!("no attempts yet");
            }
            for attempt in &history {
                println!(
                    "  {}  {attempt}  ({} ms)",
                    iso(attempt.attempted_at).unwrap_or_default(),
                    attempt.duration_ms
                );
            }
        }
        DeliveriesCommand::Redeliver {
            step_ids,
            dead,
            now,
            to_current_endpoint,
            webhook,
            store,
        } => {
            // Parse everything before changing anything.
            let ids = step_ids
                .iter()
                .map(|id| StepId::parse(id))
                .collect::<Result<Vec<_>, _>>()?;
            let webhook = open::webhook(&webhook)?;
            let current = webhook.config().endpoint();
            anyhow::ensure!(
                !(now || to_current_endpoint) || current.is_some(),
                "STEP_COMPLETE_WEBHOOK: not set; {} needs somewhere to send to (--webhook-url)",
                if now {
                    "--now"
                } else {
                    "--to-current-endpoint"
                }
            );
            let target = to_current_endpoint.then_some(current).flatten();
            let rebind = target.as_ref().map_or(Rebind::Keep, Rebind::To);
            let store = open::store(&store).await?;
            let mut redelivery = Redelivery {
                store,
                sender: now.then_some(webhook),
                queued: 0,
                all_delivered: true,
            };
            if dead {
                let mut after = None;
                loop {
                    let page = redelivery
                        .store
                        .requeue_dead_page(after.as_ref(), REDELIVER_PAGE, rebind)
                        .await?;
                    let Some(last) = page.last().cloned() else {
                        break;
                    };
                    redelivery.queued_now(page).await?;
                    after = Some(last);
                }
            } else {
                let mut queued = Vec::new();
                for id in ids {
                    match redelivery.store.requeue(&id, rebind).await? {
                        RequeueOutcome::Queued => queued.push(id),
                        // Waiting to be sent now: --now sends it from here all the same.
                        RequeueOutcome::AlreadyQueued if now => queued.push(id),
                        RequeueOutcome::AlreadyQueued => {
                            println!(
                                "{id}  already queued: it waits to be sent now; nothing changed"
                            )
                        }
                        RequeueOutcome::InFlight => println!(
                            "{id}  in flight: a dispatcher or the webhook activity is sending it \
                             right now; nothing changed (its result shows in `deliveries list`)"
                        ),
                    }
                }
                redelivery.queued_now(queued).await?;
            }
            if let Some(target) = &target {
                println!("moved to {target}");
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
        if ids.is_empty() {
            return Ok(());
        }
        self.queued += ids.len();
        let Some(webhook) = &self.sender else {
            for id in &ids {
                println!("{id}  queued");
            }
            return Ok(());
        };
        // A row committed for another endpoint is not this process's to send.
        let mine = webhook.config().endpoint();
        let mut ids = ids;
        let mut elsewhere = Vec::new();
        for id in &ids {
            if let Some(delivery) = self.store.delivery(id).await?
                && let (Some(theirs), Some(mine)) = (&delivery.endpoint, &mine)
                && theirs != mine
            {
                elsewhere.push((id.clone(), theirs.clone()));
            }
        }
        ids.retain(|id| !elsewhere.iter().any(|(other, _)| other == id));
        for (id, theirs) in &elsewhere {
            self.all_delivered = false;
            println!(
                "{id}  queued for {theirs}, not sent from here: it was committed for that \
                 endpoint; add --to-current-endpoint to send it to this process's URL"
            );
        }
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
    let state = if delivery.held {
        "sending"
    } else {
        delivery.state.as_str()
    };
    let when = match (
        delivery.is_waiting() && !delivery.held,
        delivery.delivered_at,
    ) {
        (true, _) => delivery
            .next_attempt_at
            .and_then(iso)
            .map(|at| format!("  next={at}")),
        (false, Some(at)) => iso(at).map(|at| format!("  delivered={at}")),
        (false, None) => None,
    };
    format!(
        "{}  {state:<9}  step={:<9}  run={}  attempts={}  http={}  to={}{}  {}",
        delivery.step_id,
        delivery.step_status,
        delivery.run_id.as_deref().unwrap_or("-"),
        delivery.attempts,
        delivery
            .last_http_status
            .map_or_else(|| "-".to_owned(), |s| s.to_string()),
        delivery
            .endpoint
            .as_ref()
            .map_or("(first endpoint to take it)", Endpoint::shown),
        when.unwrap_or_default(),
        delivery.last_error.as_deref().unwrap_or("")
    )
}

/// For a waiting notification no running dispatcher serves: what it waits for.
pub(crate) fn waiting_note(delivery: &Delivery, served: &[ServedEndpoint]) -> Option<String> {
    if !delivery.is_waiting() {
        return None;
    }
    let taken = match &delivery.endpoint {
        None => !served.is_empty(),
        Some(endpoint) => served
            .iter()
            .any(|s| s.endpoint.fingerprint() == endpoint.fingerprint()),
    };
    if taken {
        return None;
    }
    Some(match &delivery.endpoint {
        Some(endpoint) => format!(
            "waiting for {endpoint}: no running dispatcher serves it (start a worker or \
             `stephook serve` with that STEP_COMPLETE_WEBHOOK, or move it with \
             `stephook deliveries redeliver {} --to-current-endpoint`)",
            delivery.step_id
        ),
        None => "waiting for an endpoint: no running dispatcher (start a worker or `stephook \
                 serve` with a STEP_COMPLETE_WEBHOOK)"
            .to_owned(),
    })
}

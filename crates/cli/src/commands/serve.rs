//! `stephook serve`: the HTTP API and console over the step store and, when a webhook URL is
//! configured, the outbox dispatcher, so a deployment without Temporal (direct mode used as a
//! library, redeliveries queued from the console) has a long-running process that delivers and
//! retries. Stops gracefully on SIGINT / SIGTERM.

use crate::cli::ServeArgs;
use stephook_direct::{Dispatcher, DispatcherConfig, RunningRetention};
use stephook_store::ClaimScope;
use stephook_webhook::WebhookService;

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    // Every setting is checked before anything starts.
    let webhook_config = args.webhook.validate()?;
    let api_config = args
        .api
        .validate()?
        .with_current_endpoint(webhook_config.endpoint());
    let schedule = crate::open::retry_schedule(&args.retry_schedule)?;
    let retention = crate::open::retention(&args.retention)?;
    let store_config = args.store.validate()?;

    let store = crate::open::store_from(&store_config).await?;
    let api = stephook_api::bind(&api_config, store.clone()).await?;
    let base = api.base_url();

    let dispatcher = if args.no_dispatch {
        None
    } else {
        let webhook = WebhookService::new(webhook_config)?;
        // Without a URL there is nowhere to deliver: the API still serves and queues.
        Dispatcher::new(
            store.clone(),
            webhook,
            DispatcherConfig {
                schedule,
                scope: ClaimScope::All,
                ..Default::default()
            },
        )
        .ok()
        .map(Dispatcher::spawn)
    };

    // The long-running process of a deployment without workers keeps the store bounded too.
    let retention = RunningRetention::spawn(store.clone(), retention);

    println!("stephook serve is up:");
    println!("  API       {base}/v1/steps/  (Letta clients: base_url={base})");
    println!("  console   {base}/");
    println!("  OpenAPI   {base}/openapi.json");
    println!(
        "  auth      {}",
        if api_config.token.is_some() {
            "Bearer token required (STEPHOOK_API_TOKEN)"
        } else {
            "none (loopback only)"
        }
    );
    println!(
        "  dispatch  {}",
        match (&dispatcher, args.no_dispatch) {
            (Some(_), _) => "on: this process delivers and retries due notifications",
            (None, true) => "off (--no-dispatch)",
            (None, false) => "off: STEP_COMPLETE_WEBHOOK is not set",
        }
    );
    println!("  store     {}", store_config.url);

    let served = api.serve(crate::temporal::shutdown_signal()).await;
    retention.stop();
    if let Some(dispatcher) = dispatcher {
        dispatcher.stop().await;
    }
    store.close().await;
    served?;
    Ok(())
}

//! Turning validated configuration into running parts, with errors that name the variable.

use anyhow::Context as _;
use stephook_core::{DatabaseUrl, StoreArgs, WebhookArgs};
use stephook_store::Store;
use stephook_webhook::WebhookService;

/// Opens the step store; an unusable or unreachable database stops the process with a message
/// naming STEPHOOK_DATABASE_URL.
pub async fn store(args: &StoreArgs) -> anyhow::Result<Store> {
    let config = args.validate()?;
    Store::connect(&config)
        .await
        .with_context(|| format!("{} (--database-url)", DatabaseUrl::VAR))
}

pub fn webhook(args: &WebhookArgs) -> anyhow::Result<WebhookService> {
    Ok(WebhookService::new(args.validate()?)?)
}

//! Turning validated configuration into running parts, with errors that name the variable.

use anyhow::Context as _;
use stephook_core::{DatabaseUrl, StoreArgs, StoreConfig, WebhookArgs};
use stephook_direct::RetrySchedule;
use stephook_store::Store;
use stephook_webhook::WebhookService;

/// Opens the step store; an unusable or unreachable database stops the process with a message
/// naming STEPHOOK_DATABASE_URL.
pub async fn store(args: &StoreArgs) -> anyhow::Result<Store> {
    store_from(&args.validate()?).await
}

pub async fn store_from(config: &StoreConfig) -> anyhow::Result<Store> {
    Store::connect(config)
        .await
        .with_context(|| format!("{} (--database-url)", DatabaseUrl::VAR))
}

/// The direct-mode retry schedule from `--retry-schedule` / STEPHOOK_RETRY_SCHEDULE: each wait
/// between 1 s and 7 days, unless a test lowers the floor with STEPHOOK_RETRY_SCHEDULE_MIN_MS.
pub fn retry_schedule(text: &str) -> anyhow::Result<RetrySchedule> {
    let floor = stephook_direct::min_delay_from_env();
    let delays = RetrySchedule::parse_delays_with_floor(text, floor)
        .map_err(|e| anyhow::anyhow!("STEPHOOK_RETRY_SCHEDULE: {e} (--retry-schedule)"))?;
    Ok(RetrySchedule::new(delays, stephook_direct::DEFAULT_JITTER))
}

/// How long the store keeps what it no longer needs, from `--retention` / STEPHOOK_RETENTION.
pub fn retention(text: &str) -> anyhow::Result<std::time::Duration> {
    stephook_direct::parse_bounded(
        text.trim(),
        stephook_direct::MIN_RETENTION,
        stephook_direct::MAX_RETENTION,
    )
    .map_err(|e| anyhow::anyhow!("STEPHOOK_RETENTION: {e} (--retention)"))
}

pub fn webhook(args: &WebhookArgs) -> anyhow::Result<WebhookService> {
    Ok(WebhookService::new(args.validate()?)?)
}

//! Turning validated configuration into running parts, with errors that name the variable.

use anyhow::Context as _;
use std::path::Path;
use stephook_core::{DatabaseUrl, StoreArgs, StoreConfig, WebhookArgs};
use stephook_direct::RetrySchedule;
use stephook_store::Store;
use stephook_webhook::WebhookService;

/// Opens the step store, creating it if needed (commands that write: worker, serve, run, dev,
/// redeliver); an unusable or unreachable database stops the process with a message naming
/// STEPHOOK_DATABASE_URL. The store is named once in the log (stderr), so nobody wonders which
/// one a command used.
pub async fn store(args: &StoreArgs) -> anyhow::Result<Store> {
    store_from(&args.validate()?).await
}

pub async fn store_from(config: &StoreConfig) -> anyhow::Result<Store> {
    if config.is_default
        && let Some(dir) = config.url.sqlite_path().as_deref().and_then(Path::parent)
    {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "{}: cannot create the default store's directory {} (--database-url)",
                DatabaseUrl::VAR,
                dir.display()
            )
        })?;
    }
    name(config);
    connect(config).await
}

/// Opens a store that must already exist (read-only commands: `steps`, `deliveries list` and
/// `show`): they never create one, and say where they looked when there is none.
pub async fn existing_store(args: &StoreArgs) -> anyhow::Result<Store> {
    let config = args.validate()?;
    if let Some(path) = config.url.sqlite_path()
        && !path.exists()
    {
        anyhow::bail!(
            "no step store at {}: nothing has run against it yet. Run `stephook dev` (or a \
             worker, `serve` or `run --direct`) first, or point at an existing store with {} \
             (--database-url){}",
            path.display(),
            DatabaseUrl::VAR,
            if config.is_default {
                " (this is the per-user default)"
            } else {
                ""
            }
        );
    }
    name(&config);
    connect(&config).await
}

fn name(config: &StoreConfig) {
    static NAMED: std::sync::Once = std::sync::Once::new();
    NAMED.call_once(|| {
        if config.is_default {
            tracing::info!(store = %config.url,
                "step store: the per-user default (STEPHOOK_DATABASE_URL or --database-url for another)");
        } else {
            tracing::info!(store = %config.url, "step store");
        }
    });
}

async fn connect(config: &StoreConfig) -> anyhow::Result<Store> {
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

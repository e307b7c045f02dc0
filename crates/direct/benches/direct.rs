//! `cargo bench -p stephook-direct --bench direct`: figures measured in one run, never asserted
//! in tests. Sizes can be changed with BENCH_LATENCY_STEPS, BENCH_SLOW_MS, BENCH_DELIVERIES and
//! BENCH_CONCURRENCY.
//!
//! (a) how long `update_step_success` keeps its caller when the endpoint takes `--slow-ms` to
//!     answer, for stephook (commit + outbox, HTTP in the background) and for an inline-await
//!     baseline (commit, then await the HTTP call, as the reference does);
//! (b) how many deliveries per second the dispatcher completes to a loopback receiver on SQLite,
//!     with every delivery accounted for.

use axum::Router;
use axum::http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stephook_core::{Secret, StepStatus, StoreArgs, Usage, WebhookArgs};
use stephook_direct::{DEFAULT_CONCURRENCY, Dispatcher, DispatcherConfig, StepManager};
use stephook_store::{DeliveryState, Notify, NotifyTo, Store, TerminalUpdate};
use stephook_webhook::WebhookService;
use tokio::net::TcpListener;

/// The baseline waits for every answer, so it gets few samples.
const BASELINE_STEPS: u32 = 5;
const THROUGHPUT_DEADLINE: Duration = Duration::from_secs(300);

type BenchResult = Result<(), Box<dyn std::error::Error>>;

struct BenchArgs {
    latency_steps: u32,
    slow_ms: u64,
    deliveries: u32,
    concurrency: usize,
}

fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> BenchResult {
    let args = BenchArgs {
        latency_steps: env_or("BENCH_LATENCY_STEPS", 200),
        slow_ms: env_or("BENCH_SLOW_MS", 2000),
        deliveries: env_or("BENCH_DELIVERIES", 20_000),
        concurrency: env_or("BENCH_CONCURRENCY", DEFAULT_CONCURRENCY),
    };
    let dir = tempfile::tempdir()?;
    println!(
        "stephook direct-mode bench (SQLite in {})",
        dir.path().display()
    );
    latency(&args, &dir).await?;
    throughput(&args, &dir).await
}

async fn open_store(
    dir: &tempfile::TempDir,
    name: &str,
) -> Result<Store, Box<dyn std::error::Error>> {
    let url = format!("sqlite://{}", dir.path().join(name).display());
    let config = StoreArgs::at(Secret::new(url)).validate()?;
    Ok(Store::connect(&config).await?)
}

fn webhook(url: &str) -> Result<WebhookService, Box<dyn std::error::Error>> {
    let config = WebhookArgs {
        url: Some(Secret::new(url)),
        timeout_ms: Some("14000".into()),
        ..Default::default()
    }
    .validate()?;
    Ok(WebhookService::new(config)?)
}

async fn latency(args: &BenchArgs, dir: &tempfile::TempDir) -> BenchResult {
    let slow = Duration::from_millis(args.slow_ms);
    let (url, _received) = loopback_receiver(slow).await?;
    let webhook = webhook(&url)?;

    // stephook: commit + outbox row; the dispatcher sends in the background.
    let store = open_store(dir, "latency.db").await?;
    let dispatcher = Dispatcher::new(store.clone(), webhook.clone(), DispatcherConfig::default())?;
    let manager = StepManager::new(store.clone(), dispatcher.handle());
    let dispatcher = dispatcher.spawn();
    let mut ours = Vec::new();
    for _ in 0..args.latency_steps {
        let step = manager.log_step("bench", None).await?;
        let started = Instant::now();
        manager
            .update_step_success(&step.id, Usage::default(), None, None)
            .await?;
        ours.push(started.elapsed());
    }
    dispatcher.stop().await;

    // Baseline: commit, then await the HTTP call before returning to the caller.
    let baseline_store = open_store(dir, "baseline.db").await?;
    let mut baseline = Vec::new();
    for _ in 0..BASELINE_STEPS {
        let step = stephook_core::Step::pending(stephook_core::StepId::new_random(), "bench", None);
        baseline_store.insert_step(&step).await?;
        let started = Instant::now();
        baseline_store
            .complete_step(&step.id, &TerminalUpdate::new(StepStatus::Success), None)
            .await?;
        webhook.send(&step.id, 1).await;
        baseline.push(started.elapsed());
    }
    println!(
        "(a) update_step_success latency, endpoint answering after {} ms",
        args.slow_ms
    );
    print_latency("stephook (outbox)", &mut ours);
    print_latency("inline-await baseline", &mut baseline);
    let ratio = percentile(&baseline, 0.99).as_secs_f64() / percentile(&ours, 0.99).as_secs_f64();
    println!("    p99 baseline / p99 stephook = {ratio:.0}x");
    Ok(())
}

async fn throughput(args: &BenchArgs, dir: &tempfile::TempDir) -> BenchResult {
    let (url, received) = loopback_receiver(Duration::ZERO).await?;
    let store = open_store(dir, "throughput.db").await?;
    let webhook = webhook(&url)?;
    // Queue every notification first (no dispatcher running), then time the dispatcher alone.
    let endpoint = webhook.config().endpoint().ok_or("the bench has a URL")?;
    for _ in 0..args.deliveries {
        let step = stephook_core::Step::pending(stephook_core::StepId::new_random(), "bench", None);
        store.insert_step(&step).await?;
        store
            .complete_step(
                &step.id,
                &TerminalUpdate::new(StepStatus::Success),
                Some(Notify {
                    after: Duration::ZERO,
                    to: NotifyTo::Endpoint(&endpoint),
                }),
            )
            .await?;
    }
    let dispatcher = Dispatcher::new(
        store.clone(),
        webhook,
        DispatcherConfig {
            concurrency: args.concurrency,
            ..Default::default()
        },
    )?;
    let stats = dispatcher.handle();
    let started = Instant::now();
    let dispatcher = dispatcher.spawn();
    let target = u64::from(args.deliveries);
    while stats.stats().delivered() + stats.stats().dead() < target
        && started.elapsed() < THROUGHPUT_DEADLINE
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    dispatcher.stop().await;

    let counts = store.count_deliveries(i64::MAX).await?;
    let delivered = counts
        .iter()
        .find(|(state, _)| *state == DeliveryState::Delivered)
        .map_or(0, |(_, n)| *n);
    let requests = received.load(Ordering::Relaxed);
    println!(
        "(b) dispatcher throughput, SQLite, loopback receiver, concurrency {}",
        args.concurrency
    );
    println!(
        "    {} deliveries in {:.2} s = {:.0} deliveries/s",
        delivered,
        elapsed.as_secs_f64(),
        delivered as f64 / elapsed.as_secs_f64()
    );
    println!(
        "    queued {target}, recorded delivered {delivered}, requests received {requests}, lost {}, duplicated {}",
        target.saturating_sub(u64::try_from(delivered).unwrap_or(0)),
        requests.saturating_sub(target)
    );
    Ok(())
}

fn print_latency(label: &str, samples: &mut [Duration]) {
    samples.sort();
    println!(
        "    {label:<24} n={:<4} p50={:>9.3} ms  p99={:>9.3} ms",
        samples.len(),
        percentile(samples, 0.50).as_secs_f64() * 1e3,
        percentile(samples, 0.99).as_secs_f64() * 1e3
    );
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// A loopback endpoint that answers 200 after `delay` and counts requests.
async fn loopback_receiver(delay: Duration) -> std::io::Result<(String, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let app = Router::new().fallback(move || {
        let counter = Arc::clone(&counter);
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
            StatusCode::OK
        }
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}/bench"), received))
}

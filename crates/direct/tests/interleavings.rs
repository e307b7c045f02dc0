//! The outbox's promise, tried at random: nothing lost, never sent by two holders at once (unless
//! a lease ran out, and then the history says so), every send in the history, and nothing that is
//! still running or waiting deleted. Each case is one seeded schedule of concurrent actors on one
//! store (SQLite, and PostgreSQL when STEPHOOK_TEST_POSTGRES_URL is set):
//!
//! - Temporal-mode steps, each notified by one to three fast-path attempts, some arriving after
//!   the grace period, half of them first sent as `create_step` sends them (the row taken in the
//!   step's own transaction);
//! - direct-mode steps, some running for longer than the retention period;
//! - two dispatchers, and a third whose whole runtime stalls (a blocked thread, as SIGSTOP or a
//!   paused VM would) for up to twice its lease;
//! - operator redeliveries, single and of every dead row;
//! - retention with a period shorter than the case.
//!
//! The receiver answers 2xx, 410, 503 or nothing, each at random, and records which holder sent
//! each request (every holder signs with its own secret) and when. A failing case prints its
//! seed; `STEPHOOK_INTERLEAVING_SEED=<seed>` replays its schedule (the interleaving itself also
//! depends on timing).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stephook_core::{
    Endpoint, SigningSecret, Step, StepId, StepStatus, StoreArgs, Usage, WebhookArgs,
    now_unix_seconds,
};
use stephook_direct::{
    Dispatcher, DispatcherConfig, FastPath, RetrySchedule, RunningDispatcher, StepManager,
};
use stephook_store::testing::{self, TestStore};
use stephook_store::{
    AttemptPath, DeliveryState, Fence, Notify, NotifyTo, Rebind, Store, TerminalTransition,
};
use stephook_webhook::WebhookService;
use stephook_webhook::signing::verify;

/// Cases per database: bounded, so the whole suite stays well under a minute.
const CASES: u64 = 8;
/// The client's HTTP timeout, and how much longer than it a lease lasts.
const HTTP_TIMEOUT_MS: u64 = 200;
const LEASE_MARGIN: Duration = Duration::from_millis(300);
/// Shorter than a case, longer than a step's fast-path window (as 1 h is longer than the
/// activity's 30 s): a step retention has deleted is unknown to the store, and the fast path then
/// sends it as it sends another SDK's steps.
const RETENTION_MS: i64 = 1100;
/// The fast path's attempts come within this long after the step is stored.
const FAST_PATH_WINDOW_MS: u64 = 900;
/// How long each case generates work, then how long it lets the holders finish.
const ACTIVE: Duration = Duration::from_millis(1500);
const SETTLE: Duration = Duration::from_millis(1200);
const TEMPORAL_STEPS: usize = 8;
const DIRECT_STEPS: usize = 6;
/// Every holder signs with its own secret, so the receiver knows who sent what.
const HOLDERS: [(&str, &str); 4] = [
    ("fast", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("d1", "whsec_AfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("d2", "whsec_BfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("stall", "whsec_CfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleavings_keep_the_outbox_promise_on_sqlite() {
    for case in 0..CASES {
        let test = testing::sqlite().await;
        run_case(test, seed(case)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn interleavings_keep_the_outbox_promise_on_postgres() {
    for case in 0..CASES {
        let Some(test) = testing::postgres().await else {
            return;
        };
        run_case(test, seed(case)).await;
    }
}

fn seed(case: u64) -> u64 {
    match std::env::var("STEPHOOK_INTERLEAVING_SEED") {
        Ok(seed) => seed
            .parse()
            .expect("STEPHOOK_INTERLEAVING_SEED is a number"),
        Err(_) => {
            let base = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            base.wrapping_add(case.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        }
    }
}

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Seen {
    step_id: String,
    holder: &'static str,
    arrived: Instant,
    /// When the sender stopped waiting: the answer, or the client's timeout.
    ended: Instant,
    status: u16,
}

struct ReceiverState {
    rng: Mutex<StdRng>,
    seen: Mutex<Vec<Seen>>,
    secrets: Vec<(&'static str, SigningSecret)>,
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived = Instant::now();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let holder = state
        .secrets
        .iter()
        .find(|(_, secret)| {
            verify(
                secret,
                &id,
                &timestamp,
                &signature,
                &body,
                now_unix_seconds(),
            )
            .is_ok()
        })
        .map_or("unknown", |(name, _)| *name);
    let pick: u32 = lock(&state.rng).gen_range(0..100);
    let (status, hold) = match pick {
        0..40 => (200, Duration::ZERO),
        40..55 => (410, Duration::ZERO),
        55..85 => (503, Duration::ZERO),
        // No answer: the sender gives up at its timeout.
        _ => (0, Duration::from_millis(HTTP_TIMEOUT_MS + 100)),
    };
    let ended = if hold.is_zero() {
        Instant::now()
    } else {
        arrived + Duration::from_millis(HTTP_TIMEOUT_MS)
    };
    let index = {
        let mut seen = lock(&state.seen);
        seen.push(Seen {
            step_id: id,
            holder,
            arrived,
            ended,
            status,
        });
        seen.len() - 1
    };
    if !hold.is_zero() {
        let _gave_up = GaveUp {
            state: Arc::clone(&state),
            index,
        };
        tokio::time::sleep(hold).await;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A request left unanswered ends when its sender gives up and closes the connection (the
/// server then drops the handler, and this with it), at the latest at the sender's timeout
/// counted from the arrival. The sender's timeout started before the request arrived, by as long
/// as the request took to get here, which a loaded machine stretches past any fixed slack: the
/// next holder may then send before the arrival plus the timeout, and rightly so.
struct GaveUp {
    state: Arc<ReceiverState>,
    index: usize,
}

impl Drop for GaveUp {
    fn drop(&mut self) {
        let now = Instant::now();
        if let Some(seen) = lock(&self.state.seen).get_mut(self.index) {
            seen.ended = seen.ended.min(now);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

async fn start_receiver(seed: u64) -> (String, Arc<ReceiverState>) {
    let state = Arc::new(ReceiverState {
        rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5eed)),
        seen: Mutex::new(Vec::new()),
        secrets: HOLDERS
            .iter()
            .map(|(name, secret)| (*name, SigningSecret::parse(secret).expect("a secret")))
            .collect(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let app = Router::new()
        .fallback(receive)
        .with_state(Arc::clone(&state));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, state)
}

fn webhook(url: &str, holder: usize) -> WebhookService {
    WebhookService::new(
        WebhookArgs {
            url: Some(url.into()),
            signing_secret: Some(HOLDERS[holder].1.into()),
            timeout_ms: Some(HTTP_TIMEOUT_MS.to_string()),
            ..Default::default()
        }
        .validate()
        .expect("valid settings"),
    )
    .expect("a client")
}

fn dispatcher_config() -> DispatcherConfig {
    DispatcherConfig {
        concurrency: 4,
        // Long enough that no row runs out of retries within a case: dead means a 410.
        schedule: RetrySchedule::new(vec![Duration::from_millis(100); 40], 0.2),
        idle_poll: Duration::from_millis(50),
        lease_margin: LEASE_MARGIN,
        ..Default::default()
    }
}

/// A dispatcher on its own thread and single-threaded runtime, which a staller blocks for up to
/// twice its lease at random moments: nothing of it runs meanwhile, as under SIGSTOP. It opens a
/// pool of its own, as another process would: a PostgreSQL connection belongs to the runtime that
/// opened it, and one it left in a shared pool fails in the others once its runtime is gone.
struct StallingDispatcher {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl StallingDispatcher {
    fn start(store_url: String, webhook: WebhookService, seed: u64) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let config = StoreArgs::at(store_url.as_str())
                    .validate()
                    .expect("the test store's URL");
                let store = Store::connect(&config).await.expect("a pool of its own");
                let dispatcher =
                    Dispatcher::new(store.clone(), webhook, dispatcher_config()).expect("a URL");
                let (quiet_tx, quiet_rx) = tokio::sync::watch::channel(false);
                let staller = tokio::spawn(async move {
                    let mut rng = StdRng::seed_from_u64(seed ^ 0x57a1);
                    while !*quiet_rx.borrow() {
                        tokio::time::sleep(Duration::from_millis(rng.gen_range(50..300))).await;
                        // Blocks the thread: the dispatcher's loop, sends and recorder stop.
                        std::thread::sleep(Duration::from_millis(rng.gen_range(100..1000)));
                    }
                });
                dispatcher
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
                let _ = quiet_tx.send(true);
                let _ = staller.await;
                store.close().await;
            });
        });
        Self { stop, thread }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::task::spawn_blocking(move || self.thread.join())
            .await
            .expect("join")
            .expect("the stalling dispatcher did not panic");
    }
}

/// Every attempt the history has held at any time (retention deletes delivered rows' history
/// while the case runs), keyed so that re-reads do not count twice.
/// Each attempt's path, fence and outcome label.
type Mirror = Arc<Mutex<BTreeMap<(String, String, i64, String), (AttemptPath, Fence, String)>>>;

async fn mirror_history(store: &Store, ids: &[StepId], mirror: &Mirror) {
    for id in ids {
        let Ok(attempts) = store.attempts(id, 1000).await else {
            continue;
        };
        let mut mirror = lock(mirror);
        for a in attempts {
            let key = (
                id.to_string(),
                a.holder.clone().unwrap_or_default(),
                a.attempted_at,
                a.path.as_str().to_owned(),
            );
            mirror.insert(key, (a.path, a.fence, a.outcome));
        }
    }
}

async fn run_case(test: TestStore, seed: u64) {
    eprintln!("interleaving case: seed {seed} (STEPHOOK_INTERLEAVING_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);
    let store = test.store.clone();
    let (url, receiver) = start_receiver(seed).await;
    let endpoint = Endpoint::of(&url.parse().expect("a URL"));
    let started = Instant::now();

    // Holders: two dispatchers, one that stalls, the fast path.
    let d1 = Dispatcher::new(store.clone(), webhook(&url, 1), dispatcher_config()).unwrap();
    let manager = StepManager::new(store.clone(), d1.handle());
    let d1: RunningDispatcher = d1.spawn();
    let d2 = Dispatcher::new(store.clone(), webhook(&url, 2), dispatcher_config())
        .unwrap()
        .spawn();
    let stall = StallingDispatcher::start(test.url.clone(), webhook(&url, 3), seed);
    let fast_path = FastPath::new(store.clone(), webhook(&url, 0), Duration::from_millis(400))
        .with_lease_margin(LEASE_MARGIN);

    let ids: Arc<Mutex<Vec<StepId>>> = Arc::default();
    let terminal: Arc<Mutex<HashSet<StepId>>> = Arc::default();
    let running: Arc<Mutex<HashSet<StepId>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();

    // Temporal-mode steps: stored with their row, due after a random grace, notified by one to
    // three fast-path attempts, some after the grace ran out. Half are stored as `create_step`
    // stores them on a worker with a URL: the row taken in the step's own transaction and sent
    // at once (the early send), before the attempts of the webhook activity.
    for _ in 0..TEMPORAL_STEPS {
        let at = Duration::from_millis(rng.gen_range(0..800));
        let grace = Duration::from_millis(rng.gen_range(0..400));
        let taken_on_commit = rng.gen_bool(0.5);
        let attempts: Vec<Duration> = (0..rng.gen_range(1..=3))
            .map(|_| Duration::from_millis(rng.gen_range(0..FAST_PATH_WINDOW_MS)))
            .collect();
        let (store, endpoint, fast_path) = (store.clone(), endpoint.clone(), fast_path.clone());
        let (ids, terminal) = (Arc::clone(&ids), Arc::clone(&terminal));
        tasks.spawn(async move {
            tokio::time::sleep(at).await;
            let mut step = Step::pending(StepId::new_random(), "agent", Some("temporal".into()));
            step.status = StepStatus::Success;
            let born = Instant::now();
            let early = match fast_path.take_on_commit().filter(|_| taken_on_commit) {
                Some(taken) => store
                    .upsert_step_and_take(&step, None, &[], taken.take(), grace)
                    .await
                    .expect("create_step")
                    .then_some(taken),
                None => {
                    let notify = Notify {
                        after: grace,
                        to: NotifyTo::Endpoint(&endpoint),
                    };
                    store
                        .upsert_step(&step, None, Some(notify))
                        .await
                        .expect("create_step");
                    None
                }
            };
            lock(&ids).push(step.id.clone());
            lock(&terminal).insert(step.id.clone());
            if let Some(taken) = early {
                fast_path.send_taken(&step.id, taken).await;
            }
            let mut attempts = attempts;
            attempts.sort();
            for (n, after) in attempts.into_iter().enumerate() {
                tokio::time::sleep(after.saturating_sub(born.elapsed())).await;
                let attempt = u32::try_from(n + 1).unwrap_or(u32::MAX);
                fast_path
                    .send_once(&step.id, attempt)
                    .await
                    .expect("the store answers");
            }
        });
    }
    // Direct-mode steps: pending for a random time, some past the retention period.
    for _ in 0..DIRECT_STEPS {
        let at = Duration::from_millis(rng.gen_range(0..500));
        let work = Duration::from_millis(rng.gen_range(0..1600));
        let ending = rng.gen_range(0..3);
        let manager = manager.clone();
        let (ids, terminal, running) = (
            Arc::clone(&ids),
            Arc::clone(&terminal),
            Arc::clone(&running),
        );
        tasks.spawn(async move {
            tokio::time::sleep(at).await;
            let step = manager
                .log_step("agent", Some("direct"))
                .await
                .expect("log");
            lock(&ids).push(step.id.clone());
            lock(&running).insert(step.id.clone());
            tokio::time::sleep(work).await;
            let done = match ending {
                0 => {
                    manager
                        .update_step_success(&step.id, Usage::default(), None, None)
                        .await
                }
                1 => {
                    manager
                        .update_step_error(&step.id, "Boom", serde_json::json!({}), None)
                        .await
                }
                _ => manager.update_step_cancelled(&step.id, None).await,
            };
            assert_eq!(
                done.expect("a running step is never deleted under it"),
                TerminalTransition::Applied
            );
            lock(&running).remove(&step.id);
            lock(&terminal).insert(step.id.clone());
        });
    }
    // The operator: single redeliveries (double clicks included) and "every dead one".
    for _ in 0..6 {
        let at = Duration::from_millis(rng.gen_range(200..1500));
        let pick: usize = rng.gen_range(0..1000);
        let twice = rng.gen_bool(0.3);
        let bulk = rng.gen_bool(0.3);
        let (store, ids) = (store.clone(), Arc::clone(&ids));
        tasks.spawn(async move {
            tokio::time::sleep(at).await;
            if bulk {
                store
                    .requeue_dead_page(None, 100, Rebind::Keep)
                    .await
                    .expect("redeliver --dead");
                return;
            }
            let id = {
                let ids = lock(&ids);
                if ids.is_empty() {
                    return;
                }
                ids[pick % ids.len()].clone()
            };
            for _ in 0..if twice { 2 } else { 1 } {
                // A pending step has nothing to send yet; a purged one is gone: both are
                // answers, not failures.
                let _ = store.requeue(&id, Rebind::Keep).await;
            }
        });
    }
    // Retention, with a period shorter than the case, and the history mirror.
    let mirror: Mirror = Arc::default();
    let (quiet_tx, quiet_rx) = tokio::sync::watch::channel(false);
    let background = {
        let (store, ids, mirror, running) = (
            store.clone(),
            Arc::clone(&ids),
            Arc::clone(&mirror),
            Arc::clone(&running),
        );
        tokio::spawn(async move {
            let mut last_purge = Instant::now();
            while !*quiet_rx.borrow() {
                let snapshot = lock(&ids).clone();
                mirror_history(&store, &snapshot, &mirror).await;
                if last_purge.elapsed() >= Duration::from_millis(150) {
                    last_purge = Instant::now();
                    store
                        .purge_expired(stephook_core::now_millis(), RETENTION_MS, 5)
                        .await
                        .expect("the purge never fails");
                    let still_running = lock(&running).clone();
                    for id in still_running {
                        let step = store.step(&id).await.expect("read");
                        assert!(step.is_some(), "retention deleted running step {id}");
                    }
                }
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };

    while let Some(done) = tasks.join_next().await {
        done.expect("an actor failed");
    }
    tokio::time::sleep((ACTIVE + SETTLE).saturating_sub(started.elapsed())).await;
    d1.stop().await;
    d2.stop().await;
    stall.stop().await;
    let _ = quiet_tx.send(true);
    background.await.expect("retention and mirror");
    let ids = lock(&ids).clone();
    mirror_history(&store, &ids, &mirror).await;

    let terminal = lock(&terminal).clone();
    check(&store, &ids, &terminal, &receiver, &mirror, seed).await;
}

/// The promise, checked after a case.
async fn check(
    store: &Store,
    ids: &[StepId],
    terminal: &HashSet<StepId>,
    receiver: &ReceiverState,
    mirror: &Mirror,
    seed: u64,
) {
    let seen = lock(&receiver.seen).clone();
    let mirror = lock(mirror).clone();
    let mut by_step: HashMap<&str, Vec<&Seen>> = HashMap::new();
    for request in &seen {
        assert_ne!(
            request.holder, "unknown",
            "seed {seed}: an unsigned request"
        );
        by_step.entry(&request.step_id).or_default().push(request);
    }
    for id in ids {
        let requests = by_step.remove(id.as_str()).unwrap_or_default();
        let history: Vec<(AttemptPath, Fence, String)> = mirror
            .iter()
            .filter(|((step, ..), _)| step == id.as_str())
            .map(|(_, v)| v.clone())
            .collect();
        let final_answer = requests.iter().any(|r| r.status == 200 || r.status == 410);

        // Nothing lost: a committed terminal step's notification is delivered, dead, or
        // waiting with a due time; a row that is gone was purged after a final answer.
        if terminal.contains(id) {
            match store.delivery(id).await.expect("read") {
                Some(row) => match row.state {
                    DeliveryState::Delivered | DeliveryState::Dead => {}
                    DeliveryState::Pending | DeliveryState::Retrying => assert!(
                        row.next_attempt_at.is_some(),
                        "seed {seed}: {id} waits with no due time: {row:?}"
                    ),
                },
                None => assert!(
                    final_answer,
                    "seed {seed}: {id}'s row is gone without a final answer: {requests:?}"
                ),
            }
        } else {
            assert!(
                store.step(id).await.expect("read").is_some(),
                "seed {seed}: running step {id} deleted"
            );
        }

        // Every send that reached the receiver is in the history, by the path that made it. The
        // history holds more only for sends that never arrived: a sender frozen in the middle of
        // its send (the stalling dispatcher) finds its timeout spent when it wakes, before its
        // request has left, and records that timeout.
        let fast = requests.iter().filter(|r| r.holder == "fast").count();
        let dispatched = requests.len() - fast;
        for (path, arrived) in [
            (AttemptPath::Activity, fast),
            (AttemptPath::Dispatcher, dispatched),
        ] {
            let recorded: Vec<&str> = history
                .iter()
                .filter(|(p, ..)| *p == path)
                .map(|(.., outcome)| outcome.as_str())
                .collect();
            let unanswered = recorded
                .iter()
                .filter(|outcome| matches!(**outcome, "timeout" | "transport"))
                .count();
            assert!(
                arrived <= recorded.len() && recorded.len() - arrived <= unanswered,
                "seed {seed}: {id}: {arrived} {path:?} sends arrived, the history holds \
                 {recorded:?}: {requests:?} {history:?}"
            );
        }

        // No two sends at once, unless a lease ran out and the history says so: only a holder
        // that stalled can lose its lease, so one of the two must be the stalling dispatcher.
        let mut sorted = requests.clone();
        sorted.sort_by_key(|r| r.arrived);
        for (i, first) in sorted.iter().enumerate() {
            for next in &sorted[i + 1..] {
                // A few ms of slack: the receiver's clock starts after the sender's.
                if next.arrived + Duration::from_millis(15) >= first.ended {
                    continue;
                }
                let excused = (first.holder == "stall" || next.holder == "stall")
                    && history
                        .iter()
                        .any(|(_, fence, _)| *fence == Fence::LeaseLost);
                assert!(
                    excused,
                    "seed {seed}: {id} sent by {} and {} at once, no lease ran out: \
                     {sorted:?} {history:?}",
                    first.holder, next.holder
                );
            }
        }
    }
    assert!(
        by_step.is_empty(),
        "seed {seed}: requests for steps the case never made: {:?}",
        by_step.keys()
    );
}

//! The outbox dispatcher: claims due deliveries of its own endpoint, sends them with bounded
//! concurrency, and records each attempt. Claims are fenced: rows are leased on the database
//! clock under a claim token, a row is sent only while this process can prove its lease covers
//! a whole attempt (the lease is restarted before a send when the row waited in the backlog, and
//! a row is dropped unsent when the process stalled past that point), and only the token's
//! holder can record the result. A dispatcher that dies loses nothing: its rows fall due again
//! when the lease runs out. While it runs it says so in the store's registry of dispatchers.

use crate::schedule::RetrySchedule;
use rand::Rng;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stephook_core::{Endpoint, duration_millis, now_millis};
use stephook_store::{
    AttemptRecord, ClaimScope, ClaimedDelivery, DISPATCHER_HEARTBEAT, DeliveryState,
    DispatcherRegistration, Fence, Store, StoreError,
};
use stephook_webhook::{OutcomeClass, WebhookService};
use tokio::sync::{Notify, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;

pub const DEFAULT_CONCURRENCY: usize = 64;
/// The most rows one claim takes (and the most a dispatcher holds unattempted).
const MAX_CLAIM_BATCH: usize = 512;
/// The longest a waiting dispatcher sleeps: other processes may queue rows it is not woken for.
const DEFAULT_IDLE_POLL: Duration = Duration::from_secs(1);
/// A lease outlives the HTTP timeout by this much before the row is due again. A holder may
/// start a send only while less than this has passed since its lease started (on this process's
/// monotonic clock, read before the lease was asked for): the send then ends, at the latest, at
/// the HTTP timeout, before the lease does. A claimed row that waited in the backlog for half
/// of it has its lease restarted before it is sent.
pub const DEFAULT_LEASE_MARGIN: Duration = Duration::from_secs(30);
/// Attempt outcomes written back in one transaction.
const RECORD_BATCH: usize = 512;
const RECORD_RETRIES: u32 = 10;
const RECORD_RETRY_WAIT: Duration = Duration::from_millis(500);
const STORE_ERROR_BACKOFF: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Deliveries in flight at once.
    pub concurrency: usize,
    pub schedule: RetrySchedule,
    pub idle_poll: Duration,
    /// Which rows this dispatcher may send.
    pub scope: ClaimScope,
    /// See [`DEFAULT_LEASE_MARGIN`]; tests that stall a dispatcher shorten it.
    pub lease_margin: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            schedule: RetrySchedule::default(),
            idle_poll: DEFAULT_IDLE_POLL,
            scope: ClaimScope::All,
            lease_margin: DEFAULT_LEASE_MARGIN,
        }
    }
}

/// Only a process configured to send may dispatch: one without a URL would record every row it
/// claimed as undeliverable.
#[derive(Debug, thiserror::Error)]
#[error("STEP_COMPLETE_WEBHOOK is not set: a dispatcher needs somewhere to deliver to")]
pub struct NotConfigured;

/// What the dispatcher did since it started. `delivered`, `retry_scheduled` and `dead` count
/// results recorded on their row; a result refused because the claim was no longer this
/// dispatcher's counts in `stale` only.
#[derive(Debug, Default)]
pub struct DispatcherStats {
    /// Requests sent.
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    pub retry_scheduled: AtomicU64,
    pub dead: AtomicU64,
    /// Results refused because the claim was no longer this dispatcher's.
    pub stale: AtomicU64,
    /// Claimed rows dropped unsent because the lease could not be proven (a stall).
    pub unproven: AtomicU64,
}

impl DispatcherStats {
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    pub fn unproven(&self) -> u64 {
        self.unproven.load(Ordering::Relaxed)
    }
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
    pub fn retry_scheduled(&self) -> u64 {
        self.retry_scheduled.load(Ordering::Relaxed)
    }
    pub fn dead(&self) -> u64 {
        self.dead.load(Ordering::Relaxed)
    }
    pub fn stale(&self) -> u64 {
        self.stale.load(Ordering::Relaxed)
    }
}

/// A dispatcher running on its own task.
pub struct RunningDispatcher {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningDispatcher {
    /// Stops claiming, lets the deliveries in flight finish and be recorded, then returns.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the dispatcher task ended abnormally");
        }
    }
}

/// What a StepManager holds: the endpoint its notifications are for, and a way to wake the
/// dispatcher after a commit.
#[derive(Clone, Debug)]
pub struct DispatcherHandle {
    wake: Arc<Notify>,
    endpoint: Option<Endpoint>,
    stats: Arc<DispatcherStats>,
}

impl DispatcherHandle {
    /// For a StepManager in a process with no webhook configured: nothing is queued, nothing
    /// dispatches.
    pub fn unconfigured() -> Self {
        Self {
            wake: Arc::new(Notify::new()),
            endpoint: None,
            stats: Arc::default(),
        }
    }

    pub fn wake(&self) {
        // notify_one keeps a permit when nobody waits, so a wake between polls is not lost.
        self.wake.notify_one();
    }

    /// The endpoint notifications are queued for; `None` when no URL is configured (then
    /// nothing is queued).
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.endpoint.as_ref()
    }

    pub fn stats(&self) -> &DispatcherStats {
        &self.stats
    }
}

pub struct Dispatcher {
    store: Store,
    webhook: WebhookService,
    config: DispatcherConfig,
    endpoint: Endpoint,
    handle: DispatcherHandle,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Until told to stop.
    Serve,
    /// Until nothing is due now and nothing is in flight.
    Drain,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        webhook: WebhookService,
        config: DispatcherConfig,
    ) -> Result<Self, NotConfigured> {
        let endpoint = webhook.config().endpoint().ok_or(NotConfigured)?;
        let handle = DispatcherHandle {
            wake: Arc::new(Notify::new()),
            endpoint: Some(endpoint.clone()),
            stats: Arc::default(),
        };
        Ok(Self {
            store,
            webhook,
            config,
            endpoint,
            handle,
        })
    }

    pub fn handle(&self) -> DispatcherHandle {
        self.handle.clone()
    }

    /// Delivers until `shutdown` completes, then finishes the deliveries in flight (and records
    /// them) before returning.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let work = self.dispatch(stop_rx, Mode::Serve);
        tokio::pin!(work);
        tokio::select! {
            () = &mut work => return,
            () = shutdown => {}
        }
        let _ = stop_tx.send(true);
        work.await;
    }

    /// Runs on its own task until [`RunningDispatcher::stop`].
    pub fn spawn(self) -> RunningDispatcher {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            self.run(async {
                let _ = stopped.await;
            })
            .await;
        });
        RunningDispatcher { stop, task }
    }

    /// Delivers everything in scope that is due now (one attempt each) and returns: for
    /// `deliveries redeliver --now` and for tests. Retries scheduled later are left for a
    /// running dispatcher.
    pub async fn drain(&self) {
        let (_stop_tx, stop_rx) = watch::channel(false);
        self.dispatch(stop_rx, Mode::Drain).await;
    }

    async fn dispatch(&self, mut stop: watch::Receiver<bool>, mode: Mode) {
        let registration = DispatcherRegistration {
            id: uuid::Uuid::new_v4().to_string(),
            endpoint: self.endpoint.clone(),
            scope: self.config.scope.label(),
            host: host_label(),
        };
        let mut last_heartbeat: Option<Instant> = None;
        let concurrency = self.config.concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let (records_tx, records_rx) = mpsc::channel(concurrency * 4);
        let recorder = tokio::spawn(record_attempts(
            self.store.clone(),
            records_rx,
            Arc::clone(&self.handle.stats),
        ));
        // Claimed rows wait here for a free slot. Claiming ahead, in batches, keeps deliveries
        // going while the recorder holds SQLite's single writer, and costs one write
        // transaction per batch instead of one per delivery.
        let mut backlog: VecDeque<Claimed> = VecDeque::new();
        let refill_below = concurrency.div_ceil(2);
        let backlog_target = (concurrency * 2).min(MAX_CLAIM_BATCH);
        let mut exhausted = false;
        let mut in_flight = JoinSet::new();
        while !*stop.borrow() {
            while in_flight.try_join_next().is_some() {}
            if last_heartbeat.is_none_or(|at| at.elapsed() >= DISPATCHER_HEARTBEAT) {
                last_heartbeat = Some(Instant::now());
                self.heartbeat(&registration).await;
            }
            if backlog.len() < refill_below {
                // Read before the claim is asked for: the leases cannot have started earlier.
                let at = Instant::now();
                match self.claim(backlog_target - backlog.len()).await {
                    Ok(claimed) => {
                        exhausted = claimed.is_empty();
                        backlog.extend(claimed.into_iter().map(|row| Claimed { row, at }));
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot claim due webhook deliveries; retrying");
                        tokio::time::sleep(STORE_ERROR_BACKOFF).await;
                        continue;
                    }
                }
            }
            while !backlog.is_empty() {
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    break;
                };
                self.renew_if_waited(&mut backlog).await;
                let Some(claimed) = backlog.pop_front() else {
                    break;
                };
                let webhook = self.webhook.clone();
                let schedule = self.config.schedule.clone();
                let records = records_tx.clone();
                let url = self.endpoint.shown().to_owned();
                let stats = Arc::clone(&self.handle.stats);
                let margin = self.config.lease_margin;
                in_flight.spawn(async move {
                    if !lease_covers_a_send(claimed.at, margin) {
                        // Stalled (SIGSTOP, a paused VM) since the lease was last proven: the
                        // row may be another holder's by now. Its lease ends and it is sent then.
                        tracing::warn!(step_id = %claimed.row.step_id,
                            "dispatcher stalled past its lease; dropping the row unsent");
                        stats.unproven.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    let record = attempt(&webhook, &schedule, claimed.row, url).await;
                    // The recorder outlives every delivery task; if it is gone the lease
                    // expiry brings the row back, so nothing is lost either way.
                    let _ = records.send(record).await;
                    drop(permit);
                });
            }
            if !backlog.is_empty() || (!exhausted && !in_flight.is_empty()) {
                // Every slot is busy (or more may be due): go on when one frees up.
                in_flight.join_next().await;
                continue;
            }
            if mode == Mode::Drain {
                if in_flight.join_next().await.is_none() {
                    break;
                }
                continue;
            }
            let wait = self.idle_wait().await;
            tokio::select! {
                () = self.handle.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
                _ = stop.changed() => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
        self.release(backlog).await;
        while in_flight.join_next().await.is_some() {}
        drop(records_tx);
        let _ = recorder.await;
        if let Err(error) = self.store.deregister_dispatcher(&registration.id).await {
            tracing::debug!(%error, "cannot deregister the dispatcher; its registration expires");
        }
    }

    /// Says in the store that this dispatcher runs (best effort: it only informs people and
    /// workers without a URL).
    async fn heartbeat(&self, registration: &DispatcherRegistration) {
        if let Err(error) = self.store.heartbeat_dispatcher(registration).await {
            tracing::warn!(%error, "cannot record the dispatcher's heartbeat");
        }
    }

    fn lease_ms(&self) -> i64 {
        duration_millis(self.webhook.config().timeout + self.config.lease_margin)
    }

    /// A claimed row waits in the backlog at most this long before its lease is restarted: a
    /// send then always starts with at least the HTTP timeout plus half the margin left.
    fn renew_after(&self) -> Duration {
        self.config.lease_margin / 2
    }

    async fn claim(&self, limit: usize) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.store
            .claim_due(
                &self.config.scope,
                &self.endpoint,
                i64::try_from(limit).unwrap_or(i64::MAX),
                self.lease_ms(),
            )
            .await
    }

    /// The lease starts when the send starts: while the row at the front of the backlog has
    /// waited past [`Self::renew_after`], the lease of its claim is restarted, and rows whose claim was
    /// lost meanwhile (taken by another holder after the lease ran out, or re-queued) are dropped
    /// unsent. It repeats until the front row's lease is fresh, so no row is sent on a lease this
    /// dispatcher has not proven, whichever claim it came from.
    async fn renew_if_waited(&self, backlog: &mut VecDeque<Claimed>) {
        while let Some(front) = backlog.front() {
            if front.at.elapsed() < self.renew_after() {
                return;
            }
            let token = front.row.token.clone();
            let renewed_at = Instant::now();
            match self.store.renew_claims(&token, self.lease_ms()).await {
                Ok(held) => {
                    let held: HashSet<_> = held.into_iter().collect();
                    backlog.retain_mut(|claimed| {
                        if claimed.row.token != token {
                            return true;
                        }
                        claimed.at = renewed_at;
                        held.contains(&claimed.row.step_id)
                    });
                }
                Err(error) => {
                    // Not sure the lease still covers a send: leave these rows to whoever
                    // claims them when it ends (possibly this dispatcher).
                    tracing::warn!(%error, "cannot restart delivery leases; dropping those claims");
                    backlog.retain(|claimed| claimed.row.token != token);
                }
            }
        }
    }

    /// Hands back rows claimed but not attempted (on shutdown), so they are due at once
    /// instead of after their lease.
    async fn release(&self, backlog: VecDeque<Claimed>) {
        if backlog.is_empty() {
            return;
        }
        let claims: Vec<_> = backlog.into_iter().map(|claimed| claimed.row).collect();
        if let Err(error) = self.store.release_claims(&claims).await {
            tracing::warn!(%error, rows = claims.len(),
                "cannot release claimed deliveries; they are due again when their lease ends");
        }
    }

    /// How long to sleep when nothing is due: until the next row falls due, at most idle_poll.
    async fn idle_wait(&self) -> Duration {
        match self
            .store
            .next_due_in_ms(&self.config.scope, &self.endpoint)
            .await
        {
            Ok(Some(ms)) => {
                Duration::from_millis(u64::try_from(ms).unwrap_or(0)).min(self.config.idle_poll)
            }
            _ => self.config.idle_poll,
        }
    }
}

/// A claimed row waiting for a free slot, and when its lease last started (read before the
/// lease was asked for, so never later than the database's).
struct Claimed {
    row: ClaimedDelivery,
    at: Instant,
}

/// Whether a lease that started at `at`, `margin` longer than the HTTP timeout, still covers a
/// whole attempt started now.
pub(crate) fn lease_covers_a_send(at: Instant, margin: Duration) -> bool {
    at.elapsed() < margin
}

/// Host name and process id, so people can tell dispatchers apart.
pub(crate) fn host_label() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("{host}:{}", std::process::id())
}

async fn attempt(
    webhook: &WebhookService,
    schedule: &RetrySchedule,
    delivery: ClaimedDelivery,
    url: String,
) -> AttemptRecord {
    let attempt = delivery.scheduled_attempts + 1;
    let started_at = now_millis();
    let report = webhook
        .send(
            &delivery.step_id,
            u32::try_from(attempt).unwrap_or(u32::MAX),
        )
        .await;
    let jitter = rand::thread_rng().gen_range(-1.0..=1.0);
    let (state, retry_after) = next_state(report.outcome.class(), attempt, schedule, jitter);
    let error = match (state, report.outcome.class()) {
        (DeliveryState::Delivered, _) => None,
        (DeliveryState::Dead, OutcomeClass::Retryable) => Some(format!(
            "gave up after {attempt} attempts: {}",
            report.outcome
        )),
        _ => Some(report.outcome.to_string()),
    };
    AttemptRecord {
        step_id: delivery.step_id,
        token: delivery.token,
        started_at,
        url,
        state,
        retry_after_ms: retry_after.map(duration_millis),
        outcome: report.outcome.label().to_owned(),
        http_status: report.outcome.http_status(),
        error,
        duration_ms: duration_millis(report.elapsed),
    }
}

/// Where a delivery goes after the dispatcher's attempt number `attempt` (1-based) ended in
/// `class`, and how long until its next attempt.
fn next_state(
    class: OutcomeClass,
    attempt: i64,
    schedule: &RetrySchedule,
    jitter: f64,
) -> (DeliveryState, Option<Duration>) {
    match class {
        OutcomeClass::Delivered => (DeliveryState::Delivered, None),
        // An answer that will not change (a dispatcher always has a URL, so Skipped cannot
        // happen here): wait for a redelivery.
        OutcomeClass::Skipped | OutcomeClass::Permanent => (DeliveryState::Dead, None),
        OutcomeClass::Retryable => {
            match schedule.delay_after(usize::try_from(attempt).unwrap_or(usize::MAX), jitter) {
                Some(delay) => (DeliveryState::Retrying, Some(delay)),
                None => (DeliveryState::Dead, None),
            }
        }
    }
}

/// Writes attempt outcomes back in batches. A store that stays down past the retries drops the
/// batch with an error: those rows' leases expire and they are delivered again, never lost.
async fn record_attempts(
    store: Store,
    mut records: mpsc::Receiver<AttemptRecord>,
    stats: Arc<DispatcherStats>,
) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while records.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let mut tries = 0;
        loop {
            match store.record_attempts(&batch).await {
                Ok(fences) => {
                    count(&stats, &batch, &fences);
                    break;
                }
                Err(error) if tries < RECORD_RETRIES => {
                    tries += 1;
                    tracing::warn!(%error, tries, "cannot record webhook attempts; retrying");
                    tokio::time::sleep(RECORD_RETRY_WAIT).await;
                }
                Err(error) => {
                    tracing::error!(%error, rows = batch.len(),
                        "cannot record webhook attempts; they will be retried when their lease expires");
                    break;
                }
            }
        }
        batch.clear();
    }
}

/// Counts each result by what became of it: only results recorded on their row count as
/// delivered, retrying or dead.
fn count(stats: &DispatcherStats, batch: &[AttemptRecord], fences: &[Fence]) {
    let stale = fences.iter().filter(|f| **f == Fence::LeaseLost).count();
    if stale > 0 {
        // Another holder has these rows now; what it records stands. The sends are in the
        // history, marked lease_lost.
        tracing::warn!(stale, "delivery results refused: their lease had ended");
    }
    for (record, fence) in batch.iter().zip(fences) {
        if *fence == Fence::LeaseLost {
            stats.stale.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let counter = match record.state {
            DeliveryState::Delivered => &stats.delivered,
            DeliveryState::Dead => &stats.dead,
            DeliveryState::Retrying | DeliveryState::Pending => &stats.retry_scheduled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stephook_core::{StepStatus, WebhookArgs};
    use stephook_store::{Notify, NotifyTo, TerminalUpdate, testing};

    /// Issue 11, 6: the backlog's lease renewal looked at the front claim only. When every row
    /// of that claim had been taken over, the next claim's first row was sent without any check
    /// of its age: a dispatcher that stalled past its lease (SIGSTOP, a paused VM) sent a row it
    /// could no longer prove was its own. Here the stall is a backlog whose rows all started
    /// their lease 40 s ago.
    #[tokio::test]
    async fn issue_11_6_no_row_is_sent_on_a_lease_the_dispatcher_cannot_prove() {
        let test = testing::sqlite().await;
        let store = test.store.clone();
        let webhook = WebhookService::new(
            WebhookArgs {
                url: Some("http://127.0.0.1:9/hooks".into()),
                timeout_ms: Some("1000".into()),
                ..Default::default()
            }
            .validate()
            .unwrap(),
        )
        .unwrap();
        let endpoint = webhook.config().endpoint().unwrap();
        for _ in 0..3 {
            let step = stephook_core::Step::pending(stephook_core::StepId::new_random(), "a", None);
            store.insert_step(&step).await.unwrap();
            let notify = Notify {
                after: Duration::ZERO,
                to: NotifyTo::Endpoint(&endpoint),
            };
            store
                .complete_step(
                    &step.id,
                    &TerminalUpdate::new(StepStatus::Success),
                    Some(notify),
                )
                .await
                .unwrap();
        }
        let dispatcher =
            Dispatcher::new(store.clone(), webhook, DispatcherConfig::default()).expect("a URL");
        // Two claims wait in the backlog: the first (two rows) on a short lease, the second (one
        // row) on a long one.
        let first = store
            .claim_due(&ClaimScope::All, &endpoint, 2, 200)
            .await
            .unwrap();
        let second = store
            .claim_due(&ClaimScope::All, &endpoint, 1, 60_000)
            .await
            .unwrap();
        // The first claim's lease runs out and another dispatcher takes its rows.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let taken_over = store
            .claim_due(&ClaimScope::All, &endpoint, 10, 60_000)
            .await
            .unwrap();
        assert_eq!(taken_over.len(), 2);
        let stalled = Instant::now()
            .checked_sub(Duration::from_secs(40))
            .expect("the clock is past 40 s");
        let mut backlog: VecDeque<Claimed> = first
            .into_iter()
            .chain(second.iter().cloned())
            .map(|row| Claimed { row, at: stalled })
            .collect();

        dispatcher.renew_if_waited(&mut backlog).await;

        // The rows taken over are dropped; the one still held had its lease proven again
        // before it could be sent.
        let left: Vec<_> = backlog.iter().map(|c| c.row.step_id.clone()).collect();
        assert_eq!(left, vec![second[0].step_id.clone()]);
        assert!(lease_covers_a_send(backlog[0].at, DEFAULT_LEASE_MARGIN));
        assert!(backlog[0].at.elapsed() < dispatcher.renew_after());
        assert!(
            !lease_covers_a_send(stalled, DEFAULT_LEASE_MARGIN),
            "a stalled lease is never sent on"
        );
    }

    #[test]
    fn refused_results_are_counted_apart_from_recorded_ones() {
        let stats = DispatcherStats::default();
        let record = |state| AttemptRecord {
            step_id: stephook_core::StepId::new_random(),
            token: "t".into(),
            started_at: 0,
            url: "http://x/".into(),
            state,
            retry_after_ms: None,
            outcome: "delivered".into(),
            http_status: Some(200),
            error: None,
            duration_ms: 1,
        };
        let batch = [
            record(DeliveryState::Delivered),
            record(DeliveryState::Delivered),
            record(DeliveryState::Dead),
        ];

        count(
            &stats,
            &batch,
            &[Fence::Held, Fence::LeaseLost, Fence::Held],
        );

        assert_eq!((stats.delivered(), stats.dead(), stats.stale()), (1, 1, 1));
    }

    #[test]
    fn retryable_failures_follow_the_schedule_then_die() {
        let schedule = RetrySchedule::new(
            vec![Duration::from_millis(10), Duration::from_millis(20)],
            0.0,
        );
        assert_eq!(
            next_state(OutcomeClass::Retryable, 1, &schedule, 0.0),
            (DeliveryState::Retrying, Some(Duration::from_millis(10)))
        );
        assert_eq!(
            next_state(OutcomeClass::Retryable, 2, &schedule, 0.0),
            (DeliveryState::Retrying, Some(Duration::from_millis(20)))
        );
        assert_eq!(
            next_state(OutcomeClass::Retryable, 3, &schedule, 0.0),
            (DeliveryState::Dead, None)
        );
    }

    #[test]
    fn permanent_answers_die_at_once_and_successes_are_final() {
        let schedule = RetrySchedule::default();
        assert_eq!(
            next_state(OutcomeClass::Permanent, 1, &schedule, 0.0),
            (DeliveryState::Dead, None)
        );
        assert_eq!(
            next_state(OutcomeClass::Delivered, 4, &schedule, 0.0),
            (DeliveryState::Delivered, None)
        );
    }
}

//! A stored step's notification leaves the moment `create_step` commits it, instead of waiting
//! for the workflow task that schedules `send_step_complete_webhook` to reach the server and the
//! activity to come back: that round trip through the server was most of a notification's
//! latency. The early send is the webhook activity's first attempt, made ahead of it: it takes
//! the outbox row as the activity would (so it is never sent by two holders at once), and the
//! activity's first attempt on this worker reports its outcome instead of sending again. Its
//! retries, and an activity that runs on another worker, take the row as before.

use crate::metrics::WebhookMetrics;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use stephook_core::StepId;
use stephook_direct::{FastPath, FastPathError, FastPathResult, TakenOnCommit};
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// An early send's outcome waits this long for the activity to take it: past the activity's
/// 30 s schedule-to-close, its first attempt can no longer come.
const KEPT_FOR: Duration = Duration::from_secs(40);
/// At most this many outcomes wait at once; beyond it a step is left to its activity to send
/// (as before early sends), so a flood of steps whose activities never come cannot grow memory.
const MAX_WAITING: usize = 20_000;

/// What one early send did, as the fast path reports it.
pub(crate) type EarlyOutcome = Result<FastPathResult, FastPathError>;

/// Sends notifications early and keeps their outcomes for the webhook activity.
pub(crate) struct EarlySends {
    fast_path: FastPath,
    metrics: Arc<WebhookMetrics>,
    waiting: Mutex<Waiting<oneshot::Receiver<EarlyOutcome>>>,
    in_flight: TaskTracker,
}

/// Lets a stopping worker wait for the early sends still in flight.
#[derive(Clone, Debug)]
pub struct EarlySendsInFlight(TaskTracker);

impl EarlySendsInFlight {
    /// Waits, at most `bound`, for the sends under way to be sent and recorded; none starts
    /// after this. A worker that closed its store under a send would leave a delivered
    /// notification unrecorded, and the outbox would send it again once its lease ended.
    pub async fn finish(&self, bound: Duration) {
        self.0.close();
        if tokio::time::timeout(bound, self.0.wait()).await.is_err() {
            tracing::warn!(
                in_flight = self.0.len(),
                "early notifications still in flight at stop; the outbox sends them again when their leases end"
            );
        }
    }
}

impl EarlySends {
    pub(crate) fn new(fast_path: FastPath, metrics: Arc<WebhookMetrics>) -> Self {
        Self {
            fast_path,
            metrics,
            waiting: Mutex::new(Waiting::default()),
            in_flight: TaskTracker::new(),
        }
    }

    pub(crate) fn in_flight(&self) -> EarlySendsInFlight {
        EarlySendsInFlight(self.in_flight.clone())
    }

    /// Keeps a place for the step's early send, before `create_step` commits the step: a row
    /// its transaction takes then always has a sender, and a stopping worker waits for it.
    /// `None` when a send for the step is already waiting (a retried `create_step`), too many
    /// are, or the worker is stopping (then the webhook activity, or the outbox, sends it).
    pub(crate) fn reserve(&self, step_id: &StepId) -> Option<Reserved> {
        if self.in_flight.is_closed() {
            return None;
        }
        let (sender, receiver) = oneshot::channel();
        let admitted = self
            .waiting
            .lock()
            .ok()?
            .admit(step_id, receiver, Instant::now());
        admitted.then(|| Reserved {
            step_id: step_id.clone(),
            sender,
            in_flight: self.in_flight.token(),
            fast_path: self.fast_path.clone(),
            metrics: Arc::clone(&self.metrics),
        })
    }

    /// The early send of this step, if this worker made one that no activity has taken yet.
    pub(crate) fn take(&self, step_id: &StepId) -> Option<oneshot::Receiver<EarlyOutcome>> {
        self.waiting.lock().ok()?.take(step_id)
    }
}

/// One step's early send, not started yet. Dropped unsent (its step was not committed), the
/// webhook activity finds no outcome and sends the notification itself.
pub(crate) struct Reserved {
    step_id: StepId,
    sender: oneshot::Sender<EarlyOutcome>,
    /// Counts as a send in flight from the moment it is reserved.
    in_flight: TaskTrackerToken,
    fast_path: FastPath,
    metrics: Arc<WebhookMetrics>,
}

impl Reserved {
    /// Sends the notification in the background: at once when the step's transaction took its
    /// row (`taken`), after a take of its own otherwise.
    pub(crate) fn send(self, taken: Option<TakenOnCommit>) {
        let Self {
            step_id,
            sender,
            in_flight,
            fast_path,
            metrics,
        } = self;
        tokio::spawn(async move {
            let outcome = match taken {
                Some(taken) => Ok(fast_path.send_taken(&step_id, taken).await),
                None => fast_path.send_once(&step_id, 1).await,
            };
            if let Ok(FastPathResult::Sent { report, .. }) = &outcome {
                metrics.observe(report);
            }
            // Nobody waiting (the activity ran elsewhere, or never): the row says what happened.
            let _ = sender.send(outcome);
            drop(in_flight);
        });
    }
}

/// The outcomes not yet taken, oldest first for expiry.
struct Waiting<T> {
    by_step: HashMap<StepId, (u64, T)>,
    order: VecDeque<(Instant, StepId, u64)>,
    next: u64,
}

impl<T> Default for Waiting<T> {
    fn default() -> Self {
        Self {
            by_step: HashMap::new(),
            order: VecDeque::new(),
            next: 0,
        }
    }
}

impl<T> Waiting<T> {
    /// Keeps `value` for the step unless one is kept already or the table is full; forgets
    /// what has waited longer than [`KEPT_FOR`].
    fn admit(&mut self, step_id: &StepId, value: T, now: Instant) -> bool {
        self.expire(now);
        if self.by_step.contains_key(step_id) || self.by_step.len() >= MAX_WAITING {
            return false;
        }
        let generation = self.next;
        self.next += 1;
        self.by_step.insert(step_id.clone(), (generation, value));
        self.order.push_back((now, step_id.clone(), generation));
        true
    }

    fn take(&mut self, step_id: &StepId) -> Option<T> {
        self.by_step.remove(step_id).map(|(_, value)| value)
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _, _)) = self.order.front() {
            if now.duration_since(*at) < KEPT_FOR {
                break;
            }
            if let Some((_, step_id, generation)) = self.order.pop_front()
                && self.by_step.get(&step_id).map(|(g, _)| *g) == Some(generation)
            {
                self.by_step.remove(&step_id);
            }
        }
        // Entries taken long ago leave their place in the queue behind; keep it bounded too.
        if self.order.len() > 2 * MAX_WAITING {
            let kept: &HashMap<_, _> = &self.by_step;
            self.order
                .retain(|(_, id, generation)| kept.get(id).map(|(g, _)| g) == Some(generation));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_step.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_outcome_is_taken_once() {
        let mut waiting = Waiting::default();
        let id = StepId::new_random();
        assert!(waiting.admit(&id, 1, Instant::now()));
        assert_eq!(waiting.take(&id), Some(1));
        assert_eq!(waiting.take(&id), None);
    }

    #[test]
    fn a_second_send_of_the_same_step_is_not_admitted_while_the_first_waits() {
        let mut waiting = Waiting::default();
        let id = StepId::new_random();
        let now = Instant::now();
        assert!(waiting.admit(&id, 1, now));
        assert!(!waiting.admit(&id, 2, now));
        assert_eq!(waiting.take(&id), Some(1));
        assert!(waiting.admit(&id, 3, now), "taken: a new send may start");
    }

    #[test]
    fn outcomes_nobody_takes_are_forgotten_after_they_are_kept_for_long_enough() {
        let mut waiting = Waiting::default();
        let start = Instant::now();
        let old = StepId::new_random();
        let young = StepId::new_random();
        assert!(waiting.admit(&old, 1, start));
        assert!(waiting.admit(&young, 2, start + KEPT_FOR / 2));
        let later = StepId::new_random();
        assert!(waiting.admit(&later, 3, start + KEPT_FOR));
        assert_eq!(waiting.take(&old), None, "expired");
        assert_eq!(waiting.take(&young), Some(2));
        assert_eq!(waiting.len(), 1);
    }

    #[test]
    fn a_step_admitted_again_after_it_was_taken_is_not_expired_by_its_first_entry() {
        let mut waiting = Waiting::default();
        let start = Instant::now();
        let id = StepId::new_random();
        assert!(waiting.admit(&id, 1, start));
        assert_eq!(waiting.take(&id), Some(1));
        assert!(waiting.admit(&id, 2, start + KEPT_FOR / 2));
        waiting.expire(start + KEPT_FOR);
        assert_eq!(waiting.take(&id), Some(2));
    }

    #[test]
    fn the_table_is_bounded() {
        let mut waiting = Waiting::default();
        let now = Instant::now();
        for n in 0..MAX_WAITING {
            assert!(waiting.admit(&StepId::new_random(), n, now));
        }
        assert!(!waiting.admit(&StepId::new_random(), 0, now));
        assert_eq!(waiting.len(), MAX_WAITING);
    }
}

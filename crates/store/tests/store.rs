//! The store suite: every test runs on real SQLite, and on real PostgreSQL when
//! STEPHOOK_TEST_POSTGRES_URL is set.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;
use stephook_core::chat::{ChatMessage, ChatRole};
use stephook_core::{Endpoint, Step, StepId, StepMetrics, StepStatus, Usage, now_millis};
use stephook_store::{
    ActivityAttempt, AttemptPath, AttemptRecord, ClaimScope, ClaimedDelivery, DeliveryState,
    FastPathTake, Fence, Notify, NotifyTo, Rebind, RequeueOutcome, Store, StoreError, TakeOnCommit,
    TerminalTransition, TerminalUpdate, testing,
};

stephook_store::on_both_databases!(
    upsert_is_idempotent_and_keeps_metrics,
    create_step_writes_its_notification_row_once,
    create_step_writes_step_messages_metrics_and_row_in_one_go,
    terminal_updates_apply_once_and_queue_one_delivery,
    unknown_and_conflicting_updates_are_errors,
    claims_lease_rows_and_never_hand_one_out_twice,
    a_stale_claim_cannot_overwrite_what_the_holder_recorded,
    claims_stay_within_their_scope,
    attempts_are_recorded_with_their_history,
    attempts_of_one_millisecond_keep_the_order_they_were_recorded_in,
    the_activity_fast_path_marks_delivered_and_leaves_failures_to_the_outbox,
    redelivery_restarts_the_schedule_and_keeps_the_history,
    dead_rows_are_requeued_page_by_page,
    no_webhook_configured_queues_nothing,
    retention_deletes_exactly_what_is_old_enough,
    issue_11_1_the_fast_path_takes_the_row_like_a_dispatcher,
    issue_11_2_the_fast_path_writes_a_missing_row,
    issue_11_3_retention_never_deletes_a_running_step,
    issue_11_5_redelivery_never_cuts_across_a_live_claim,
    issue_11_8_a_dispatcher_claims_only_its_own_endpoints_rows,
    dispatchers_say_which_endpoints_are_served,
    counts_are_bounded_per_state,
    a_step_stored_with_its_take_is_held_by_that_take_alone,
);

/// Long enough that no lease in these tests runs out unless the test waits for it.
const LONG_LEASE_MS: i64 = 60_000;

/// The endpoint the tests' rows are for.
static ENDPOINT: LazyLock<Endpoint> =
    LazyLock::new(|| endpoint("http://127.0.0.1:9/hooks?token=t0p-s3cret"));
/// Another deployment's endpoint on the same store.
static OTHER: LazyLock<Endpoint> = LazyLock::new(|| endpoint("http://127.0.0.1:9/other-hooks"));

fn endpoint(url: &str) -> Endpoint {
    Endpoint::of(&url::Url::parse(url).expect("a URL"))
}

/// Queue the notification for [`ENDPOINT`], due `after` from now.
fn to_endpoint(after: Duration) -> Option<Notify<'static>> {
    Some(Notify {
        after,
        to: NotifyTo::Endpoint(&ENDPOINT),
    })
}

async fn pending_step(store: &Store) -> Step {
    pending_step_in(store, "run-1").await
}

async fn pending_step_in(store: &Store, run_id: &str) -> Step {
    let step = Step::pending(StepId::new_random(), "agent-1", Some(run_id.into()));
    store.insert_step(&step).await.expect("insert");
    step
}

/// A terminal step with its notification due now, as direct mode leaves it.
async fn due_step(store: &Store) -> Step {
    let step = pending_step(store).await;
    store
        .complete_step(
            &step.id,
            &TerminalUpdate::new(StepStatus::Success),
            to_endpoint(Duration::ZERO),
        )
        .await
        .expect("complete");
    step
}

/// A terminal Temporal step (as `create_step` stores it), with or without its row.
async fn temporal_step(store: &Store, notify: Option<Notify<'_>>) -> Step {
    let mut step = Step::pending(StepId::new_random(), "agent-1", Some("run-t".into()));
    step.status = StepStatus::Success;
    store
        .upsert_step(&step, None, notify)
        .await
        .expect("upsert");
    step
}

async fn claim_all(store: &Store, lease_ms: i64) -> Vec<ClaimedDelivery> {
    store
        .claim_due(&ClaimScope::All, &ENDPOINT, 10_000, lease_ms)
        .await
        .expect("claim")
}

fn record(claim: &ClaimedDelivery, state: DeliveryState, status: u16) -> AttemptRecord {
    AttemptRecord {
        step_id: claim.step_id.clone(),
        token: claim.token.clone(),
        started_at: now_millis(),
        url: ENDPOINT.shown().to_owned(),
        state,
        retry_after_ms: (state == DeliveryState::Retrying).then_some(LONG_LEASE_MS),
        outcome: if status < 300 {
            "delivered"
        } else {
            "http_status"
        }
        .to_owned(),
        http_status: Some(status),
        error: (status >= 300).then(|| format!("HTTP {status}")),
        duration_ms: 3,
    }
}

/// The fast path's attempt under `token`, answered `status`.
fn activity_attempt(id: &StepId, token: &str, status: u16) -> ActivityAttempt {
    ActivityAttempt {
        step_id: id.clone(),
        token: token.to_owned(),
        started_at: now_millis(),
        url: ENDPOINT.shown().to_owned(),
        delivered: status < 300,
        outcome: if status < 300 {
            "delivered"
        } else {
            "http_status"
        }
        .to_owned(),
        http_status: Some(status),
        error: (status >= 300).then(|| format!("HTTP {status}")),
        duration_ms: 2,
    }
}

/// What the fast path finds when it tries to take the row, with a lease that outlives the test.
async fn look(store: &Store, id: &StepId) -> FastPathTake {
    store
        .take_for_fast_path(id, &ENDPOINT, LONG_LEASE_MS, LONG_LEASE_MS)
        .await
        .expect("take")
}

/// Takes the row for the fast path; panics unless it is held.
async fn take(store: &Store, id: &StepId, lease_ms: i64) -> String {
    match store
        .take_for_fast_path(id, &ENDPOINT, lease_ms, LONG_LEASE_MS)
        .await
        .expect("take")
    {
        FastPathTake::Held { token, .. } => token,
        other => panic!("expected to hold {id}, got {other:?}"),
    }
}

async fn upsert_is_idempotent_and_keeps_metrics(store: Store) {
    let mut step = Step::pending(StepId::derived("wf/run", 0), "agent-1", Some("run".into()));
    step.status = StepStatus::Success;
    step.usage = Usage {
        model: Some("m".into()),
        provider: Some("p".into()),
        prompt_tokens: 3,
        completion_tokens: 4,
        total_tokens: 7,
        ..Default::default()
    };
    step.error_data = Some(serde_json::json!({"k": [1, 2]}));
    let metrics = StepMetrics {
        step_ms: 12,
        model_call_ms: 9,
        tool_execution_ms: None,
    };

    store.upsert_step(&step, Some(metrics), None).await.unwrap();
    store.upsert_step(&step, Some(metrics), None).await.unwrap();

    let steps = store.list_steps(Some("run"), 10).await.unwrap();
    assert_eq!(
        steps,
        vec![step.clone()],
        "stored once, read back unchanged"
    );
    assert_eq!(store.step_metrics(&step.id).await.unwrap(), Some(metrics));
    assert_eq!(
        store.delivery(&step.id).await.unwrap(),
        None,
        "no URL: no row"
    );
}

async fn create_step_writes_its_notification_row_once(store: Store) {
    let mut step = Step::pending(StepId::derived("wf/run", 3), "agent-1", Some("run".into()));
    step.status = StepStatus::Failed;

    // Arrange: the step and its row, due after the fast path's grace period.
    store
        .upsert_step(
            &step,
            None,
            to_endpoint(Duration::from_millis(LONG_LEASE_MS as u64)),
        )
        .await
        .unwrap();
    let row = store.delivery(&step.id).await.unwrap().expect("a row");
    assert_eq!(row.state, DeliveryState::Pending);
    assert_eq!(row.source, "temporal");
    assert_eq!(row.step_status, StepStatus::Failed);
    assert!(
        claim_all(&store, LONG_LEASE_MS).await.is_empty(),
        "not due yet"
    );

    // Act: the fast path delivers, then `create_step` is retried.
    let token = take(&store, &step.id, LONG_LEASE_MS).await;
    let delivered = activity_attempt(&step.id, &token, 200);
    assert_eq!(
        store.record_activity_attempt(&delivered).await.unwrap(),
        Fence::Held
    );
    store
        .upsert_step(&step, None, to_endpoint(Duration::ZERO))
        .await
        .unwrap();

    // Assert: the retry did not queue the delivered notification again.
    let row = store.delivery(&step.id).await.unwrap().expect("a row");
    assert_eq!(row.state, DeliveryState::Delivered);
    assert!(claim_all(&store, LONG_LEASE_MS).await.is_empty());
}

/// `create_step`'s writes go to the database as one batch (one trip to SQLite's thread): each
/// statement must still get its own parameters, in order, and a retry must still replace the
/// messages and keep the row.
async fn create_step_writes_step_messages_metrics_and_row_in_one_go(store: Store) {
    // Arrange: a step with three messages, one carrying text that looks like SQL parameters.
    let mut step = Step::pending(
        StepId::derived("wf/run", 4),
        "agent-9",
        Some("run-9".into()),
    );
    step.status = StepStatus::Success;
    step.stop_reason = Some("end_turn".into());
    step.usage.total_tokens = 42;
    let messages = vec![
        ChatMessage::text(ChatRole::Assistant, "first $1 $2"),
        ChatMessage::text(ChatRole::Tool, "second"),
        ChatMessage::text(ChatRole::Assistant, "third; DROP TABLE steps"),
    ];
    let metrics = StepMetrics {
        step_ms: 12,
        model_call_ms: 7,
        tool_execution_ms: Some(3),
    };

    // Act
    store
        .upsert_step_with_messages(&step, Some(metrics), &messages, to_endpoint(Duration::ZERO))
        .await
        .unwrap();

    // Assert: every statement wrote what it was given.
    let stored = store.step(&step.id).await.unwrap().expect("the step");
    assert_eq!(stored.agent_id, "agent-9");
    assert_eq!(stored.run_id.as_deref(), Some("run-9"));
    assert_eq!(stored.status, StepStatus::Success);
    assert_eq!(stored.stop_reason.as_deref(), Some("end_turn"));
    assert_eq!(stored.usage.total_tokens, 42);
    assert_eq!(store.step_messages(&step.id).await.unwrap(), messages);
    assert_eq!(store.step_metrics(&step.id).await.unwrap(), Some(metrics));
    let row = store.delivery(&step.id).await.unwrap().expect("a row");
    assert_eq!(row.state, DeliveryState::Pending);
    assert_eq!(row.step_status, StepStatus::Success);

    // Act: a retry with other messages.
    let retried = vec![ChatMessage::text(ChatRole::Assistant, "only one")];
    store
        .upsert_step_with_messages(&step, Some(metrics), &retried, to_endpoint(Duration::ZERO))
        .await
        .unwrap();

    // Assert: the messages are replaced, the step and its row are still one each.
    assert_eq!(store.step_messages(&step.id).await.unwrap(), retried);
    assert_eq!(claim_all(&store, LONG_LEASE_MS).await.len(), 1);
}

async fn terminal_updates_apply_once_and_queue_one_delivery(store: Store) {
    let step = pending_step(&store).await;
    let mut update = TerminalUpdate::new(StepStatus::Success);
    update.stop_reason = Some("end_turn".into());

    let first = store
        .complete_step(&step.id, &update, to_endpoint(Duration::ZERO))
        .await
        .unwrap();
    let again = store
        .complete_step(&step.id, &update, to_endpoint(Duration::ZERO))
        .await
        .unwrap();

    assert_eq!(first, TerminalTransition::Applied);
    assert_eq!(again, TerminalTransition::AlreadyInState);
    let stored = store.step(&step.id).await.unwrap().unwrap();
    assert_eq!(stored.status, StepStatus::Success);
    assert!(stored.completed_at.is_some());
    let delivery = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(delivery.state, DeliveryState::Pending);
    assert_eq!(delivery.source, "direct");
    assert_eq!(delivery.step_status, StepStatus::Success);
    assert_eq!(store.list_deliveries(None, 10).await.unwrap().len(), 1);
}

async fn unknown_and_conflicting_updates_are_errors(store: Store) {
    let step = pending_step(&store).await;
    store
        .complete_step(
            &step.id,
            &TerminalUpdate::new(StepStatus::Failed),
            to_endpoint(Duration::ZERO),
        )
        .await
        .unwrap();

    let conflict = store
        .complete_step(
            &step.id,
            &TerminalUpdate::new(StepStatus::Success),
            to_endpoint(Duration::ZERO),
        )
        .await;
    let unknown = store
        .complete_step(
            &StepId::new_random(),
            &TerminalUpdate::new(StepStatus::Success),
            to_endpoint(Duration::ZERO),
        )
        .await;

    assert!(matches!(
        conflict,
        Err(StoreError::Conflict {
            current: StepStatus::Failed,
            ..
        })
    ));
    assert!(matches!(unknown, Err(StoreError::StepNotFound(_))));
    assert_eq!(store.list_deliveries(None, 10).await.unwrap().len(), 1);
}

async fn claims_lease_rows_and_never_hand_one_out_twice(store: Store) {
    const ROWS: usize = 60;
    for _ in 0..ROWS {
        due_step(&store).await;
    }

    let claimers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store
                    .claim_due(&ClaimScope::All, &ENDPOINT, 7, LONG_LEASE_MS)
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break mine;
                }
                mine.extend(batch);
            }
        })
    });
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }

    let unique: HashSet<_> = all.iter().map(|c| &c.step_id).collect();
    assert_eq!(all.len(), ROWS, "every row claimed");
    assert_eq!(unique.len(), ROWS, "no row claimed twice");
    assert!(claim_all(&store, LONG_LEASE_MS).await.is_empty());
    let due_in = store
        .next_due_in_ms(&ClaimScope::All, &ENDPOINT)
        .await
        .unwrap()
        .expect("rows wait");
    assert!(
        due_in > LONG_LEASE_MS - 10_000,
        "leased for a minute: {due_in}"
    );

    // A dispatcher that stops hands back what it did not attempt: due at once.
    store.release_claims(&all[..5]).await.unwrap();
    assert_eq!(claim_all(&store, LONG_LEASE_MS).await.len(), 5);
}

async fn a_stale_claim_cannot_overwrite_what_the_holder_recorded(store: Store) {
    let step = due_step(&store).await;
    // Arrange: a dispatcher claims with a short lease and stalls past it; another one claims.
    let stale = claim_all(&store, 100).await.remove(0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.renew_claims(&stale.token, 100).await.unwrap().len() == 1,
        "nobody took it yet: the stalled dispatcher may still restart its lease"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let current = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    assert_eq!(current.step_id, step.id);
    assert_ne!(current.token, stale.token);

    // Act: the holder delivers; the stale dispatcher reports a failure afterwards.
    let refused_before = store
        .record_attempts(&[record(&current, DeliveryState::Delivered, 200)])
        .await
        .unwrap();
    let refused = store
        .record_attempts(&[record(&stale, DeliveryState::Retrying, 503)])
        .await
        .unwrap();

    // Assert: the row is as its holder left it; both sends are in the history, the late one
    // marked as sent on a lost lease.
    assert_eq!(
        (refused_before, refused),
        (vec![Fence::Held], vec![Fence::LeaseLost])
    );
    assert!(
        store
            .renew_claims(&stale.token, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let row = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Delivered);
    assert_eq!(row.attempts, 1);
    let history = store.attempts(&step.id, 10).await.unwrap();
    let fences: Vec<_> = history
        .iter()
        .map(|a| (a.fence, a.holder.clone()))
        .collect();
    assert_eq!(
        fences,
        vec![
            (Fence::Held, Some(current.token.clone())),
            (Fence::LeaseLost, Some(stale.token.clone()))
        ]
    );
}

async fn claims_stay_within_their_scope(store: Store) {
    let mine = pending_step_in(&store, "run-mine").await;
    let other = pending_step_in(&store, "run-other").await;
    let third = pending_step_in(&store, "run-other").await;
    for step in [&mine, &other, &third] {
        store
            .complete_step(
                &step.id,
                &TerminalUpdate::new(StepStatus::Success),
                to_endpoint(Duration::ZERO),
            )
            .await
            .unwrap();
    }

    let by_run = store
        .claim_due(
            &ClaimScope::Run("run-mine".into()),
            &ENDPOINT,
            100,
            LONG_LEASE_MS,
        )
        .await
        .unwrap();
    let by_id = store
        .claim_due(
            &ClaimScope::Steps(vec![third.id.clone()]),
            &ENDPOINT,
            100,
            LONG_LEASE_MS,
        )
        .await
        .unwrap();
    let none = store
        .claim_due(
            &ClaimScope::Steps(Vec::new()),
            &ENDPOINT,
            100,
            LONG_LEASE_MS,
        )
        .await
        .unwrap();

    let ids =
        |claims: &[ClaimedDelivery]| claims.iter().map(|c| c.step_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&by_run), vec![mine.id]);
    assert_eq!(ids(&by_id), vec![third.id]);
    assert!(none.is_empty());
    assert_eq!(ids(&claim_all(&store, LONG_LEASE_MS).await), vec![other.id]);
}

/// Two attempts can start in the same millisecond (a fast path that lost its lease and the
/// dispatcher that took over): the history still shows them in the order they were recorded.
async fn attempts_of_one_millisecond_keep_the_order_they_were_recorded_in(store: Store) {
    // Arrange: one step, retried six times, every attempt stamped with the same start.
    let step = due_step(&store).await;
    let started_at = now_millis();
    let statuses = [500_u16, 501, 502, 503, 504, 505];

    // Act
    for status in statuses {
        let claim = claim_all(&store, LONG_LEASE_MS).await.remove(0);
        let mut attempt = record(&claim, DeliveryState::Retrying, status);
        attempt.started_at = started_at;
        store.record_attempts(&[attempt]).await.unwrap();
        store.requeue(&step.id, Rebind::Keep).await.unwrap();
    }

    // Assert
    let history = store.attempts(&step.id, 10).await.unwrap();
    let seen: Vec<_> = history.iter().map(|a| a.http_status).collect();
    assert_eq!(seen, statuses.map(|s| Some(i64::from(s))));
}

async fn attempts_are_recorded_with_their_history(store: Store) {
    let step = due_step(&store).await;

    let first = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    assert_eq!(first.scheduled_attempts, 0);
    store
        .record_attempts(&[record(&first, DeliveryState::Retrying, 503)])
        .await
        .unwrap();
    let row = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Retrying);
    let due_in = store.next_due_in_ms(&ClaimScope::All, &ENDPOINT).await;
    assert!(due_in.unwrap().unwrap() > 50_000);
    // Make it due again, as its retry time would.
    assert_eq!(
        store.requeue(&step.id, Rebind::Keep).await.unwrap(),
        RequeueOutcome::Queued
    );
    let second = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    store
        .record_attempts(&[record(&second, DeliveryState::Delivered, 200)])
        .await
        .unwrap();

    let delivery = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(delivery.state, DeliveryState::Delivered);
    assert_eq!(delivery.last_http_status, Some(200));
    assert_eq!(delivery.last_duration_ms, Some(3));
    assert!(delivery.delivered_at.is_some());
    assert_eq!(delivery.next_attempt_at, None);
    let history = store.attempts(&step.id, 10).await.unwrap();
    let seen: Vec<_> = history
        .iter()
        .map(|a| (a.path, a.outcome.as_str(), a.http_status, a.url.as_deref()))
        .collect();
    let url = Some("http://127.0.0.1:9/hooks?token=REDACTED");
    assert_eq!(
        seen,
        vec![
            (AttemptPath::Dispatcher, "http_status", Some(503), url),
            (AttemptPath::Dispatcher, "delivered", Some(200), url),
        ]
    );
    assert_eq!(
        store.count_deliveries(100).await.unwrap(),
        vec![
            (DeliveryState::Pending, 0),
            (DeliveryState::Retrying, 0),
            (DeliveryState::Delivered, 1),
            (DeliveryState::Dead, 0)
        ]
    );
}

async fn the_activity_fast_path_marks_delivered_and_leaves_failures_to_the_outbox(store: Store) {
    let step = temporal_step(&store, to_endpoint(Duration::from_millis(200))).await;

    // A failed fast-path attempt is noted and its claim let go; the row stays pending and falls
    // due on its own, when the grace period ends.
    let token = take(&store, &step.id, LONG_LEASE_MS).await;
    let failed = activity_attempt(&step.id, &token, 503);
    assert_eq!(
        store.record_activity_attempt(&failed).await.unwrap(),
        Fence::Held
    );
    let row = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts, row.scheduled_attempts, row.held),
        (DeliveryState::Pending, 1, 0, false)
    );
    assert_eq!(row.last_http_status, Some(503));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let claim = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    assert_eq!(
        claim.scheduled_attempts, 0,
        "the schedule starts at its first wait"
    );

    // While a dispatcher holds the row, the fast path leaves it alone.
    assert_eq!(look(&store, &step.id).await, FastPathTake::HeldElsewhere);
    assert_eq!(
        store
            .record_attempts(&[record(&claim, DeliveryState::Delivered, 204)])
            .await
            .unwrap(),
        vec![Fence::Held]
    );
    let row = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Delivered);
    assert_eq!(store.attempts(&step.id, 10).await.unwrap().len(), 2);
}

/// `create_step` takes its step's notification row in the transaction that stores the step, so
/// that the send which follows writes nothing before it goes out: the take must hold the row as
/// the fast path's own take would, and a retried `create_step` must not take a row that is
/// delivered or that someone else holds.
async fn a_step_stored_with_its_take_is_held_by_that_take_alone(store: Store) {
    // Arrange
    let mut step = Step::pending(StepId::new_random(), "agent-1", Some("run-t".into()));
    step.status = StepStatus::Success;
    let take = TakeOnCommit {
        endpoint: &ENDPOINT,
        token: "token-of-create-step",
        lease_ms: LONG_LEASE_MS,
    };

    // Act
    let held = store
        .upsert_step_and_take(&step, None, &[], take, Duration::ZERO)
        .await
        .expect("upsert and take");

    // Assert: stored, queued and held, so neither the fast path nor a dispatcher takes it.
    assert!(held, "a fresh row is taken");
    assert_eq!(
        store.step(&step.id).await.unwrap().map(|s| s.status),
        Some(StepStatus::Success)
    );
    let row = store.delivery(&step.id).await.unwrap().expect("a row");
    assert_eq!(row.state, DeliveryState::Pending);
    assert_eq!(look(&store, &step.id).await, FastPathTake::HeldElsewhere);
    assert!(claim_all(&store, LONG_LEASE_MS).await.is_empty());

    // Act: a retried `create_step` while the send is under way.
    let retry = TakeOnCommit {
        token: "token-of-the-retry",
        ..take
    };
    let retried = store
        .upsert_step_and_take(&step, None, &[], retry, Duration::ZERO)
        .await
        .unwrap();

    // Assert: the first holder keeps it (only it can renew its lease) and records its send
    // under its own token.
    assert!(!retried, "a held row is not taken again");
    let renew = |token| store.renew_fast_path_take(&step.id, token, LONG_LEASE_MS);
    assert!(
        !renew(retry.token).await.unwrap(),
        "not the retry's to renew"
    );
    assert!(
        renew(take.token).await.unwrap(),
        "the holder renews its take"
    );
    assert_eq!(
        store
            .record_activity_attempt(&activity_attempt(&step.id, "token-of-the-retry", 200))
            .await
            .unwrap(),
        Fence::LeaseLost
    );
    assert_eq!(
        store
            .record_activity_attempt(&activity_attempt(&step.id, take.token, 200))
            .await
            .unwrap(),
        Fence::Held
    );

    // A retry after delivery takes nothing and leaves the row delivered.
    let after_delivery = store
        .upsert_step_and_take(&step, None, &[], retry, Duration::ZERO)
        .await
        .unwrap();
    assert!(!after_delivery);
    assert!(
        !renew(take.token).await.unwrap(),
        "a delivered row is nobody's to renew"
    );
    let row = store.delivery(&step.id).await.unwrap().expect("a row");
    assert_eq!(row.state, DeliveryState::Delivered);
    assert_eq!(
        store.attempts(&step.id, 10).await.unwrap().len(),
        2,
        "both recorded sends are in the history, the row moved once"
    );

    // A step that is not terminal has no notification to take.
    let running = Step::pending(StepId::new_random(), "agent-1", Some("run-t".into()));
    let taken_running = store
        .upsert_step_and_take(&running, None, &[], take, Duration::ZERO)
        .await
        .unwrap();
    assert!(!taken_running);
    assert!(store.delivery(&running.id).await.unwrap().is_none());
}

async fn redelivery_restarts_the_schedule_and_keeps_the_history(store: Store) {
    let step = due_step(&store).await;
    let claim = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    store
        .record_attempts(&[record(&claim, DeliveryState::Dead, 404)])
        .await
        .unwrap();

    let first = store.requeue(&step.id, Rebind::Keep).await.unwrap();
    let second = store.requeue(&step.id, Rebind::Keep).await.unwrap();

    assert_eq!(
        (first, second),
        (RequeueOutcome::Queued, RequeueOutcome::AlreadyQueued)
    );
    let row = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Pending);
    assert_eq!((row.attempts, row.scheduled_attempts), (0, 0));
    assert_eq!(
        store.attempts(&step.id, 10).await.unwrap().len(),
        1,
        "history kept"
    );
    let again = claim_all(&store, LONG_LEASE_MS).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].scheduled_attempts, 0);

    // A pending step has nothing to redeliver; an unknown one is not found.
    let pending = pending_step(&store).await;
    assert!(matches!(
        store.requeue(&pending.id, Rebind::Keep).await,
        Err(StoreError::NotTerminal(_))
    ));
    assert!(matches!(
        store.requeue(&StepId::new_random(), Rebind::Keep).await,
        Err(StoreError::StepNotFound(_))
    ));
    // A terminal step stored without a row (no URL then) can still be sent.
    let mut quiet = Step::pending(StepId::derived("wf/run", 9), "agent-1", None);
    quiet.status = StepStatus::Cancelled;
    store.upsert_step(&quiet, None, None).await.unwrap();
    assert_eq!(
        store.requeue(&quiet.id, Rebind::Keep).await.unwrap(),
        RequeueOutcome::Queued
    );
    let row = store.delivery(&quiet.id).await.unwrap().unwrap();
    assert_eq!((row.source.as_str(), row.endpoint), ("operator", None));
}

async fn dead_rows_are_requeued_page_by_page(store: Store) {
    const DEAD: usize = 7;
    for _ in 0..DEAD {
        due_step(&store).await;
    }
    let alive = due_step(&store).await;
    let claims = claim_all(&store, LONG_LEASE_MS).await;
    let records: Vec<_> = claims
        .iter()
        .filter(|c| c.step_id != alive.id)
        .map(|c| record(c, DeliveryState::Dead, 410))
        .collect();
    store.record_attempts(&records).await.unwrap();

    let mut after = None;
    let mut pages = Vec::new();
    loop {
        let page = store
            .requeue_dead_page(after.as_ref(), 3, Rebind::Keep)
            .await
            .unwrap();
        let Some(last) = page.last().cloned() else {
            break;
        };
        pages.push(page.len());
        after = Some(last);
    }

    assert_eq!(pages, vec![3, 3, 1]);
    assert!(
        store
            .list_deliveries(Some(DeliveryState::Dead), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The requeued rows are due now; the row that was not dead keeps its lease, untouched.
    let due: HashSet<_> = claim_all(&store, LONG_LEASE_MS)
        .await
        .into_iter()
        .map(|c| c.step_id)
        .collect();
    assert_eq!(due.len(), DEAD);
    assert!(!due.contains(&alive.id));
}

async fn no_webhook_configured_queues_nothing(store: Store) {
    let step = pending_step(&store).await;

    store
        .complete_step(&step.id, &TerminalUpdate::new(StepStatus::Success), None)
        .await
        .unwrap();

    assert_eq!(
        store.step(&step.id).await.unwrap().unwrap().status,
        StepStatus::Success
    );
    assert_eq!(store.delivery(&step.id).await.unwrap(), None);
}

#[tokio::test]
async fn an_unreachable_database_is_a_connect_error_without_the_password() {
    let config = stephook_core::StoreArgs::at("postgres://app:s3cr3t-pw@127.0.0.1:1/nope")
        .validate()
        .unwrap();

    let error = Store::connect(&config).await.unwrap_err();

    assert!(matches!(error, StoreError::Connect { .. }));
    assert!(!error.to_string().contains("s3cr3t-pw"), "{error}");
    let _ = testing::TEST_DATABASE_PREFIX;
}

async fn retention_deletes_exactly_what_is_old_enough(store: Store) {
    const DAY: i64 = 86_400_000;
    const RETENTION: i64 = 30 * DAY;
    // Arrange: one step per case, aged as the case says.
    let delivered = |store: Store, age: i64| async move {
        let step = due_step(&store).await;
        let claim = claim_all(&store, LONG_LEASE_MS).await.remove(0);
        let dead = if age >= 0 {
            DeliveryState::Delivered
        } else {
            DeliveryState::Dead
        };
        let status = if dead == DeliveryState::Delivered {
            200
        } else {
            410
        };
        store
            .record_attempts(&[record(&claim, dead, status)])
            .await
            .unwrap();
        testing::age_step(&store, &step.id, age.abs()).await;
        step.id
    };
    let old_delivered = delivered(store.clone(), 40 * DAY).await;
    let new_delivered = delivered(store.clone(), DAY).await;
    let dead_40_days = delivered(store.clone(), -40 * DAY).await;
    let dead_70_days = delivered(store.clone(), -70 * DAY).await;
    let old_pending = due_step(&store).await.id;
    testing::age_step(&store, &old_pending, 40 * DAY).await;
    let quiet = |store: Store, age: i64| async move {
        let step = pending_step(&store).await;
        store
            .complete_step(&step.id, &TerminalUpdate::new(StepStatus::Success), None)
            .await
            .unwrap();
        testing::age_step(&store, &step.id, age).await;
        step.id
    };
    let old_quiet = quiet(store.clone(), 40 * DAY).await;
    let new_quiet = quiet(store.clone(), DAY).await;
    let old_running = pending_step(&store).await.id;
    testing::age_step(&store, &old_running, 40 * DAY).await;

    // Act: in batches of two, so the purge has to loop.
    let now = stephook_core::now_millis();
    let purged = store.purge_expired(now, RETENTION, 2).await.unwrap();

    // Assert
    let gone = [&old_delivered, &dead_70_days, &old_quiet];
    let kept = [
        &new_delivered,
        &dead_40_days,
        &old_pending,
        &new_quiet,
        &old_running,
    ];
    for id in gone {
        assert_eq!(store.step(id).await.unwrap(), None, "{id} deleted");
        assert_eq!(store.delivery(id).await.unwrap(), None);
        assert!(store.attempts(id, 10).await.unwrap().is_empty());
    }
    for id in kept {
        assert!(store.step(id).await.unwrap().is_some(), "{id} kept");
    }
    assert!(
        store.delivery(&dead_40_days).await.unwrap().is_some(),
        "dead kept twice as long"
    );
    assert!(
        store.delivery(&old_pending).await.unwrap().is_some(),
        "never drop a waiting one"
    );
    assert_eq!(
        purged,
        stephook_store::Purged {
            deliveries: 2,
            attempts: 2,
            steps: 3
        }
    );
    let again = store.purge_expired(now, RETENTION, 2).await.unwrap();
    assert_eq!(again, stephook_store::Purged::default());
}

/// Issue 11, 1: the fast path took no row before it sent: a delivered step was sent again, a
/// step a dispatcher was sending was sent at the same moment, and a 2xx after a dispatcher's
/// 410 was recorded nowhere. Now it takes the row like a dispatcher, and every send is in the
/// history whichever holder made it.
async fn issue_11_1_the_fast_path_takes_the_row_like_a_dispatcher(store: Store) {
    // Delivered: nothing to send, and the activity can say it is delivered.
    let delivered = temporal_step(&store, to_endpoint(Duration::ZERO)).await;
    let token = take(&store, &delivered.id, LONG_LEASE_MS).await;
    store
        .record_activity_attempt(&activity_attempt(&delivered.id, &token, 200))
        .await
        .unwrap();
    let again = look(&store, &delivered.id).await;
    assert_eq!(again, FastPathTake::AlreadyDelivered);

    // Held by a dispatcher (the activity running after the grace period): left to it.
    let held = temporal_step(&store, to_endpoint(Duration::ZERO)).await;
    let claim = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    assert_eq!(claim.step_id, held.id);
    let while_held = look(&store, &held.id).await;
    assert_eq!(while_held, FastPathTake::HeldElsewhere);

    // Dead on a 410: left for an operator; a late activity sends nothing more.
    store
        .record_attempts(&[record(&claim, DeliveryState::Dead, 410)])
        .await
        .unwrap();
    let when_dead = look(&store, &held.id).await;
    assert_eq!(when_dead, FastPathTake::Dead);

    // The fast path's own lease: a dispatcher does not claim the row while it is held, even
    // past its due time, and takes it once the lease has run out.
    let slow = temporal_step(&store, to_endpoint(Duration::ZERO)).await;
    let fast = take(&store, &slow.id, 300).await;
    assert!(claim_all(&store, LONG_LEASE_MS).await.is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let taken_over = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    // The stalled fast path answers late: its send is kept, marked lease_lost, and the row is
    // the dispatcher's.
    assert_eq!(
        store
            .record_activity_attempt(&activity_attempt(&slow.id, &fast, 200))
            .await
            .unwrap(),
        Fence::LeaseLost
    );
    let row = store.delivery(&slow.id).await.unwrap().unwrap();
    assert_eq!((row.state, row.held), (DeliveryState::Pending, true));
    store
        .record_attempts(&[record(&taken_over, DeliveryState::Delivered, 200)])
        .await
        .unwrap();
    let history = store.attempts(&slow.id, 10).await.unwrap();
    let seen: Vec<_> = history.iter().map(|a| (a.path, a.fence)).collect();
    assert_eq!(
        seen,
        vec![
            (AttemptPath::Activity, Fence::LeaseLost),
            (AttemptPath::Dispatcher, Fence::Held)
        ]
    );

    // Another endpoint's row is never sent to this one.
    let foreign_row = temporal_step(
        &store,
        Some(Notify {
            after: Duration::ZERO,
            to: NotifyTo::Endpoint(&OTHER),
        }),
    )
    .await;
    assert_eq!(
        look(&store, &foreign_row.id).await,
        FastPathTake::OtherEndpoint(OTHER.clone())
    );

    // A step the store does not hold (another SDK's own step): sent as it is, no row.
    assert_eq!(
        store
            .take_for_fast_path(
                &StepId::new_random(),
                &ENDPOINT,
                LONG_LEASE_MS,
                LONG_LEASE_MS
            )
            .await
            .unwrap(),
        FastPathTake::NotStored
    );
}

/// Issue 11, 2: a `create_step` that wrote no row (a worker from before the outbox, or one
/// without a URL) left the notification to nobody. The fast path of a worker with a URL writes
/// the row, bound to its endpoint and due after the grace period, before it sends.
async fn issue_11_2_the_fast_path_writes_a_missing_row(store: Store) {
    let step = temporal_step(&store, None).await;
    assert_eq!(store.delivery(&step.id).await.unwrap(), None);

    let taken = store
        .take_for_fast_path(&step.id, &ENDPOINT, LONG_LEASE_MS, 200)
        .await
        .unwrap();
    let FastPathTake::Held { token, written } = taken else {
        panic!("expected to hold the written row, got {taken:?}");
    };
    assert!(written);
    store
        .record_activity_attempt(&activity_attempt(&step.id, &token, 503))
        .await
        .unwrap();

    // The receiver was down: the row waits, for this endpoint, and falls due after the grace.
    let row = store.delivery(&step.id).await.unwrap().expect("written");
    assert_eq!(
        (row.state, row.source.as_str(), row.endpoint.as_ref()),
        (DeliveryState::Pending, "temporal", Some(&*ENDPOINT))
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(claim_all(&store, LONG_LEASE_MS).await.len(), 1);

    // A pending step (not ended) gets no row.
    let running = pending_step(&store).await;
    assert_eq!(
        store
            .take_for_fast_path(&running.id, &ENDPOINT, LONG_LEASE_MS, 200)
            .await
            .unwrap(),
        FastPathTake::NotStored
    );
    assert_eq!(store.delivery(&running.id).await.unwrap(), None);
}

/// Issue 11, 3: retention deleted a direct-mode step that had been running for longer than the
/// retention period; its `update_step_success` then found nothing and no webhook was sent.
async fn issue_11_3_retention_never_deletes_a_running_step(store: Store) {
    const HOUR: i64 = 3_600_000;
    let running = pending_step(&store).await;
    testing::age_step(&store, &running.id, 5 * HOUR).await;

    let purged = store.purge_expired(now_millis(), HOUR, 10).await.unwrap();

    assert_eq!(purged.steps, 0);
    assert!(store.step(&running.id).await.unwrap().is_some());
    let finished = store
        .complete_step(
            &running.id,
            &TerminalUpdate::new(StepStatus::Success),
            to_endpoint(Duration::ZERO),
        )
        .await
        .unwrap();
    assert_eq!(finished, TerminalTransition::Applied);
    assert_eq!(claim_all(&store, LONG_LEASE_MS).await.len(), 1);
}

/// Issue 11, 5: a redelivery reset a live claim and made the row due at once, so a double
/// click sent it twice at the same moment and the first holder's result was refused. Now a held
/// row stays as it is, and a second redelivery of a waiting row is a no-op.
async fn issue_11_5_redelivery_never_cuts_across_a_live_claim(store: Store) {
    let step = due_step(&store).await;
    let claim = claim_all(&store, LONG_LEASE_MS).await.remove(0);

    let while_sending = store.requeue(&step.id, Rebind::Keep).await.unwrap();

    assert_eq!(while_sending, RequeueOutcome::InFlight);
    assert!(claim_all(&store, LONG_LEASE_MS).await.is_empty());
    assert_eq!(
        store
            .record_attempts(&[record(&claim, DeliveryState::Dead, 410)])
            .await
            .unwrap(),
        vec![Fence::Held],
        "the holder's result stands"
    );

    // Dead now: the first click queues it, the second changes nothing.
    let first = store.requeue(&step.id, Rebind::Keep).await.unwrap();
    let second = store.requeue(&step.id, Rebind::Keep).await.unwrap();
    assert_eq!(
        (first, second),
        (RequeueOutcome::Queued, RequeueOutcome::AlreadyQueued)
    );
    assert_eq!(claim_all(&store, LONG_LEASE_MS).await.len(), 1);

    // The fast path's claim counts as well.
    let temporal = temporal_step(&store, to_endpoint(Duration::from_secs(60))).await;
    let _token = take(&store, &temporal.id, LONG_LEASE_MS).await;
    assert_eq!(
        store.requeue(&temporal.id, Rebind::Keep).await.unwrap(),
        RequeueOutcome::InFlight
    );
}

/// Issue 11, 8: any dispatcher claimed any row, so a `run --direct` row aimed at one endpoint
/// was delivered by the `dev` worker to another. Rows are bound to their endpoint when their
/// step is committed; a dispatcher takes only its own endpoint's rows (and unbound ones, which
/// it binds); moving a row is an explicit redelivery.
async fn issue_11_8_a_dispatcher_claims_only_its_own_endpoints_rows(store: Store) {
    let mine = due_step(&store).await;
    let theirs = pending_step(&store).await;
    store
        .complete_step(
            &theirs.id,
            &TerminalUpdate::new(StepStatus::Failed),
            Some(Notify {
                after: Duration::ZERO,
                to: NotifyTo::Endpoint(&OTHER),
            }),
        )
        .await
        .unwrap();
    let unbound = temporal_step(
        &store,
        Some(Notify {
            after: Duration::ZERO,
            to: NotifyTo::Unbound,
        }),
    )
    .await;

    let claimed: HashSet<_> = claim_all(&store, LONG_LEASE_MS)
        .await
        .into_iter()
        .map(|c| c.step_id)
        .collect();

    assert_eq!(
        claimed,
        HashSet::from([mine.id.clone(), unbound.id.clone()])
    );
    let adopted = store.delivery(&unbound.id).await.unwrap().unwrap();
    assert_eq!(adopted.endpoint.as_ref(), Some(&*ENDPOINT));
    let waiting = store.delivery(&theirs.id).await.unwrap().unwrap();
    assert_eq!(
        (waiting.state, waiting.endpoint.as_ref()),
        (DeliveryState::Pending, Some(&*OTHER))
    );
    // The other endpoint's due row does not count as due here (no spinning dispatcher).
    let due_in = store
        .next_due_in_ms(&ClaimScope::All, &ENDPOINT)
        .await
        .unwrap()
        .expect("its own leased rows");
    assert!(due_in > LONG_LEASE_MS - 10_000, "{due_in}");

    // The operator moves it, explicitly.
    assert_eq!(
        store
            .requeue(&theirs.id, Rebind::To(&ENDPOINT))
            .await
            .unwrap(),
        RequeueOutcome::Queued
    );
    let moved = claim_all(&store, LONG_LEASE_MS).await;
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].step_id, theirs.id);
}

async fn dispatchers_say_which_endpoints_are_served(store: Store) {
    let registration = stephook_store::DispatcherRegistration {
        id: "d-1".into(),
        endpoint: ENDPOINT.clone(),
        scope: "all",
        host: "test:1".into(),
    };
    assert!(store.served_endpoints().await.unwrap().is_empty());
    assert!(!store.fleet_sends_webhooks().await.unwrap());
    store.heartbeat_dispatcher(&registration).await.unwrap();
    store.heartbeat_dispatcher(&registration).await.unwrap();
    let scoped = stephook_store::DispatcherRegistration {
        id: "d-2".into(),
        endpoint: OTHER.clone(),
        scope: "run",
        host: "test:2".into(),
    };
    store.heartbeat_dispatcher(&scoped).await.unwrap();

    let served = store.served_endpoints().await.unwrap();
    assert_eq!(
        served.len(),
        1,
        "a run's own dispatcher serves only its run"
    );
    assert_eq!(served[0].endpoint, *ENDPOINT);
    assert_eq!(served[0].dispatchers, 1);
    assert!(!served[0].endpoint.shown().contains("t0p-s3cret"));

    // A waiting row of an endpoint nobody serves is counted as such.
    due_step(&store).await;
    let theirs = pending_step(&store).await;
    store
        .complete_step(
            &theirs.id,
            &TerminalUpdate::new(StepStatus::Success),
            Some(Notify {
                after: Duration::ZERO,
                to: NotifyTo::Endpoint(&OTHER),
            }),
        )
        .await
        .unwrap();
    let fingerprints = [ENDPOINT.fingerprint()];
    assert_eq!(
        store
            .count_waiting_unserved(&fingerprints, 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.count_waiting_unserved(&[], 100).await.unwrap(), 2);

    assert!(store.fleet_sends_webhooks().await.unwrap());
    store.deregister_dispatcher("d-1").await.unwrap();
    assert!(store.served_endpoints().await.unwrap().is_empty());
    assert!(
        store.fleet_sends_webhooks().await.unwrap(),
        "a dispatcher that stopped a moment ago still says the fleet sends webhooks"
    );
}

async fn counts_are_bounded_per_state(store: Store) {
    for _ in 0..5 {
        due_step(&store).await;
    }
    let counts = store.count_deliveries(3).await.unwrap();
    assert_eq!(counts[0], (DeliveryState::Pending, 3), "capped at 3");
    assert_eq!(counts[3], (DeliveryState::Dead, 0));
}

/// Issue 11, 4 (PostgreSQL): the purge selected old rows, then deleted them by id. A
/// redelivery committed in between (an operator re-queueing an old dead notification) was
/// deleted with its step, after the API had answered "queued". The delete now checks state and
/// age itself. The redelivery is held open in its own transaction while the purge runs, then
/// committed.
async fn issue_11_4_retention_keeps_a_row_requeued_while_it_purges(test: testing::TestStore) {
    use sqlx::{Connection, Executor};
    const DAY: i64 = 86_400_000;
    let store = test.store.clone();
    let step = due_step(&store).await;
    let claim = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    store
        .record_attempts(&[record(&claim, DeliveryState::Dead, 410)])
        .await
        .unwrap();
    testing::age_step(&store, &step.id, 100 * DAY).await;

    // The operator's redelivery takes the row and has not committed yet.
    let mut operator = sqlx::AnyConnection::connect(&test.url).await.unwrap();
    operator.execute("BEGIN").await.unwrap();
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'pending', updated_at = $1, attempts = 0 \
         WHERE step_id = $2",
    )
    .bind(now_millis())
    .bind(step.id.as_str())
    .execute(&mut operator)
    .await
    .unwrap();
    let purge = {
        let store = store.clone();
        tokio::spawn(async move { store.purge_expired(now_millis(), 30 * DAY, 10).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    operator.execute("COMMIT").await.unwrap();
    let purged = purge.await.unwrap().unwrap();

    assert_eq!(purged.deliveries, 0, "{purged:?}");
    let row = store.delivery(&step.id).await.unwrap().expect("kept");
    assert_eq!(row.state, DeliveryState::Pending);
    assert!(store.step(&step.id).await.unwrap().is_some());
}

#[tokio::test]
async fn issue_11_4_retention_keeps_a_row_requeued_while_it_purges_postgres() {
    if let Some(test) = testing::postgres().await {
        issue_11_4_retention_keeps_a_row_requeued_while_it_purges(test).await;
    }
}

/// Issue 11, 9: a worker and `stephook serve` on one SQLite file made each other's purge and
/// re-queue transactions fail with BUSY_SNAPSHOT (a transaction that read, then wrote after the
/// other process had written). Two stores on one file stand for the two processes.
#[tokio::test]
async fn issue_11_9_two_processes_on_one_sqlite_file_never_fail_with_busy_snapshot() {
    const DAY: i64 = 86_400_000;
    let test = testing::sqlite().await;
    let config = stephook_core::StoreArgs::at(test.url.clone())
        .validate()
        .unwrap();
    let worker = test.store.clone();
    let serve = Store::connect(&config).await.unwrap();
    // Dead, old rows for the operator and retention to work on.
    let mut dead = Vec::new();
    for _ in 0..40 {
        let step = due_step(&worker).await;
        dead.push(step.id);
    }
    let claims = claim_all(&worker, LONG_LEASE_MS).await;
    let records: Vec<_> = claims
        .iter()
        .map(|c| record(c, DeliveryState::Dead, 410))
        .collect();
    worker.record_attempts(&records).await.unwrap();
    for id in &dead[..20] {
        testing::age_step(&worker, id, 100 * DAY).await;
    }

    // The worker writes steps and purges while `serve` re-queues, all at once.
    let writer = {
        let worker = worker.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                due_step(&worker).await;
            }
        })
    };
    let purger = {
        let worker = worker.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                worker.purge_expired(now_millis(), 30 * DAY, 5).await?;
            }
            Ok::<_, StoreError>(())
        })
    };
    let operator = {
        let serve = serve.clone();
        let ids = dead[20..].to_vec();
        tokio::spawn(async move {
            for id in &ids {
                serve.requeue(id, Rebind::Keep).await?;
            }
            serve.requeue_dead_page(None, 5, Rebind::Keep).await?;
            Ok::<_, StoreError>(())
        })
    };
    writer.await.unwrap();
    purger.await.unwrap().expect("the purge never fails");
    operator
        .await
        .unwrap()
        .expect("the operator's re-queues never fail");
}

#[tokio::test]
async fn issue_11_4_retention_keeps_a_row_requeued_while_it_purges_sqlite() {
    issue_11_4_retention_keeps_a_row_requeued_while_it_purges(testing::sqlite().await).await;
}

/// Found while testing issue 11: a worker and `stephook serve` started together on a fresh
/// SQLite file both migrated it, and the loser stopped with "UNIQUE constraint failed:
/// _sqlx_migrations.version". Several stores opening one fresh file at once all open it.
#[tokio::test]
async fn processes_starting_together_on_a_fresh_sqlite_file_all_open_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let opening = (0..4).map(|_| {
        let config = stephook_core::StoreArgs::at(url.clone())
            .validate()
            .unwrap();
        tokio::spawn(async move { Store::connect(&config).await })
    });
    for store in opening {
        let store = store.await.unwrap().expect("every process opens the store");
        assert!(store.served_endpoints().await.unwrap().is_empty());
    }
}

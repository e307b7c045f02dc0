//! The store suite: every test runs on real SQLite, and on real PostgreSQL when
//! STEPHOOK_TEST_POSTGRES_URL is set.

use std::collections::HashSet;
use std::time::Duration;
use stephook_core::{Step, StepId, StepMetrics, StepStatus, Usage};
use stephook_store::{
    ActivityAttempt, AttemptPath, AttemptRecord, ClaimScope, ClaimedDelivery, DeliveryState, Store,
    StoreError, TerminalTransition, TerminalUpdate, testing,
};

macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() {
                let test = stephook_store::testing::sqlite().await;
                super::$name(test.store.clone()).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() {
                if let Some(test) = stephook_store::testing::postgres().await {
                    super::$name(test.store.clone()).await;
                }
            })*
        }
    };
}

on_both_databases!(
    upsert_is_idempotent_and_keeps_metrics,
    create_step_writes_its_notification_row_once,
    terminal_updates_apply_once_and_queue_one_delivery,
    unknown_and_conflicting_updates_are_errors,
    claims_lease_rows_and_never_hand_one_out_twice,
    a_stale_claim_cannot_overwrite_what_the_holder_recorded,
    claims_stay_within_their_scope,
    attempts_are_recorded_with_their_history,
    the_activity_fast_path_marks_delivered_and_leaves_failures_to_the_outbox,
    redelivery_restarts_the_schedule_and_keeps_the_history,
    dead_rows_are_requeued_page_by_page,
    no_webhook_configured_queues_nothing,
    retention_deletes_exactly_what_is_old_enough,
);

/// Long enough that no lease in these tests runs out unless the test waits for it.
const LONG_LEASE_MS: i64 = 60_000;

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
            Some(Duration::ZERO),
        )
        .await
        .expect("complete");
    step
}

async fn claim_all(store: &Store, lease_ms: i64) -> Vec<ClaimedDelivery> {
    store
        .claim_due(&ClaimScope::All, 10_000, lease_ms)
        .await
        .expect("claim")
}

fn record(claim: &ClaimedDelivery, state: DeliveryState, status: u16) -> AttemptRecord {
    AttemptRecord {
        step_id: claim.step_id.clone(),
        token: claim.token.clone(),
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

async fn upsert_is_idempotent_and_keeps_metrics(store: Store) {
    let mut step = Step::pending(StepId::derived("wf/run", 0), "agent-1", Some("run".into()));
    step.status = StepStatus::Success;
    step.usage = Usage {
        model: Some("m".into()),
        provider: Some("p".into()),
        prompt_tokens: 3,
        completion_tokens: 4,
        total_tokens: 7,
    };
    step.error_data = Some(serde_json::json!({"k": [1, 2]}));
    let metrics = StepMetrics {
        step_ms: 12,
        model_call_ms: 9,
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
            Some(Duration::from_millis(LONG_LEASE_MS as u64)),
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
    let delivered = ActivityAttempt {
        step_id: step.id.clone(),
        delivered: true,
        outcome: "delivered".into(),
        http_status: Some(200),
        error: None,
        duration_ms: 2,
    };
    assert!(store.record_activity_attempt(&delivered).await.unwrap());
    store
        .upsert_step(&step, None, Some(Duration::ZERO))
        .await
        .unwrap();

    // Assert: the retry did not queue the delivered notification again.
    let row = store.delivery(&step.id).await.unwrap().expect("a row");
    assert_eq!(row.state, DeliveryState::Delivered);
    assert!(claim_all(&store, LONG_LEASE_MS).await.is_empty());
}

async fn terminal_updates_apply_once_and_queue_one_delivery(store: Store) {
    let step = pending_step(&store).await;
    let mut update = TerminalUpdate::new(StepStatus::Success);
    update.stop_reason = Some("end_turn".into());

    let first = store
        .complete_step(&step.id, &update, Some(Duration::ZERO))
        .await
        .unwrap();
    let again = store
        .complete_step(&step.id, &update, Some(Duration::ZERO))
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
            Some(Duration::ZERO),
        )
        .await
        .unwrap();

    let conflict = store
        .complete_step(
            &step.id,
            &TerminalUpdate::new(StepStatus::Success),
            Some(Duration::ZERO),
        )
        .await;
    let unknown = store
        .complete_step(
            &StepId::new_random(),
            &TerminalUpdate::new(StepStatus::Success),
            Some(Duration::ZERO),
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
                    .claim_due(&ClaimScope::All, 7, LONG_LEASE_MS)
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
    let due_in = store.next_due_in_ms().await.unwrap().expect("rows wait");
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

    // Assert
    assert_eq!((refused_before, refused), (0, 1));
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
    assert_eq!(store.attempts(&step.id, 10).await.unwrap().len(), 1);
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
                Some(Duration::ZERO),
            )
            .await
            .unwrap();
    }

    let by_run = store
        .claim_due(&ClaimScope::Run("run-mine".into()), 100, LONG_LEASE_MS)
        .await
        .unwrap();
    let by_id = store
        .claim_due(
            &ClaimScope::Steps(vec![third.id.clone()]),
            100,
            LONG_LEASE_MS,
        )
        .await
        .unwrap();
    let none = store
        .claim_due(&ClaimScope::Steps(Vec::new()), 100, LONG_LEASE_MS)
        .await
        .unwrap();

    let ids =
        |claims: &[ClaimedDelivery]| claims.iter().map(|c| c.step_id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&by_run), vec![mine.id]);
    assert_eq!(ids(&by_id), vec![third.id]);
    assert!(none.is_empty());
    assert_eq!(ids(&claim_all(&store, LONG_LEASE_MS).await), vec![other.id]);
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
    assert!(store.next_due_in_ms().await.unwrap().unwrap() > 50_000);
    // Make it due again, as its retry time would.
    store.requeue(&step.id).await.unwrap();
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
        .map(|a| (a.path, a.outcome.as_str(), a.http_status))
        .collect();
    assert_eq!(
        seen,
        vec![
            (AttemptPath::Dispatcher, "http_status", Some(503)),
            (AttemptPath::Dispatcher, "delivered", Some(200)),
        ]
    );
    assert_eq!(
        store.count_deliveries().await.unwrap(),
        vec![(DeliveryState::Delivered, 1)]
    );
}

async fn the_activity_fast_path_marks_delivered_and_leaves_failures_to_the_outbox(store: Store) {
    let mut step = Step::pending(StepId::derived("wf/run", 7), "agent-1", None);
    step.status = StepStatus::Success;
    store
        .upsert_step(&step, None, Some(Duration::from_millis(200)))
        .await
        .unwrap();
    let failed = ActivityAttempt {
        step_id: step.id.clone(),
        delivered: false,
        outcome: "http_status".into(),
        http_status: Some(503),
        error: Some("HTTP 503".into()),
        duration_ms: 4,
    };

    // A failed fast-path attempt is noted; the row stays pending and falls due on its own.
    assert!(store.record_activity_attempt(&failed).await.unwrap());
    let row = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts, row.scheduled_attempts),
        (DeliveryState::Pending, 1, 0)
    );
    assert_eq!(row.last_http_status, Some(503));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let claim = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    assert_eq!(
        claim.scheduled_attempts, 0,
        "the schedule starts at its first wait"
    );

    // The fast path delivering while a dispatcher holds a claim voids the claim.
    let delivered = ActivityAttempt {
        delivered: true,
        http_status: Some(204),
        error: None,
        outcome: "delivered".into(),
        ..failed.clone()
    };
    assert!(store.record_activity_attempt(&delivered).await.unwrap());
    assert_eq!(
        store
            .record_attempts(&[record(&claim, DeliveryState::Retrying, 503)])
            .await
            .unwrap(),
        1,
        "the late dispatcher result is refused"
    );
    let row = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(row.state, DeliveryState::Delivered);
    assert_eq!(store.attempts(&step.id, 10).await.unwrap().len(), 2);

    // A step stephook never stored (another SDK's workflow) has no row to record on.
    let foreign = ActivityAttempt {
        step_id: StepId::new_random(),
        ..delivered
    };
    assert!(!store.record_activity_attempt(&foreign).await.unwrap());
}

async fn redelivery_restarts_the_schedule_and_keeps_the_history(store: Store) {
    let step = due_step(&store).await;
    let claim = claim_all(&store, LONG_LEASE_MS).await.remove(0);
    store
        .record_attempts(&[record(&claim, DeliveryState::Dead, 404)])
        .await
        .unwrap();

    store.requeue(&step.id).await.unwrap();
    store.requeue(&step.id).await.unwrap();

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
        store.requeue(&pending.id).await,
        Err(StoreError::NotTerminal(_))
    ));
    assert!(matches!(
        store.requeue(&StepId::new_random()).await,
        Err(StoreError::StepNotFound(_))
    ));
    // A terminal step stored without a row (no URL then) can still be sent.
    let mut quiet = Step::pending(StepId::derived("wf/run", 9), "agent-1", None);
    quiet.status = StepStatus::Cancelled;
    store.upsert_step(&quiet, None, None).await.unwrap();
    store.requeue(&quiet.id).await.unwrap();
    assert_eq!(
        store.delivery(&quiet.id).await.unwrap().unwrap().source,
        "operator"
    );
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
        let page = store.requeue_dead_page(after.as_ref(), 3).await.unwrap();
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
    let config = stephook_core::StoreArgs {
        database_url: "postgres://app:s3cr3t-pw@127.0.0.1:1/nope".into(),
    }
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

    // Act: in batches of two, so the purge has to loop.
    let now = stephook_core::now_millis();
    let purged = store.purge_expired(now, RETENTION, 2).await.unwrap();

    // Assert
    let gone = [&old_delivered, &dead_70_days, &old_quiet];
    let kept = [&new_delivered, &dead_40_days, &old_pending, &new_quiet];
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

//! The store suite: every test runs on real SQLite, and on real PostgreSQL when
//! STEPHOOK_TEST_POSTGRES_URL is set.

use std::collections::HashSet;
use stephook_core::{Step, StepId, StepMetrics, StepStatus, Usage, now_millis};
use stephook_store::{
    AttemptRecord, DeliveryState, Store, StoreError, TerminalTransition, TerminalUpdate, testing,
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
    terminal_updates_apply_once_and_queue_one_delivery,
    unknown_and_conflicting_updates_are_errors,
    claims_lease_rows_and_never_hand_one_out_twice,
    attempts_are_recorded,
    undelivered_notifications_are_recorded_and_redelivered,
    no_webhook_configured_queues_nothing,
);

async fn pending_step(store: &Store) -> Step {
    let step = Step::pending(StepId::new_random(), "agent-1", Some("run-1".into()));
    store.insert_step(&step).await.expect("insert");
    step
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

    store.upsert_step(&step, Some(metrics)).await.unwrap();
    store.upsert_step(&step, Some(metrics)).await.unwrap();

    let steps = store.list_steps(Some("run"), 10).await.unwrap();
    assert_eq!(
        steps,
        vec![step.clone()],
        "stored once, read back unchanged"
    );
    assert_eq!(store.step_metrics(&step.id).await.unwrap(), Some(metrics));
}

async fn terminal_updates_apply_once_and_queue_one_delivery(store: Store) {
    let step = pending_step(&store).await;
    let mut update = TerminalUpdate::new(StepStatus::Success);
    update.stop_reason = Some("end_turn".into());

    let first = store
        .complete_step(&step.id, &update, Some(now_millis()))
        .await
        .unwrap();
    let again = store
        .complete_step(&step.id, &update, Some(now_millis()))
        .await
        .unwrap();

    assert_eq!(first, TerminalTransition::Applied);
    assert_eq!(again, TerminalTransition::AlreadyInState);
    let stored = store.step(&step.id).await.unwrap().unwrap();
    assert_eq!(stored.status, StepStatus::Success);
    assert!(stored.completed_at.is_some());
    let delivery = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(delivery.state, DeliveryState::Pending);
    assert_eq!(delivery.step_status, StepStatus::Success);
    assert_eq!(store.list_deliveries(None, 10).await.unwrap().len(), 1);
}

async fn unknown_and_conflicting_updates_are_errors(store: Store) {
    let step = pending_step(&store).await;
    store
        .complete_step(&step.id, &TerminalUpdate::new(StepStatus::Failed), Some(0))
        .await
        .unwrap();

    let conflict = store
        .complete_step(&step.id, &TerminalUpdate::new(StepStatus::Success), Some(0))
        .await;
    let unknown = store
        .complete_step(
            &StepId::new_random(),
            &TerminalUpdate::new(StepStatus::Success),
            Some(0),
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
    let now = now_millis();
    for _ in 0..ROWS {
        let step = pending_step(&store).await;
        store
            .complete_step(
                &step.id,
                &TerminalUpdate::new(StepStatus::Success),
                Some(now),
            )
            .await
            .unwrap();
    }

    let claimers = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_due(now, 7, now + 60_000).await.unwrap();
                if batch.is_empty() {
                    break mine;
                }
                mine.extend(batch.into_iter().map(|c| c.step_id));
            }
        })
    });
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }

    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), ROWS, "every row claimed");
    assert_eq!(unique.len(), ROWS, "no row claimed twice");
    assert!(
        store
            .claim_due(now, 100, now + 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due_at().await.unwrap(), Some(now + 60_000));
    // A lease that ran out (a dispatcher that died) makes the rows due again.
    let reclaimed = store
        .claim_due(now + 60_000, 1_000, now + 120_000)
        .await
        .unwrap();
    assert_eq!(reclaimed.len(), ROWS);
    // A dispatcher that stops hands back what it did not attempt: due at once.
    let handed_back: Vec<_> = reclaimed.into_iter().take(5).map(|c| c.step_id).collect();
    store
        .release_claims(&handed_back, now + 60_001)
        .await
        .unwrap();
    let again = store
        .claim_due(now + 60_001, 1_000, now + 180_000)
        .await
        .unwrap();
    assert_eq!(again.len(), 5);
}

async fn attempts_are_recorded(store: Store) {
    let step = pending_step(&store).await;
    store
        .complete_step(
            &step.id,
            &TerminalUpdate::new(StepStatus::Cancelled),
            Some(0),
        )
        .await
        .unwrap();
    let claimed = store
        .claim_due(now_millis(), 10, now_millis() + 1_000)
        .await
        .unwrap();
    assert_eq!(claimed[0].attempts, 0);

    store
        .record_attempts(&[AttemptRecord {
            step_id: step.id.clone(),
            state: DeliveryState::Failed,
            next_attempt_at: Some(42),
            http_status: Some(503),
            error: Some("HTTP 503".into()),
            duration_ms: 17,
        }])
        .await
        .unwrap();
    store
        .record_attempts(&[AttemptRecord {
            step_id: step.id.clone(),
            state: DeliveryState::Delivered,
            next_attempt_at: None,
            http_status: Some(200),
            error: None,
            duration_ms: 3,
        }])
        .await
        .unwrap();

    let delivery = store.delivery(&step.id).await.unwrap().unwrap();
    assert_eq!(delivery.state, DeliveryState::Delivered);
    assert_eq!(delivery.attempts, 2);
    assert_eq!(delivery.last_http_status, Some(200));
    assert_eq!(delivery.last_duration_ms, Some(3));
    assert!(delivery.delivered_at.is_some());
    assert_eq!(
        store.count_deliveries().await.unwrap(),
        vec![(DeliveryState::Delivered, 1)]
    );
}

async fn undelivered_notifications_are_recorded_and_redelivered(store: Store) {
    let mut step = Step::pending(StepId::derived("wf/run", 1), "agent-1", None);
    step.status = StepStatus::Success;
    store.upsert_step(&step, None).await.unwrap();

    store
        .record_undelivered(&step.id, StepStatus::Success, 6, Some(500), "HTTP 500")
        .await
        .unwrap();
    let unknown = store
        .record_undelivered(&StepId::new_random(), StepStatus::Success, 1, None, "x")
        .await;

    assert!(
        matches!(unknown, Err(StoreError::StepNotFound(_))),
        "{unknown:?}"
    );
    let dead = store
        .list_deliveries(Some(DeliveryState::Dead), 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 6);
    assert_eq!(dead[0].source, "temporal");
    assert_eq!(store.redeliver_dead().await.unwrap(), 1);
    assert_eq!(
        store
            .claim_due(now_millis(), 10, now_millis() + 1)
            .await
            .unwrap()
            .len(),
        1
    );
    // A pending step has nothing to redeliver; an unknown one is not found.
    let pending = pending_step(&store).await;
    assert!(store.redeliver(&pending.id).await.is_err());
    assert!(matches!(
        store.redeliver(&StepId::new_random()).await,
        Err(StoreError::StepNotFound(_))
    ));
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

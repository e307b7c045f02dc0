//! Direct mode end to end: StepManager commits, the dispatcher delivers to a real loopback
//! receiver, the store keeps the record.

use serde_json::json;
use std::time::{Duration, Instant};
use stephook_core::{Secret, StepId, StepMetrics, StepStatus, Usage, WebhookArgs};
use stephook_direct::{
    Dispatcher, DispatcherConfig, RetrySchedule, RunningDispatcher, StepError, StepManager,
};
use stephook_store::testing::{self, TestStore};
use stephook_store::{DeliveryState, TerminalTransition};
use stephook_testkit::{Receiver, Reply};
use stephook_webhook::WebhookService;

const WAIT: Duration = Duration::from_secs(10);
const METRICS: StepMetrics = StepMetrics {
    step_ms: 1_250,
    model_call_ms: 1_100,
    tool_execution_ms: None,
};

struct Harness {
    test: TestStore,
    receiver: Receiver,
    manager: StepManager,
    dispatcher: Option<RunningDispatcher>,
    config: DispatcherConfig,
    webhook: WebhookService,
}

/// A webhook client sending to `receiver`, with a 3 s timeout.
fn webhook_to(receiver: &Receiver) -> WebhookService {
    let config = WebhookArgs {
        url: Some(Secret::new(receiver.url())),
        timeout_ms: Some("3000".into()),
        ..Default::default()
    }
    .validate()
    .expect("valid webhook settings");
    WebhookService::new(config).expect("a webhook client")
}

impl Harness {
    async fn start(reply: Reply, retry_ms: &[u64]) -> Self {
        let test = testing::sqlite().await;
        let receiver = Receiver::start(reply).await;
        let webhook = webhook_to(&receiver);
        let config = DispatcherConfig {
            schedule: RetrySchedule::new(
                retry_ms
                    .iter()
                    .map(|ms| Duration::from_millis(*ms))
                    .collect(),
                0.2,
            ),
            idle_poll: Duration::from_millis(50),
            ..Default::default()
        };
        let dispatcher = Dispatcher::new(test.store.clone(), webhook.clone(), config.clone())
            .expect("a webhook URL is configured");
        let manager = StepManager::new(test.store.clone(), dispatcher.handle());
        let mut harness = Self {
            test,
            receiver,
            manager,
            dispatcher: None,
            config,
            webhook,
        };
        harness.start_dispatcher(dispatcher);
        harness
    }

    fn start_dispatcher(&mut self, dispatcher: Dispatcher) {
        self.dispatcher = Some(dispatcher.spawn());
    }

    async fn stop_dispatcher(&mut self) {
        if let Some(dispatcher) = self.dispatcher.take() {
            dispatcher.stop().await;
        }
    }

    /// A new dispatcher on the same store, as after a process restart.
    fn restart_dispatcher(&mut self) {
        let dispatcher = Dispatcher::new(
            self.test.store.clone(),
            self.webhook.clone(),
            self.config.clone(),
        )
        .expect("a webhook URL is configured");
        self.manager = StepManager::new(self.test.store.clone(), dispatcher.handle());
        self.start_dispatcher(dispatcher);
    }

    async fn wait_for_state(&self, id: &StepId, state: DeliveryState) -> stephook_store::Delivery {
        let deadline = Instant::now() + WAIT;
        loop {
            let delivery = self.test.store.delivery(id).await.unwrap();
            match delivery {
                Some(d) if d.state == state => return d,
                other if Instant::now() > deadline => panic!("never reached {state}: {other:?}"),
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

#[tokio::test]
async fn each_terminal_state_commits_and_notifies_exactly_once() {
    let h = Harness::start(Reply::Status(200), &[50]).await;
    let ok = h.manager.log_step("agent-1", Some("run-1")).await.unwrap();
    let failed = h.manager.log_step("agent-1", Some("run-1")).await.unwrap();
    let cancelled = h.manager.log_step("agent-1", Some("run-1")).await.unwrap();

    h.manager
        .update_step_success(
            &ok.id,
            Usage::default(),
            Some("end_turn".into()),
            Some(METRICS),
        )
        .await
        .unwrap();
    h.manager
        .update_step_error(&failed.id, "ToolError", json!({"message": "boom"}), None)
        .await
        .unwrap();
    h.manager
        .update_step_cancelled(&cancelled.id, None)
        .await
        .unwrap();

    let requests = h.receiver.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.receiver.count(), 3, "exactly one request per step");
    let mut notified: Vec<String> = requests.iter().filter_map(|r| r.step_id()).collect();
    notified.sort();
    let mut expected = vec![
        ok.id.to_string(),
        failed.id.to_string(),
        cancelled.id.to_string(),
    ];
    expected.sort();
    assert_eq!(notified, expected);
    for (id, status) in [
        (&ok.id, StepStatus::Success),
        (&failed.id, StepStatus::Failed),
        (&cancelled.id, StepStatus::Cancelled),
    ] {
        assert_eq!(h.test.store.step(id).await.unwrap().unwrap().status, status);
        let delivery = h.wait_for_state(id, DeliveryState::Delivered).await;
        assert_eq!(delivery.attempts, 1);
        assert_eq!(delivery.last_http_status, Some(200));
    }
    // The metrics were committed with the status, in the same transaction as the outbox row.
    assert_eq!(
        h.test.store.step_metrics(&ok.id).await.unwrap(),
        Some(METRICS)
    );
    assert_eq!(h.test.store.step_metrics(&failed.id).await.unwrap(), None);
    let failed_row = h.test.store.step(&failed.id).await.unwrap().unwrap();
    assert_eq!(failed_row.error_type.as_deref(), Some("ToolError"));
    assert_eq!(failed_row.error_data, Some(json!({"message": "boom"})));
}

#[tokio::test]
async fn the_caller_returns_while_a_slow_endpoint_is_still_answering() {
    let h = Harness::start(Reply::Delay(Duration::from_secs(2), 200), &[50]).await;
    let step = h.manager.log_step("agent-1", None).await.unwrap();

    let started = Instant::now();
    h.manager
        .update_step_success(&step.id, Usage::default(), None, None)
        .await
        .unwrap();
    let returned_after = started.elapsed();

    assert!(
        returned_after < Duration::from_millis(500),
        "{returned_after:?}"
    );
    assert_eq!(
        h.test.store.step(&step.id).await.unwrap().unwrap().status,
        StepStatus::Success,
        "committed before returning"
    );
    h.receiver.wait_for(1, WAIT).await;
    h.wait_for_state(&step.id, DeliveryState::Delivered).await;
}

#[tokio::test]
async fn an_endpoint_that_stays_down_is_retried_on_schedule_then_dead_then_redelivered() {
    let h = Harness::start(Reply::Status(503), &[50, 100]).await;
    let step = h.manager.log_step("agent-1", None).await.unwrap();

    h.manager
        .update_step_success(&step.id, Usage::default(), None, None)
        .await
        .unwrap();
    let dead = h.wait_for_state(&step.id, DeliveryState::Dead).await;

    assert_eq!(
        dead.attempts, 3,
        "first attempt plus one per scheduled delay"
    );
    assert_eq!(h.receiver.count(), 3);
    assert_eq!(dead.last_http_status, Some(503));
    assert!(
        dead.last_error
            .as_deref()
            .unwrap_or("")
            .contains("gave up after 3 attempts")
    );
    let times: Vec<_> = h
        .receiver
        .requests()
        .iter()
        .map(|r| r.received_at)
        .collect();
    assert!(
        times[1] - times[0] >= Duration::from_millis(40),
        "waited ~50 ms ±20 %"
    );
    assert!(
        times[2] - times[1] >= Duration::from_millis(80),
        "waited ~100 ms ±20 %"
    );

    // Redelivery restarts the schedule: with the endpoint still down, the first new attempt
    // fails and the row is retried (not dead again at once); once it is back, it is delivered.
    h.receiver.set_reply(Reply::Sequence(vec![503, 200]));
    h.test
        .store
        .requeue(&step.id, stephook_store::Rebind::Keep)
        .await
        .unwrap();
    let delivered = h.wait_for_state(&step.id, DeliveryState::Delivered).await;
    assert_eq!(delivered.attempts, 2, "counted from the redelivery");
    assert_eq!(h.receiver.count(), 5);
    let history = h.test.store.attempts(&step.id, 100).await.unwrap();
    assert_eq!(history.len(), 5, "the history spans the redelivery");
    let ids: std::collections::HashSet<_> = h
        .receiver
        .requests()
        .iter()
        .filter_map(|r| r.step_id())
        .collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn a_permanent_answer_is_dead_after_one_attempt() {
    let h = Harness::start(Reply::Status(404), &[50, 50, 50]).await;
    let step = h.manager.log_step("agent-1", None).await.unwrap();

    h.manager
        .update_step_cancelled(&step.id, None)
        .await
        .unwrap();

    let dead = h.wait_for_state(&step.id, DeliveryState::Dead).await;
    assert_eq!(dead.attempts, 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.receiver.count(), 1);
}

#[tokio::test]
async fn a_restarted_dispatcher_delivers_everything_committed_while_it_was_down() {
    let mut h = Harness::start(Reply::Status(200), &[50]).await;
    h.stop_dispatcher().await;
    let mut ids = Vec::new();
    for _ in 0..20 {
        let step = h.manager.log_step("agent-1", None).await.unwrap();
        h.manager
            .update_step_success(&step.id, Usage::default(), None, None)
            .await
            .unwrap();
        ids.push(step.id);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        h.receiver.count(),
        0,
        "nothing is sent while the dispatcher is down"
    );

    h.restart_dispatcher();

    h.receiver.wait_for(20, WAIT).await;
    for id in &ids {
        h.wait_for_state(id, DeliveryState::Delivered).await;
    }
    assert_eq!(h.receiver.count(), 20);
}

#[tokio::test]
async fn repeated_updates_are_no_ops_and_conflicts_are_errors() {
    let h = Harness::start(Reply::Status(200), &[50]).await;
    let step = h.manager.log_step("agent-1", None).await.unwrap();
    h.manager
        .update_step_success(&step.id, Usage::default(), None, None)
        .await
        .unwrap();

    let again = h
        .manager
        .update_step_success(&step.id, Usage::default(), None, None)
        .await;
    let conflict = h.manager.update_step_cancelled(&step.id, None).await;

    assert_eq!(again.unwrap(), TerminalTransition::AlreadyInState);
    assert!(matches!(
        conflict,
        Err(StepError::Conflict {
            current: StepStatus::Success,
            ..
        })
    ));
    h.wait_for_state(&step.id, DeliveryState::Delivered).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.receiver.count(), 1, "no second webhook");
}

#[tokio::test]
async fn an_unknown_step_is_not_found_and_sends_nothing() {
    let h = Harness::start(Reply::Status(200), &[50]).await;
    let unknown = StepId::new_random();

    let result = h
        .manager
        .update_step_success(&unknown, Usage::default(), None, None)
        .await;

    assert!(matches!(result, Err(StepError::NotFound(id)) if id == unknown));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.receiver.count(), 0);
    assert_eq!(h.test.store.delivery(&unknown).await.unwrap(), None);
}

/// Two dispatchers (two processes: two pools) on one PostgreSQL database share 5,000 due rows:
/// every row is delivered and none is sent twice. Then a dispatcher dies holding leases: the
/// survivor sends those rows once the leases end, and the dead one's late result is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_dispatchers_on_one_postgres_share_the_rows_and_survive_a_dead_one() {
    const ROWS: usize = 5_000;
    const ORPHANS: usize = 16;
    const WRITERS: usize = 8;
    let Some(test) = testing::postgres().await else {
        return;
    };
    let receiver = Receiver::start(Reply::Status(200)).await;
    let webhook = webhook_to(&receiver);
    let second_pool = stephook_store::Store::connect(
        &stephook_core::StoreArgs::at(Secret::new(test.url.clone()))
            .validate()
            .unwrap(),
    )
    .await
    .unwrap();
    let config = DispatcherConfig {
        idle_poll: Duration::from_millis(50),
        ..Default::default()
    };
    // Rows are written before any dispatcher runs: this handle's wake-ups go nowhere.
    let queue_only = Dispatcher::new(test.store.clone(), webhook.clone(), config.clone()).unwrap();
    let writer = StepManager::new(test.store.clone(), queue_only.handle());
    let writers = (0..WRITERS).map(|_| {
        let writer = writer.clone();
        tokio::spawn(async move {
            for _ in 0..(ROWS + ORPHANS) / WRITERS {
                let step = writer.log_step("agent-1", None).await.unwrap();
                writer
                    .update_step_success(&step.id, Usage::default(), None, None)
                    .await
                    .unwrap();
            }
        })
    });
    for task in writers {
        task.await.unwrap();
    }
    // The dispatcher that will die takes some rows first (a 2 s lease) and never answers.
    let orphans = test
        .store
        .claim_due(
            &stephook_store::ClaimScope::All,
            &webhook.config().endpoint().expect("a URL"),
            ORPHANS as i64,
            2_000,
        )
        .await
        .unwrap();
    assert_eq!(orphans.len(), ORPHANS);

    let started = Instant::now();
    let dispatchers = [test.store.clone(), second_pool.clone()].map(|store| {
        Dispatcher::new(store, webhook.clone(), config.clone())
            .unwrap()
            .spawn()
    });
    receiver
        .wait_for(ROWS + ORPHANS, Duration::from_secs(120))
        .await;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let requests = receiver.requests();
    let unique: std::collections::HashSet<_> =
        requests.iter().filter_map(|r| r.step_id()).collect();
    assert_eq!(requests.len(), ROWS + ORPHANS, "none sent twice");
    assert_eq!(unique.len(), ROWS + ORPHANS, "every row sent");
    assert!(
        took >= Duration::from_millis(1500),
        "the orphans waited for their lease: {took:?}"
    );
    let refused = test
        .store
        .record_attempts(&[stephook_store::AttemptRecord {
            step_id: orphans[0].step_id.clone(),
            token: orphans[0].token.clone(),
            started_at: stephook_core::now_millis(),
            url: receiver.url(),
            state: DeliveryState::Retrying,
            retry_after_ms: Some(1_000),
            outcome: "timeout".into(),
            http_status: None,
            error: Some("late".into()),
            duration_ms: 1,
        }])
        .await
        .unwrap();
    assert_eq!(
        refused,
        vec![stephook_store::Fence::LeaseLost],
        "the dead dispatcher's late result is refused"
    );
    let counts = test.store.count_deliveries(i64::MAX).await.unwrap();
    assert_eq!(
        counts[2],
        (DeliveryState::Delivered, (ROWS + ORPHANS) as i64)
    );
    assert_eq!(
        counts.iter().map(|(_, n)| n).sum::<i64>(),
        (ROWS + ORPHANS) as i64
    );
    for dispatcher in dispatchers {
        dispatcher.stop().await;
    }
}

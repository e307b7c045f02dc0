//! The fast path's send of a row taken in the step's own transaction (`create_step`'s early
//! send), against a real SQLite store and a real loopback receiver.

use sqlx::{Connection, Executor};
use std::time::Duration;
use stephook_core::{Secret, Step, StepId, StepStatus, WebhookArgs};
use stephook_direct::{FastPath, FastPathResult};
use stephook_store::DeliveryState;
use stephook_store::testing;
use stephook_testkit::{Receiver, Reply};
use stephook_webhook::{OutcomeClass, WebhookService};

/// The outbox's grace period: far longer than the test, so only the fast path can send.
const GRACE: Duration = Duration::from_secs(60);
/// The fast path's lease margin here; the store stays locked for longer than it.
const LEASE_MARGIN: Duration = Duration::from_millis(300);
const LOCKED_FOR: Duration = Duration::from_millis(800);

fn webhook_to(receiver: &Receiver) -> WebhookService {
    let config = WebhookArgs {
        url: Some(Secret::new(receiver.url())),
        timeout_ms: Some("2000".into()),
        ..Default::default()
    }
    .validate()
    .expect("valid webhook settings");
    WebhookService::new(config).expect("a webhook client")
}

/// The step's commit waited behind another process's write lock for longer than the lease
/// margin: the take it wrote can no longer prove that its lease covers a send from the time it
/// was asked for. The row is still this holder's (nobody else can have taken it without changing
/// its token), so the send renews the take and goes out at once, instead of leaving a stored
/// step to the outbox's grace period.
#[tokio::test]
async fn a_step_whose_commit_waited_on_a_locked_store_is_still_sent_at_once() {
    // Arrange
    let test = testing::sqlite().await;
    let receiver = Receiver::start(Reply::Status(204)).await;
    let fast_path = FastPath::new(test.store.clone(), webhook_to(&receiver), GRACE)
        .with_lease_margin(LEASE_MARGIN);
    let mut step = Step::pending(StepId::new_random(), "agent-1", Some("run-1".into()));
    step.status = StepStatus::Success;
    let mut blocker = sqlx::SqliteConnection::connect(&test.url)
        .await
        .expect("another connection to the store");
    blocker
        .execute("BEGIN EXCLUSIVE")
        .await
        .expect("take the write lock");
    let release = tokio::spawn(async move {
        tokio::time::sleep(LOCKED_FOR).await;
        blocker.execute("ROLLBACK").await.expect("release the lock");
    });

    // Act
    let taken = fast_path.take_on_commit().expect("a webhook URL");
    let held = test
        .store
        .upsert_step_and_take(&step, None, &[], taken.take(), GRACE)
        .await
        .expect("the commit waits for the lock, then succeeds");
    release.await.expect("released");
    let result = fast_path.send_taken(&step.id, taken).await;

    // Assert
    assert!(held, "the step's transaction took its row");
    match result {
        FastPathResult::Sent { report, .. } => {
            assert_eq!(report.outcome.class(), OutcomeClass::Delivered);
        }
        other => panic!("expected the notification sent at once, got {other:?}"),
    }
    assert_eq!(receiver.count(), 1);
    let row = test.store.delivery(&step.id).await.unwrap().expect("a row");
    assert_eq!(row.state, DeliveryState::Delivered);
}

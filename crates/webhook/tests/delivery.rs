//! WebhookService against real loopback receivers: what a receiver sees, and what the caller
//! is told, for every kind of answer.

use std::time::{Duration, Instant};
use stephook_core::{Secret, StepId, WebhookArgs, WebhookConfig};
use stephook_testkit::{LogCapture, Receiver, Reply};
use stephook_webhook::{Outcome, OutcomeClass, WebhookService};

const KEY: &str = "test-key-1f2e3d4c5b6a";
const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn config(
    url: Option<String>,
    key: Option<&str>,
    secret: Option<&str>,
    timeout_ms: u64,
) -> WebhookConfig {
    WebhookArgs {
        url: url.map(Secret::new),
        key: key.map(Secret::new),
        signing_secret: secret.map(Secret::new),
        timeout_ms: Some(timeout_ms.to_string()),
    }
    .validate()
    .expect("valid test configuration")
}

fn service(url: &str, key: Option<&str>) -> WebhookService {
    WebhookService::new(config(Some(url.to_owned()), key, None, 2_000)).expect("client")
}

#[tokio::test]
async fn not_configured_sends_nothing() {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let service = WebhookService::new(config(None, Some(KEY), None, 2_000)).unwrap();

    let report = service.send(&StepId::new_random(), 1).await;

    assert_eq!(report.outcome, Outcome::NotConfigured);
    assert_eq!(report.outcome.class(), OutcomeClass::Skipped);
    assert!(!service.is_configured());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.count(), 0);
}

#[tokio::test]
async fn configured_with_key_sends_the_exact_reference_request() {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let id = StepId::new_random();

    let report = service(&receiver.url(), Some(KEY)).send(&id, 1).await;

    assert_eq!(report.outcome, Outcome::Delivered { status: 200 });
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.body.as_ref(),
        format!(r#"{{"step_id":"{id}"}}"#).as_bytes()
    );
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert!(
        request
            .header("user-agent")
            .unwrap_or("")
            .starts_with("stephook/")
    );
    assert_eq!(
        request.header("webhook-signature"),
        None,
        "no secret, no signature"
    );
}

#[tokio::test]
async fn without_key_there_is_no_authorization_header() {
    let receiver = Receiver::start(Reply::Status(204)).await;

    let report = service(&receiver.url(), None)
        .send(&StepId::new_random(), 1)
        .await;

    assert_eq!(report.outcome, Outcome::Delivered { status: 204 });
    assert_eq!(receiver.requests()[0].header("authorization"), None);
}

#[tokio::test]
async fn a_slow_endpoint_times_out_within_the_timeout_plus_a_second() {
    let receiver = Receiver::start(Reply::Delay(Duration::from_secs(5), 200)).await;
    let service = WebhookService::new(config(Some(receiver.url()), None, None, 300)).unwrap();
    let started = Instant::now();

    let report = service.send(&StepId::new_random(), 1).await;

    assert_eq!(report.outcome, Outcome::Timeout);
    assert!(report.outcome.is_retryable());
    assert!(
        started.elapsed() < Duration::from_millis(300 + 1_000),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn statuses_are_classified_retryable_or_permanent() {
    let receiver = Receiver::start(Reply::Status(500)).await;
    let service = service(&receiver.url(), None);
    let cases = [
        (500, OutcomeClass::Retryable),
        (503, OutcomeClass::Retryable),
        (429, OutcomeClass::Retryable),
        (408, OutcomeClass::Retryable),
        (404, OutcomeClass::Permanent),
        (400, OutcomeClass::Permanent),
        (401, OutcomeClass::Permanent),
    ];
    for (status, class) in cases {
        receiver.set_reply(Reply::Status(status));

        let report = service.send(&StepId::new_random(), 1).await;

        assert_eq!(report.outcome.http_status(), Some(status));
        assert!(matches!(report.outcome, Outcome::HttpStatus { .. }));
        assert_eq!(report.outcome.class(), class, "status {status}");
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let elsewhere = Receiver::start(Reply::Status(200)).await;
    let receiver = Receiver::start(Reply::Status(200)).await;
    let service = service(&receiver.url(), Some(KEY));
    for status in [301, 302, 307, 308] {
        receiver.set_reply(Reply::Redirect(status, elsewhere.url()));

        let report = service.send(&StepId::new_random(), 1).await;

        assert_eq!(report.outcome.http_status(), Some(status));
        assert_eq!(report.outcome.class(), OutcomeClass::Permanent);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        elsewhere.count(),
        0,
        "the key must never be re-sent elsewhere"
    );
}

#[tokio::test]
async fn a_huge_response_body_is_read_only_in_part() {
    const TEN_MIB: usize = 10 * 1024 * 1024;
    let receiver = Receiver::start(Reply::LargeBody(500, TEN_MIB)).await;
    let service = service(&receiver.url(), None);

    let report = service.send(&StepId::new_random(), 1).await;

    let Outcome::HttpStatus { status, body } = &report.outcome else {
        panic!("expected an HTTP status outcome, got {:?}", report.outcome);
    };
    assert_eq!(*status, 500);
    assert_eq!(
        body,
        &format!("{}…(+{} bytes)", "x".repeat(256), 64 * 1024 - 256),
        "only an excerpt of what was read (64 KiB) is kept"
    );
    // A 2xx body is not read at all.
    receiver.set_reply(Reply::LargeBody(200, TEN_MIB));
    let report = service.send(&StepId::new_random(), 1).await;
    assert_eq!(report.outcome, Outcome::Delivered { status: 200 });
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_logged_at_error_level() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    // A picked port nobody listens on (and no one else is handed): the connection is refused.
    let port = stephook_core::free_loopback_port().unwrap();
    let service = service(&format!("http://127.0.0.1:{port}/hook"), None);

    let report = service.send(&StepId::new_random(), 1).await;

    assert!(
        matches!(report.outcome, Outcome::Transport { .. }),
        "{:?}",
        report.outcome
    );
    assert!(report.outcome.is_retryable());
    let lines = logs.lines_with("could not be sent");
    assert_eq!(lines.len(), 1, "{}", logs.text());
    assert!(lines[0].contains("ERROR"), "{}", lines[0]);
}

#[tokio::test]
async fn outcomes_are_logged_at_the_reference_levels() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let receiver = Receiver::start(Reply::Status(200)).await;
    let service = service(&receiver.url(), None);

    service.send(&StepId::new_random(), 1).await;
    receiver.set_reply(Reply::Status(503));
    service.send(&StepId::new_random(), 1).await;
    WebhookService::new(config(None, None, None, 1_000))
        .unwrap()
        .send(&StepId::new_random(), 1)
        .await;

    assert!(logs.lines_with("webhook delivered")[0].contains("INFO"));
    let non_2xx = &logs.lines_with("non-2xx")[0];
    assert!(
        non_2xx.contains("WARN") && non_2xx.contains("status=503"),
        "{non_2xx}"
    );
    assert!(logs.lines_with("not configured")[0].contains("DEBUG"));
}

#[tokio::test]
async fn signatures_verify_with_an_independent_verifier() {
    let receiver = Receiver::start(Reply::Status(200)).await;
    let service = WebhookService::new(config(
        Some(receiver.url()),
        None,
        Some(SIGNING_SECRET),
        2_000,
    ))
    .unwrap();
    let id = StepId::new_random();

    service.send(&id, 1).await;
    service.send(&id, 2).await;

    let requests = receiver.requests();
    let verifier = standardwebhooks::Webhook::new(SIGNING_SECRET).expect("verifier");
    for request in &requests {
        verifier
            .verify(&request.body, &request.headers)
            .expect("signature verifies");
        let mut tampered = request.body.to_vec();
        tampered[2] = b'X';
        assert!(
            verifier.verify(&tampered, &request.headers).is_err(),
            "tampered body must fail"
        );
    }
    assert_eq!(requests[0].header("webhook-id"), Some(id.as_str()));
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id"),
        "webhook-id is stable across retries"
    );
}

#[tokio::test]
async fn secrets_never_reach_logs_or_debug_output() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let receiver = Receiver::start(Reply::Status(500)).await;
    let config = config(Some(receiver.url()), Some(KEY), Some(SIGNING_SECRET), 2_000);
    let service = WebhookService::new(config.clone()).unwrap();

    service.send(&StepId::new_random(), 1).await;
    tracing::info!(?config, ?service, "configuration in use");

    let shown = format!("{} {config:?} {service:?}", logs.text());
    assert!(shown.contains("configuration in use"));
    for secret in [KEY, SIGNING_SECRET, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"] {
        assert!(!shown.contains(secret), "secret leaked: {shown}");
    }
}

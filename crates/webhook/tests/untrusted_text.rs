//! What a receiver answers is untrusted text: against a real loopback receiver that echoes our
//! request headers and tries to forge a log line, nothing of ours leaks and nothing is forged.

use stephook_core::{Secret, StepId, WebhookArgs};
use stephook_testkit::{FORGED_LOG_LINE, LogCapture, Receiver, Reply};
use stephook_webhook::{Outcome, WebhookService};

const KEY: &str = "test-key-1f2e3d4c5b6a";
const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn service(url: String) -> WebhookService {
    let config = WebhookArgs {
        url: Some(Secret::new(url)),
        key: Some(Secret::new(KEY)),
        signing_secret: Some(Secret::new(SIGNING_SECRET)),
        timeout_ms: Some("2000".into()),
    }
    .validate()
    .expect("valid test configuration");
    WebhookService::new(config).expect("client")
}

#[tokio::test]
async fn an_echoing_receiver_cannot_leak_our_headers_or_forge_log_lines() {
    let logs = LogCapture::default();
    let _guard = logs.install();
    let receiver = Receiver::start(Reply::EchoHeaders(500)).await;

    let report = service(receiver.url()).send(&StepId::new_random(), 1).await;

    // The receiver did get both credentials, so its body really echoed them.
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let bearer = format!("Bearer {KEY}");
    assert_eq!(requests[0].header("authorization"), Some(bearer.as_str()));
    let signature = requests[0]
        .header("webhook-signature")
        .expect("signed request")
        .to_owned();
    let signature_base64 = signature.strip_prefix("v1,").expect("a v1 signature");

    let Outcome::HttpStatus { status, body } = &report.outcome else {
        panic!("expected an HTTP status outcome, got {:?}", report.outcome);
    };
    assert_eq!(*status, 500);
    // The excerpt does reach the echoed credentials (so the checks below are not vacuous)...
    assert!(
        body.starts_with(&format!("\\n{FORGED_LOG_LINE}\\n")),
        "{body}"
    );
    assert!(
        body.contains("authorization: Bearer [REDACTED]\\r\\n"),
        "{body}"
    );
    assert!(
        body.contains("webhook-signature: [REDACTED]\\r\\n"),
        "{body}"
    );
    // ...and neither they nor a raw newline reach the logs, the Display or the Debug output.
    let shown = format!("{}\n{}\n{:?}", logs.text(), report.outcome, report.outcome);
    for secret in [KEY, signature.as_str(), signature_base64] {
        assert!(!shown.contains(secret), "leaked {secret:?}: {shown}");
    }
    assert!(!report.outcome.to_string().contains(['\n', '\r']));
    let forged = logs.lines_with(FORGED_LOG_LINE);
    assert_eq!(forged.len(), 1, "{}", logs.text());
    assert!(
        forged[0].contains("non-2xx") && forged[0].contains(" WARN "),
        "the forged text stays inside our own warn line: {}",
        forged[0]
    );
    assert!(
        forged[0].contains(&format!("body=\"\\n{FORGED_LOG_LINE}\\n")),
        "{}",
        forged[0]
    );
}

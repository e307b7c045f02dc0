//! Send: one shared, pooled HTTP client per process, built once from the configuration.

use crate::excerpt::{excerpt, scrub};
use crate::outcome::Outcome;
use crate::{request, signing};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stephook_core::{StepId, WebhookConfig};

/// At most this much of a response body is read; the rest is never pulled off the socket.
pub const RESPONSE_BODY_LIMIT: usize = 64 * 1024;
/// Idle keep-alive connections kept per host: enough for the dispatcher's concurrency.
const POOL_MAX_IDLE_PER_HOST: usize = 64;
const CONNECT_TIMEOUT_CAP: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("STEP_COMPLETE_KEY: the key cannot be sent as an HTTP header value")]
    InvalidKey,
}

/// What one attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Cheap to clone: clones share the client and its connection pool.
#[derive(Clone, Debug)]
pub struct WebhookService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    config: WebhookConfig,
    /// Built once: the key is checked at start and never formatted again.
    authorization: Option<HeaderValue>,
}

impl WebhookService {
    pub fn new(config: WebhookConfig) -> Result<Self, WebhookError> {
        let client = reqwest::Client::builder()
            .user_agent(request::USER_AGENT)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(CONNECT_TIMEOUT_CAP))
            // A 3xx is a failed delivery: following it could hand the key to another host.
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .build()?;
        let authorization = config
            .key
            .as_ref()
            .map(|key| {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| WebhookError::InvalidKey)?;
                value.set_sensitive(true);
                Ok::<_, WebhookError>(value)
            })
            .transpose()?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                config,
                authorization,
            }),
        })
    }

    pub fn is_configured(&self) -> bool {
        self.inner.config.url.is_some()
    }

    pub fn config(&self) -> &WebhookConfig {
        &self.inner.config
    }

    /// Sends the notification for one step, once, and logs the outcome. Never returns an error:
    /// every failure is an [`Outcome`] for the caller to record. `attempt` (1-based) is only for
    /// the log line.
    pub async fn send(&self, step_id: &StepId, attempt: u32) -> DeliveryReport {
        let started = Instant::now();
        let outcome = self.attempt(step_id).await;
        let elapsed = started.elapsed();
        outcome.log(step_id, attempt, elapsed);
        DeliveryReport { outcome, elapsed }
    }

    async fn attempt(&self, step_id: &StepId) -> Outcome {
        let Some(url) = &self.inner.config.url else {
            return Outcome::NotConfigured;
        };
        let body = request::body(step_id);
        // Values of ours a receiver could echo back (in its body) into our logs and the store.
        let mut sent_secrets: Vec<String> = Vec::new();
        let mut builder = self
            .inner
            .client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json");
        if let Some(authorization) = &self.inner.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        if let Some(key) = &self.inner.config.key {
            sent_secrets.extend(echo_forms(key.expose()));
        }
        if let Some(secret) = &self.inner.config.signing_secret {
            let msg_id = request::message_id(step_id);
            let timestamp = stephook_core::now_unix_seconds();
            let signature = signing::sign(secret, msg_id, timestamp, &body);
            sent_secrets.extend(echo_forms(&signature));
            builder = builder
                .header(request::HEADER_WEBHOOK_ID, msg_id)
                .header(request::HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
                .header(request::HEADER_WEBHOOK_SIGNATURE, signature);
        }
        let response = match builder.body(body).send().await {
            Ok(response) => response,
            Err(error) => return transport_outcome(&error),
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            // The answer is in: the body is not needed and is not read.
            return Outcome::Delivered { status };
        }
        let raw = read_bounded(response).await;
        let secrets: Vec<&[u8]> = sent_secrets.iter().map(|s| s.as_bytes()).collect();
        Outcome::HttpStatus {
            status,
            body: excerpt(&scrub(&raw, &secrets)),
        }
    }
}

/// The ways a header value of ours can come back in a body that echoes it: as sent, and
/// JSON-escaped (`"` and `\`, and `/` as `\/`, which some encoders write).
fn echo_forms(value: &str) -> Vec<String> {
    let json = value.replace('\\', "\\\\").replace('"', "\\\"");
    let mut forms = vec![value.to_owned(), json.replace('/', "\\/"), json];
    forms.sort();
    forms.dedup();
    // Longest first, so a longer form is blanked before a shorter one inside it is.
    forms.sort_by_key(|form| std::cmp::Reverse(form.len()));
    forms
}

fn transport_outcome(error: &reqwest::Error) -> Outcome {
    if error.is_timeout() {
        return Outcome::Timeout;
    }
    // reqwest's own message repeats the URL; the chain of sources says what happened
    // ("Connection refused") without it.
    let mut message = String::from(if error.is_connect() {
        "connect error"
    } else if error.is_body() {
        "body error"
    } else {
        "request error"
    });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    Outcome::Transport { error: message }
}

/// Reads at most [`RESPONSE_BODY_LIMIT`] bytes; a failure mid-body keeps what arrived.
async fn read_bounded(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < RESPONSE_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = RESPONSE_BODY_LIMIT - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::echo_forms;

    #[test]
    fn echo_forms_cover_json_escaping() {
        assert_eq!(echo_forms("plain-key"), vec!["plain-key".to_owned()]);
        assert_eq!(
            echo_forms("v1,a/b+c="),
            vec!["v1,a\\/b+c=".to_owned(), "v1,a/b+c=".to_owned()]
        );
        assert_eq!(
            echo_forms(r#"k"\"#),
            vec![r#"k\"\\"#.to_owned(), r#"k"\"#.to_owned()]
        );
    }
}

//! Classify: what a failed model call is. As Letta's Temporal loop treats them: 429, 5xx,
//! timeouts and dropped connections are worth another attempt (after `Retry-After` when the
//! provider says); 400, 401, 403, 404 (and other 4xx) get the same answer every time and fail the
//! step. The provider's answer is kept only as an escaped, truncated excerpt, never with the key.

use std::time::Duration;
use stephook_core::excerpt::{excerpt, scrub};

/// What a failed model call is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Worth another attempt.
    #[error("model call failed, worth retrying: {reason}")]
    Retryable {
        reason: String,
        status: Option<u16>,
        /// When the provider asked to wait (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// Another attempt would get the same answer: the step fails.
    #[error("model call refused ({error_type}, HTTP {status}): {excerpt}")]
    Permanent {
        /// `context_length_exceeded`, `bad_request`, `unauthorized`, `forbidden`, `not_found`,
        /// or `http_<status>`.
        error_type: String,
        status: u16,
        /// The provider's answer, escaped and truncated.
        excerpt: String,
    },
    /// A 2xx whose body is not a chat completion (or has no choice).
    #[error("the model's answer is not a chat completion: {excerpt}")]
    Malformed { excerpt: String },
}

impl ModelError {
    /// Classifies an HTTP answer that was not a 2xx. `key` is blanked out of the excerpt should
    /// the provider echo it.
    pub fn from_status(
        status: u16,
        retry_after: Option<&str>,
        body: &[u8],
        key: Option<&str>,
    ) -> Self {
        let secrets: Vec<&[u8]> = key.map(str::as_bytes).into_iter().collect();
        let shown = excerpt(&scrub(body, &secrets));
        if status == 408 || status == 409 || status == 429 || status >= 500 {
            return Self::Retryable {
                reason: format!("HTTP {status}: {shown}"),
                status: Some(status),
                retry_after: retry_after.and_then(parse_retry_after),
            };
        }
        let error_type = match status {
            400 if context_length(body) => "context_length_exceeded".to_owned(),
            400 => "bad_request".to_owned(),
            401 => "unauthorized".to_owned(),
            403 => "forbidden".to_owned(),
            404 => "not_found".to_owned(),
            other => format!("http_{other}"),
        };
        Self::Permanent {
            error_type,
            status,
            excerpt: shown,
        }
    }

    /// A request that got no answer: timed out, refused, dropped.
    pub fn transport(reason: impl Into<String>) -> Self {
        Self::Retryable {
            reason: reason.into(),
            status: None,
            retry_after: None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable { .. })
    }
}

/// Whether a 400's body says the conversation is over the model's context window, as OpenAI
/// (`code`), vLLM and llama.cpp (the message) put it.
fn context_length(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    text.contains("context_length_exceeded")
        || text.contains("maximum context length")
        || text.contains("context window")
        || text.contains("exceeds the context")
}

/// `Retry-After`: whole seconds (what providers send); an HTTP date is not worth parsing here
/// (Temporal's own backoff applies then). At most 10 minutes.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fall_into_their_classes() {
        let limited = ModelError::from_status(429, Some("7"), b"slow down", None);
        assert_eq!(
            limited,
            ModelError::Retryable {
                reason: "HTTP 429: slow down".into(),
                status: Some(429),
                retry_after: Some(Duration::from_secs(7)),
            }
        );
        assert!(ModelError::from_status(503, None, b"", None).is_retryable());
        let cases = [
            (
                400,
                r#"{"error":{"code":"context_length_exceeded"}}"#,
                "context_length_exceeded",
            ),
            (400, r#"{"error":{"message":"bad"}}"#, "bad_request"),
            (401, "no", "unauthorized"),
            (403, "no", "forbidden"),
            (404, "model not found", "not_found"),
            (422, "no", "http_422"),
        ];
        for (status, body, expected) in cases {
            let ModelError::Permanent { error_type, .. } =
                ModelError::from_status(status, None, body.as_bytes(), None)
            else {
                panic!("{status} should be permanent");
            };
            assert_eq!(error_type, expected);
        }
    }

    #[test]
    fn the_answer_is_inert_and_never_carries_the_key() {
        let error = ModelError::from_status(
            401,
            None,
            b"bad key sk-live-123\nERROR forged line",
            Some("sk-live-123"),
        );
        let ModelError::Permanent { excerpt, .. } = &error else {
            panic!("{error:?}");
        };
        assert!(!excerpt.contains("sk-live-123"), "{excerpt}");
        assert!(!excerpt.contains('\n'), "{excerpt}");
    }
}

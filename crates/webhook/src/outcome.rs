//! Classify: what one attempt ended with, whether it is worth retrying, and how loudly to log it.

use crate::excerpt::inert;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use stephook_core::StepId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// No URL configured: nothing was sent.
    NotConfigured,
    /// A 2xx answer.
    Delivered { status: u16 },
    /// No answer within the configured timeout.
    Timeout,
    /// Any other status (a 3xx is one too: redirects are never followed). `body` is an
    /// [`excerpt`](crate::excerpt::excerpt) of what the receiver sent, never the raw body (and is
    /// printed through [`inert`] anyway, should someone build this variant by hand).
    HttpStatus { status: u16, body: String },
    /// DNS, refused connection, TLS, a broken connection... (printed through [`inert`] too).
    Transport { error: String },
}

/// What a caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeClass {
    /// Nothing to send.
    Skipped,
    Delivered,
    /// Worth another attempt later.
    Retryable,
    /// Another attempt would get the same answer.
    Permanent,
}

impl Outcome {
    pub fn class(&self) -> OutcomeClass {
        match self {
            Self::NotConfigured => OutcomeClass::Skipped,
            Self::Delivered { .. } => OutcomeClass::Delivered,
            Self::Timeout | Self::Transport { .. } => OutcomeClass::Retryable,
            Self::HttpStatus { status, .. } => classify_status(*status),
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class() == OutcomeClass::Retryable
    }

    pub fn http_status(&self) -> Option<u16> {
        match self {
            Self::Delivered { status } | Self::HttpStatus { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A short label for metrics and the CLI: not_configured, delivered, timeout, http_status,
    /// transport.
    pub fn label(&self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::Delivered { .. } => "delivered",
            Self::Timeout => "timeout",
            Self::HttpStatus { .. } => "http_status",
            Self::Transport { .. } => "transport",
        }
    }

    /// Logs the outcome at the reference's levels: not configured → debug, 2xx → info,
    /// timeout → warn, non-2xx → warn with the status, anything else → error.
    pub fn log(&self, step_id: &StepId, attempt: u32, elapsed: Duration) {
        let elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let step_id = step_id.as_str();
        match self {
            Self::NotConfigured => tracing::debug!(
                step_id,
                "STEP_COMPLETE_WEBHOOK not configured, skipping step-complete notification"
            ),
            Self::Delivered { status } => tracing::info!(
                step_id,
                status,
                attempt,
                elapsed_ms,
                "step-complete webhook delivered"
            ),
            Self::Timeout => tracing::warn!(
                step_id,
                attempt,
                elapsed_ms,
                "step-complete webhook timed out"
            ),
            Self::HttpStatus { status, body } => tracing::warn!(
                step_id, status, attempt, elapsed_ms, body = ?inert(body),
                retryable = self.is_retryable(),
                "step-complete webhook answered with a non-2xx status"
            ),
            Self::Transport { error } => tracing::error!(
                step_id, attempt, elapsed_ms, error = ?inert(error),
                "step-complete webhook could not be sent"
            ),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConfigured => f.write_str("not configured"),
            Self::Delivered { status } => write!(f, "delivered ({status})"),
            Self::Timeout => f.write_str("timed out"),
            Self::HttpStatus { status, body } if body.is_empty() => write!(f, "HTTP {status}"),
            Self::HttpStatus { status, body } => write!(f, "HTTP {status}: {}", inert(body)),
            Self::Transport { error } => write!(f, "transport error: {}", inert(error)),
        }
    }
}

/// 408 and 429 say "later"; 5xx is the receiver's trouble; any other status (3xx, 4xx) will
/// not change by asking again.
pub fn classify_status(status: u16) -> OutcomeClass {
    match status {
        200..=299 => OutcomeClass::Delivered,
        408 | 429 | 500..=599 => OutcomeClass::Retryable,
        _ => OutcomeClass::Permanent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_design_says() {
        for status in [200, 201, 204, 299] {
            assert_eq!(classify_status(status), OutcomeClass::Delivered);
        }
        for status in [408, 429, 500, 502, 503, 599] {
            assert_eq!(classify_status(status), OutcomeClass::Retryable, "{status}");
        }
        for status in [301, 302, 307, 400, 401, 403, 404, 410, 422] {
            assert_eq!(classify_status(status), OutcomeClass::Permanent, "{status}");
        }
    }

    #[test]
    fn transport_and_timeout_are_retryable() {
        assert!(Outcome::Timeout.is_retryable());
        assert!(
            Outcome::Transport {
                error: "refused".into()
            }
            .is_retryable()
        );
        assert_eq!(Outcome::NotConfigured.class(), OutcomeClass::Skipped);
    }

    #[test]
    fn display_never_carries_raw_control_characters() {
        let outcome = Outcome::HttpStatus {
            status: 500,
            body: "oops\nERROR forged \u{1b}[2J".into(),
        };
        assert_eq!(
            outcome.to_string(),
            "HTTP 500: oops\\nERROR forged \\u{1b}[2J"
        );
        let outcome = Outcome::Transport {
            error: "x".repeat(5_000) + "\r\n",
        };
        let shown = outcome.to_string();
        assert!(!shown.contains('\n') && !shown.contains('\r'), "{shown}");
        assert!(shown.len() <= "transport error: ".len() + crate::excerpt::QUOTE_LIMIT);
    }
}

//! The offline, deterministic step body shared by direct mode and the Temporal step-body
//! activity. It stands in for a model call (a real one comes later) and is driven by markers in
//! the run's messages, so tests and demos can make a step fail or take time:
//!
//! - `fail-at:N` — step N fails for good with error type `StepBodyFailed` (steps count from 1,
//!   as everything a person reads does: `fail-at:1` fails the first step);
//! - `sleep-ms:N` — every step takes N milliseconds (the caller sleeps; this stays pure).

use crate::message::USER_ROLE;
use crate::{Message, Usage};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Steps a run takes on the offline echo when its input does not say, in either mode: the echo
/// goes on until its step count, and this keeps runs short.
pub const DEFAULT_ECHO_STEPS: u32 = 3;
pub const DEMO_MODEL: &str = "stephook-offline-echo";
pub const DEMO_PROVIDER: &str = "offline";
pub const STEP_BODY_ERROR_TYPE: &str = "StepBodyFailed";
const FAIL_AT_MARKER: &str = "fail-at:";
const SLEEP_MARKER: &str = "sleep-ms:";
/// How much of the user's message a reply quotes. A reply must not grow with the conversation:
/// quoting the last message of any role (as the echo once did) quoted, escaped, the previous
/// reply, which doubled every step (2 MB by step 20, past Temporal's payload limit).
const ECHO_QUOTE_MAX_CHARS: usize = 200;

/// What a step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutput {
    pub reply: String,
    pub usage: Usage,
    pub stop_reason: String,
}

/// Why a step failed (for good: the same input fails the same way).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct StepBodyError {
    pub error_type: String,
    pub message: String,
}

/// The plan for step `index` (0-based, as the loop counts) of a run with these messages: how long
/// it takes and what it ends in. Everything it says counts steps from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    pub delay: Duration,
    pub result: Result<StepOutput, StepBodyError>,
}

pub fn plan_step(messages: &[Message], index: u32) -> StepPlan {
    let delay = Duration::from_millis(marker_value(messages, SLEEP_MARKER).unwrap_or(0));
    let number = u64::from(index) + 1;
    if marker_value(messages, FAIL_AT_MARKER) == Some(number) {
        return StepPlan {
            delay,
            result: Err(StepBodyError {
                error_type: STEP_BODY_ERROR_TYPE.to_owned(),
                message: format!(
                    "step {number} failed as the run's messages asked (fail-at:{number})"
                ),
            }),
        };
    }
    let reply = format!("step {number}: echo {:?}", echo_quote(messages));
    let prompt_tokens = token_count(messages.iter().map(|m| m.content.as_str()));
    let completion_tokens = token_count([reply.as_str()]);
    StepPlan {
        delay,
        result: Ok(StepOutput {
            usage: Usage {
                model: Some(DEMO_MODEL.to_owned()),
                provider: Some(DEMO_PROVIDER.to_owned()),
                prompt_tokens,
                completion_tokens,
                total_tokens: prompt_tokens + completion_tokens,
                ..Default::default()
            },
            reply,
            stop_reason: "end_turn".to_owned(),
        }),
    }
}

/// The user's last message, cut to `ECHO_QUOTE_MAX_CHARS` (the run's input when no message is
/// the user's).
fn echo_quote(messages: &[Message]) -> String {
    let last = messages
        .iter()
        .rev()
        .find(|m| m.role == USER_ROLE)
        .or(messages.last())
        .map_or("", |m| m.content.as_str());
    let mut quote: String = last.chars().take(ECHO_QUOTE_MAX_CHARS).collect();
    if quote.len() < last.len() {
        quote.push('…');
    }
    quote
}

fn marker_value(messages: &[Message], marker: &str) -> Option<u64> {
    messages
        .iter()
        .flat_map(|m| m.content.split_whitespace())
        .find_map(|word| word.strip_prefix(marker)?.parse().ok())
}

/// Whitespace-separated words: a stable stand-in for a tokenizer.
fn token_count<'a>(texts: impl IntoIterator<Item = &'a str>) -> i64 {
    let words: usize = texts
        .into_iter()
        .map(|t| t.split_whitespace().count())
        .sum();
    i64::try_from(words).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(items: &[&str]) -> Vec<Message> {
        items.iter().map(|s| Message::user(*s)).collect()
    }

    #[test]
    fn same_input_same_output() {
        let m = msgs(&["hello there"]);
        assert_eq!(plan_step(&m, 1), plan_step(&m, 1));
        let out = plan_step(&m, 1).result.unwrap();
        assert_eq!(out.usage.prompt_tokens, 2);
        assert_eq!(
            out.usage.total_tokens,
            out.usage.prompt_tokens + out.usage.completion_tokens
        );
    }

    #[test]
    fn a_reply_quotes_the_users_message_and_does_not_grow_with_the_conversation() {
        // The conversation as the Temporal echo sees it: the user, then each step's reply.
        let mut conversation = msgs(&["plan a \"trip\""]);
        let mut lengths = Vec::new();
        for index in 0..20 {
            let reply = plan_step(&conversation, index).result.unwrap().reply;
            lengths.push(reply.len());
            conversation.push(Message {
                role: "assistant".to_owned(),
                content: reply,
            });
        }
        assert!(lengths.iter().all(|&n| n < 64), "{lengths:?}");
        assert_eq!(
            conversation[1].content,
            "step 1: echo \"plan a \\\"trip\\\"\""
        );
        assert_eq!(
            conversation[20].content,
            "step 20: echo \"plan a \\\"trip\\\"\""
        );
    }

    #[test]
    fn a_long_message_is_quoted_cut() {
        let long = "word ".repeat(1000);
        let reply = plan_step(&msgs(&[&long]), 0).result.unwrap().reply;
        assert!(reply.len() < ECHO_QUOTE_MAX_CHARS + 40, "{}", reply.len());
        assert!(reply.ends_with("…\""), "{reply}");
    }

    #[test]
    fn markers_fail_a_step_and_slow_every_step() {
        // Steps count from 1: fail-at:2 fails the second step, index 1 of the loop.
        let m = msgs(&["go", "fail-at:2 sleep-ms:30"]);
        assert!(plan_step(&m, 0).result.is_ok());
        let err = plan_step(&m, 1).result.unwrap_err();
        assert_eq!(err.error_type, STEP_BODY_ERROR_TYPE);
        assert!(err.message.starts_with("step 2 failed"), "{}", err.message);
        assert!(plan_step(&m, 2).result.is_ok());
        assert_eq!(plan_step(&m, 0).delay, Duration::from_millis(30));
    }
}

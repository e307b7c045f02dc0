//! Prepare: the exact request a receiver gets for one step.

use stephook_core::StepId;

pub const HEADER_WEBHOOK_ID: &str = "webhook-id";
pub const HEADER_WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
pub const HEADER_WEBHOOK_SIGNATURE: &str = "webhook-signature";
pub const USER_AGENT: &str = concat!("stephook/", env!("CARGO_PKG_VERSION"));

/// The body, byte for byte as the reference sends it: receivers written for it keep working.
pub fn body(step_id: &StepId) -> Vec<u8> {
    // serde_json escapes the id; a StepId is `step-<uuid>` so nothing needs escaping anyway.
    serde_json::to_vec(&serde_json::json!({ "step_id": step_id.as_str() }))
        .unwrap_or_else(|_| unreachable!("a JSON object of one string always serializes"))
}

/// The Standard Webhooks message id: the step id itself, so it is the same on every retry and
/// redelivery of one step's notification and receivers can dedupe on it.
pub fn message_id(step_id: &StepId) -> &str {
    step_id.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_exactly_the_reference_payload() {
        let id = StepId::parse("step-01234567-89ab-cdef-0123-456789abcdef").unwrap();
        assert_eq!(
            body(&id),
            br#"{"step_id":"step-01234567-89ab-cdef-0123-456789abcdef"}"#.to_vec()
        );
    }
}

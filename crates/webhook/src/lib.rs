//! WebhookService: tells an outside endpoint that a step reached a terminal state.
//!
//! Delivery is a small typed pipeline: [`request`] prepares the exact bytes and headers,
//! [`service`] sends them on one shared client, [`outcome`] classifies what came back (and logs
//! it at the reference's level), and the caller records it (the outbox in direct mode, the
//! activity result in Temporal mode). What a receiver answers is only ever kept and printed as
//! an inert [`excerpt`].

/// Receiver text made inert (shared with the model client, which quotes providers' answers).
pub use stephook_core::excerpt;
pub mod outcome;
pub mod request;
pub mod service;
pub mod signing;

pub use signing::VerifyError;

pub use outcome::{Outcome, OutcomeClass};
pub use request::{HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP};
pub use service::{DeliveryReport, WebhookError, WebhookService};

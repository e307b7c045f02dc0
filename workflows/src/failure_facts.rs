//! Reading an activity's failure in the workflow. `ActivityExecutionError`'s own message is
//! generic ("Activity task failed"); what the activity said is in its cause chain, possibly under a
//! timeout wrapper (when schedule-to-close ran out mid-attempt the last attempt's failure is the
//! timeout's cause).

use stephook_activities::WebhookFailureDetails;
use temporalio_common::error::{ApplicationFailure, IncomingError};
use temporalio_sdk::ActivityExecutionError;

/// Error type for a step body that failed without an application failure (e.g. it timed out).
pub const STEP_BODY_INFRA_ERROR_TYPE: &str = "StepBodyError";

/// What the workflow records about a notification it gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookFailureFacts {
    /// 0 when the failure does not say (e.g. no attempt ever reached the activity).
    pub attempts: u32,
    pub http_status: Option<u16>,
    pub error: String,
}

/// What the workflow records about a step whose work failed for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailureFacts {
    pub error_type: String,
    pub message: String,
}

pub fn webhook_failure_facts(error: &ActivityExecutionError) -> WebhookFailureFacts {
    match first_application_failure(error) {
        Some(app) => {
            let details = app.details::<WebhookFailureDetails>().ok().flatten();
            WebhookFailureFacts {
                attempts: details.as_ref().map_or(0, |d| d.attempt),
                http_status: details.and_then(|d| d.http_status),
                error: app.to_string(),
            }
        }
        None => WebhookFailureFacts {
            attempts: 0,
            http_status: None,
            error: describe(error),
        },
    }
}

pub fn step_failure_facts(error: &ActivityExecutionError) -> StepFailureFacts {
    match first_application_failure(error) {
        Some(app) => StepFailureFacts {
            error_type: app
                .type_name()
                .unwrap_or(STEP_BODY_INFRA_ERROR_TYPE)
                .to_owned(),
            message: app.to_string(),
        },
        None => StepFailureFacts {
            error_type: STEP_BODY_INFRA_ERROR_TYPE.to_owned(),
            message: describe(error),
        },
    }
}

/// The details the activity attached to its failure, when they are a `T`.
pub(crate) fn details<T: temporalio_common::data_converters::TemporalDeserializable + 'static>(
    error: &ActivityExecutionError,
) -> Option<T> {
    first_application_failure(error)?
        .details::<T>()
        .ok()
        .flatten()
}

/// The activity's own message (or the most specific one in the chain), for logs.
pub fn failure_message(error: &ActivityExecutionError) -> String {
    first_application_failure(error)
        .map(ToString::to_string)
        .unwrap_or_else(|| describe(error))
}

fn first_application_failure(error: &ActivityExecutionError) -> Option<&ApplicationFailure> {
    let mut cause = error.cause();
    while let Some(current) = cause {
        if let IncomingError::Application(app) = current {
            return Some(app);
        }
        cause = current.cause();
    }
    None
}

/// The most specific message in the chain (the outermost cause), else the error itself.
fn describe(error: &ActivityExecutionError) -> String {
    error
        .cause()
        .map(ToString::to_string)
        .unwrap_or_else(|| error.to_string())
}

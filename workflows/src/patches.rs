//! Which of the workflow's recorded changes a run takes, decided once, at its start, by its
//! history's patch markers: runs started before a change replay the way they were recorded.
//!
//! Every patch marker costs a run more than its event: the SDK also upserts the
//! `TemporalChangeVersion` search attribute with it, which the server writes to its visibility
//! store. So a new run records one marker, [`STEPS_V4_PATCH`], that stands for all the changes
//! before it, and only runs recorded before it look for the markers one by one.

use crate::AgentWorkflow;
use crate::store::StoreBy;
use temporalio_sdk::WorkflowContext;

/// Histories recorded since the outbox carry this patch marker: each step's notification runs
/// beside the next steps and a given-up one is left to the outbox. Histories without it (runs
/// started before) replay the old way: notify, wait, record undelivered, then the next step.
pub const OUTBOX_PATCH: &str = "stephook-outbox-fast-path";
/// Histories recorded since the model step carry this marker: a step is `call_model`, then its
/// `call_tool`s. Histories without it replay the offline step body (`run_step_body`).
pub const MODEL_STEP_PATCH: &str = "stephook-model-step";
/// Histories recorded since `create_step` runs as a local activity carry this marker (see
/// [`crate::store`]). Histories without it store each step with the regular activity.
pub const LOCAL_STORE_PATCH: &str = "stephook-local-create-step";
/// Histories recorded since runs record one marker carry only this one: all three changes above.
pub const STEPS_V4_PATCH: &str = "stephook-steps-v4";

/// The paths one run takes.
#[derive(Clone, Copy)]
pub(crate) struct RunPaths {
    /// Notifications run beside the next steps (the outbox), not awaited one by one.
    pub(crate) alongside_steps: bool,
    /// A step is a model call and its tool calls, not the offline step body.
    pub(crate) model_steps: bool,
    pub(crate) store_by: StoreBy,
}

impl RunPaths {
    /// Today's paths: what every new run takes.
    const CURRENT: Self = Self {
        alongside_steps: true,
        model_steps: true,
        store_by: StoreBy::LocalActivity,
    };

    /// Called once, first thing in the run: a patch check must come at the same point of the
    /// run on every replay.
    pub(crate) fn of(ctx: &WorkflowContext<AgentWorkflow>) -> Self {
        if ctx.patched(STEPS_V4_PATCH) {
            return Self::CURRENT;
        }
        Self {
            alongside_steps: ctx.patched(OUTBOX_PATCH),
            model_steps: ctx.patched(MODEL_STEP_PATCH),
            store_by: if ctx.patched(LOCAL_STORE_PATCH) {
                StoreBy::LocalActivity
            } else {
                StoreBy::Activity
            },
        }
    }
}

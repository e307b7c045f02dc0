//! StepManager: the status changes of direct mode. Each commits the step and its outbox row in
//! one transaction and returns without waiting for any HTTP call.

use crate::dispatcher::DispatcherHandle;
use serde_json::Value;
use std::time::Duration;
use stephook_core::{Step, StepId, StepMetrics, StepStatus, Usage};
use stephook_store::{Notify, NotifyTo, Store, StoreError, TerminalTransition, TerminalUpdate};

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("step {0} not found")]
    NotFound(StepId),
    #[error("step {id} is already {current}; it cannot become {requested}")]
    Conflict {
        id: StepId,
        current: StepStatus,
        requested: StepStatus,
    },
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for StepError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::StepNotFound(id) => Self::NotFound(id),
            StoreError::Conflict {
                id,
                current,
                requested,
            } => Self::Conflict {
                id,
                current,
                requested,
            },
            other => Self::Store(other),
        }
    }
}

#[derive(Clone)]
pub struct StepManager {
    store: Store,
    dispatcher: DispatcherHandle,
}

impl StepManager {
    pub fn new(store: Store, dispatcher: DispatcherHandle) -> Self {
        Self { store, dispatcher }
    }

    /// Records a new pending step.
    pub async fn log_step(&self, agent_id: &str, run_id: Option<&str>) -> Result<Step, StepError> {
        let step = Step::pending(StepId::new_random(), agent_id, run_id.map(str::to_owned));
        self.store.insert_step(&step).await?;
        Ok(step)
    }

    /// The step succeeded. `metrics` (step time, model-call time) are committed with the status,
    /// so a receiver that looks the step up finds them.
    pub async fn update_step_success(
        &self,
        id: &StepId,
        usage: Usage,
        stop_reason: Option<String>,
        metrics: Option<StepMetrics>,
    ) -> Result<TerminalTransition, StepError> {
        let mut update = TerminalUpdate::new(StepStatus::Success);
        update.usage = Some(usage);
        update.stop_reason = stop_reason;
        update.metrics = metrics;
        self.finish(id, update).await
    }

    pub async fn update_step_error(
        &self,
        id: &StepId,
        error_type: &str,
        error_data: Value,
        metrics: Option<StepMetrics>,
    ) -> Result<TerminalTransition, StepError> {
        let mut update = TerminalUpdate::new(StepStatus::Failed);
        update.error_type = Some(error_type.to_owned());
        update.error_data = Some(error_data);
        update.metrics = metrics;
        self.finish(id, update).await
    }

    pub async fn update_step_cancelled(
        &self,
        id: &StepId,
        metrics: Option<StepMetrics>,
    ) -> Result<TerminalTransition, StepError> {
        let mut update = TerminalUpdate::new(StepStatus::Cancelled);
        update.metrics = metrics;
        self.finish(id, update).await
    }

    async fn finish(
        &self,
        id: &StepId,
        update: TerminalUpdate,
    ) -> Result<TerminalTransition, StepError> {
        // Due at once (direct mode has no fast path to wait for), for this process's endpoint.
        let notify = self.dispatcher.endpoint().map(|endpoint| Notify {
            after: Duration::ZERO,
            to: NotifyTo::Endpoint(endpoint),
        });
        if notify.is_none() {
            tracing::debug!(step_id = %id, "STEP_COMPLETE_WEBHOOK not configured, skipping step-complete notification");
        }
        let transition = self.store.complete_step(id, &update, notify).await?;
        if transition == TerminalTransition::Applied && notify.is_some() {
            // Committed: now the dispatcher may look. It would find the row by polling anyway.
            self.dispatcher.wake();
        }
        Ok(transition)
    }
}

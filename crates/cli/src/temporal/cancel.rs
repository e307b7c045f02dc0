//! `stephook cancel <workflow id | run id>`: asks Temporal to cancel an agent run. The workflow
//! then stores its current step as cancelled and notifies it before it ends.

use super::connect::{TemporalArgs, connect};
use anyhow::{Context as _, anyhow};
use stephook_core::run_id_of;
use stephook_workflows::{AgentWorkflow, workflow_id_for};
use temporalio_client::WorkflowCancelOptions;

#[derive(Debug, Clone, clap::Args)]
pub struct CancelArgs {
    /// The workflow id `stephook run` printed (agent-run-<run id>), or the run id.
    pub run: String,
    #[command(flatten)]
    pub temporal: TemporalArgs,
}

pub async fn cancel(args: CancelArgs) -> anyhow::Result<()> {
    let workflow_id = workflow_id_for(run_id_of(&args.run));
    let client = connect(&args.temporal).await?;
    client
        .get_workflow_handle::<AgentWorkflow>(workflow_id.clone())
        .cancel(
            WorkflowCancelOptions::builder()
                .reason("stephook cancel".to_owned())
                .build(),
        )
        .await
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("cannot cancel workflow {workflow_id}"))?;
    println!(
        "cancellation requested for {workflow_id}: its current step is stored as cancelled and \
         notified, then the run ends"
    );
    Ok(())
}

//! The load: W AgentWorkflows of S steps each, at most N in flight, started through the Temporal
//! client and awaited to their results, every wait bounded by one deadline.

use crate::temporal::start::{describe_end, start_agent_workflow};
use futures::StreamExt as _;
use std::time::Duration;
use stephook_workflows::AgentRunInput;
use temporalio_client::{Client, WorkflowGetResultOptions};
use tokio::time::{Instant, timeout_at};

/// Errors quoted in the report; the rest are only counted.
const ERRORS_KEPT: usize = 5;

pub struct Load<'a> {
    pub client: &'a Client,
    pub task_queue: &'a str,
    /// Run ids are `<prefix>-<index>`: unique per bench run.
    pub run_id_prefix: &'a str,
    pub workflows: u32,
    pub steps: u32,
    pub in_flight: usize,
    pub deadline: Instant,
}

#[derive(Debug, Default)]
pub struct LoadResult {
    pub elapsed: Duration,
    pub completed: u32,
    pub failed: u32,
    /// Steps stored by the completed runs, as their results say.
    pub steps: u64,
    /// Every step id the completed runs reported: each must be notified.
    pub step_ids: Vec<String>,
    pub webhooks_delivered: u64,
    pub webhook_failures: u64,
    pub errors: Vec<String>,
}

/// Runs one workflow of `steps` steps to its end (a warm-up or a check).
pub async fn run_one(
    client: &Client,
    task_queue: &str,
    run_id: &str,
    steps: u32,
    deadline: Instant,
) -> anyhow::Result<stephook_workflows::AgentRunResult> {
    let handle = timeout_at(
        deadline,
        start_agent_workflow(client, task_queue, input(run_id, steps)),
    )
    .await
    .map_err(|_| anyhow::anyhow!("starting workflow for run {run_id} timed out"))??;
    match timeout_at(
        deadline,
        handle.get_result(WorkflowGetResultOptions::default()),
    )
    .await
    {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(error)) => Err(anyhow::anyhow!("run {run_id} {}", describe_end(&error))),
        Err(_) => Err(anyhow::anyhow!("run {run_id} did not end in time")),
    }
}

impl Load<'_> {
    pub async fn run(&self) -> LoadResult {
        let started = Instant::now();
        let outcomes: Vec<anyhow::Result<stephook_workflows::AgentRunResult>> =
            futures::stream::iter(0..self.workflows)
                .map(|index| {
                    let run_id = format!("{}-{index}", self.run_id_prefix);
                    async move {
                        run_one(
                            self.client,
                            self.task_queue,
                            &run_id,
                            self.steps,
                            self.deadline,
                        )
                        .await
                    }
                })
                .buffer_unordered(self.in_flight.max(1))
                .collect()
                .await;
        let mut result = LoadResult {
            elapsed: started.elapsed(),
            ..Default::default()
        };
        for outcome in outcomes {
            match outcome {
                Ok(run) => {
                    result.completed += 1;
                    result.steps += u64::from(run.steps);
                    result.webhooks_delivered += u64::from(run.webhooks_delivered);
                    result.webhook_failures += u64::from(run.webhook_failures);
                    result.step_ids.extend(run.step_ids);
                }
                Err(error) => {
                    result.failed += 1;
                    if result.errors.len() < ERRORS_KEPT {
                        result.errors.push(format!("{error:#}"));
                    }
                }
            }
        }
        result
    }
}

fn input(run_id: &str, steps: u32) -> AgentRunInput {
    AgentRunInput {
        agent_id: "bench-agent".to_owned(),
        run_id: Some(run_id.to_owned()),
        messages: vec![stephook_core::Message::user("Hello from stephook bench")],
        max_steps: Some(steps),
        model: None,
        system: None,
        tools: None,
    }
}

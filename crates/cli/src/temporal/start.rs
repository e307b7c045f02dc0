//! `stephook run` in Temporal mode: starts an AgentWorkflow, prints its id and UI link, then
//! follows it (the `progress` query) until it ends and prints its result.

use super::connect::{TemporalArgs, connect};
use crate::report::ExitWith;
use anyhow::{Context as _, anyhow};
use std::io::Write;
use std::time::Duration;
use stephook_core::DEFAULT_TASK_QUEUE;
use stephook_core::Message;
use stephook_workflows::{AgentRunInput, AgentRunResult, AgentWorkflow, Progress, workflow_id_for};
use temporalio_client::errors::WorkflowGetResultError;
use temporalio_client::tonic::Request;
use temporalio_client::{
    Client, Url, WorkflowGetResultOptions, WorkflowHandle, WorkflowQueryOptions,
    WorkflowStartOptions,
};
use temporalio_common::error::IncomingError;
use temporalio_common::protos::temporal::api::enums::v1::{TaskQueueKind, TaskQueueType};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::DescribeTaskQueueRequest;

/// Where the Temporal UI is (the dev server's default); links in the output point there.
pub const DEFAULT_UI_URL: &str = "http://localhost:8233";
pub const UI_URL_VAR: &str = "STEPHOOK_TEMPORAL_UI";
/// How often a waiting `run` asks the workflow for progress.
pub const PROGRESS_POLL_INTERVAL: Duration = Duration::from_millis(500);
/// After this long, a waiting `run` checks that some worker polls its task queue, and says so
/// (once) if none does: otherwise it would wait in silence.
pub const NO_WORKER_HINT_AFTER: Duration = Duration::from_secs(3);
const PROGRESS_QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// `stephook run` interrupted (Ctrl-C): the shell's code for SIGINT; the run goes on.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Clone)]
pub struct RunWorkflowOptions {
    pub agent_id: String,
    /// Defaults to a new random id.
    pub run_id: Option<String>,
    pub messages: Vec<String>,
    /// At most this many steps; `None`: the workflow's default (50 with a model, 3 on the
    /// offline echo).
    pub steps: Option<u32>,
    /// The model to ask (the worker's when `None`).
    pub model: Option<String>,
    /// A system prompt before the messages.
    pub system: Option<String>,
    /// The tools to offer, by name (every tool of the worker's MCP servers when `None`).
    pub tools: Option<Vec<String>>,
    /// Print the workflow id and UI link, and return without waiting.
    pub no_wait: bool,
    pub task_queue: String,
    pub temporal: TemporalArgs,
    /// Base URL of the Temporal UI for the printed link.
    pub ui_url: String,
    /// Where to look up what became of notifications the run could not deliver (read only;
    /// `None`: not looked up).
    pub store: Option<stephook_core::StoreArgs>,
}

impl Default for RunWorkflowOptions {
    fn default() -> Self {
        Self {
            agent_id: "demo-agent".to_owned(),
            run_id: None,
            messages: vec!["Hello from stephook".to_owned()],
            steps: None,
            model: None,
            system: None,
            tools: None,
            no_wait: false,
            task_queue: DEFAULT_TASK_QUEUE.to_owned(),
            temporal: TemporalArgs::default(),
            ui_url: DEFAULT_UI_URL.to_owned(),
            store: None,
        }
    }
}

/// A started AgentWorkflow.
pub type AgentHandle = WorkflowHandle<Client, AgentWorkflow>;

/// What a started run ended with (`None` result with `--no-wait`).
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub workflow_id: String,
    pub ui_link: String,
    pub result: Option<AgentRunResult>,
}

/// Starts the workflow and reports on stdout; an error when it fails or is cancelled.
pub async fn run_workflow(options: RunWorkflowOptions) -> anyhow::Result<()> {
    run_workflow_to(options, &mut std::io::stdout())
        .await
        .map(|_| ())
}

/// [`run_workflow`], writing to `out` (tests read it).
pub async fn run_workflow_to(
    options: RunWorkflowOptions,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<RunOutcome> {
    let client = connect(&options.temporal).await?;
    let run_id = options
        .run_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let workflow_id = workflow_id_for(&run_id);
    let namespace = client.options().namespace.clone();
    let ui_link = ui_link(&options.ui_url, &namespace, &workflow_id)?;
    let input = AgentRunInput {
        agent_id: options.agent_id.clone(),
        run_id: Some(run_id),
        messages: options.messages.iter().map(Message::user).collect(),
        max_steps: options.steps,
        model: options.model.clone(),
        system: options.system.clone(),
        tools: options.tools.clone(),
    };
    let handle = start_agent_workflow(&client, &options.task_queue, input).await?;
    writeln!(
        out,
        "started workflow {workflow_id} on task queue {}",
        options.task_queue
    )?;
    writeln!(out, "  Temporal UI: {ui_link}")?;
    out.flush()?;
    if options.no_wait {
        return Ok(RunOutcome {
            workflow_id,
            ui_link,
            result: None,
        });
    }

    let result = handle.get_result(WorkflowGetResultOptions::default());
    tokio::pin!(result);
    let interrupted = super::worker::shutdown_signal();
    tokio::pin!(interrupted);
    let hint_at = tokio::time::sleep(NO_WORKER_HINT_AFTER);
    tokio::pin!(hint_at);
    let mut hinted = false;
    let mut ticker = tokio::time::interval(PROGRESS_POLL_INTERVAL);
    let mut shown = Progress::default();
    let result = loop {
        tokio::select! {
            result = &mut result => break result,
            () = &mut interrupted => {
                // Ctrl-C stops this command, not the run: say so, and how to stop the run.
                writeln!(
                    out,
                    "interrupted: stephook stopped following the run; workflow {workflow_id} \
                     goes on in Temporal\n  follow it: {ui_link}\n  cancel it:  stephook cancel \
                     {workflow_id}"
                )?;
                out.flush()?;
                return Err(ExitWith {
                    code: EXIT_INTERRUPTED,
                    message: format!("interrupted; workflow {workflow_id} is still running"),
                }
                .into());
            }
            () = &mut hint_at, if !hinted => {
                hinted = true;
                if workflow_pollers(&client, &namespace, &options.task_queue).await == Some(0) {
                    writeln!(
                        out,
                        "  no worker is polling task queue {:?}: start one with `stephook worker` \
                         (--task-queue {}); this run waits until one does",
                        options.task_queue, options.task_queue
                    )?;
                    out.flush()?;
                }
            }
            _ = ticker.tick() => {
                // A query waits for a worker to answer it: bounded, so that the loop (and the
                // no-worker hint) goes on while none polls; the result wait goes on either way.
                let query = handle.query(AgentWorkflow::progress, (), WorkflowQueryOptions::default());
                if let Ok(Ok(progress)) = tokio::time::timeout(PROGRESS_QUERY_TIMEOUT, query).await {
                    print_progress(out, &shown, &progress, options.steps)?;
                    shown = progress;
                }
            }
        }
    };
    match result {
        Ok(result) => {
            let mut last = progress_of(&result);
            // The result has no step summaries: keep those the run's progress showed.
            last.steps = shown.steps.clone();
            print_progress(out, &shown, &last, options.steps)?;
            match &result.stop_reason {
                Some(reason) => writeln!(
                    out,
                    "completed: {} steps (stop reason {reason})",
                    result.steps
                )?,
                None => writeln!(out, "completed: {} steps", result.steps)?,
            }
            let waiting = waiting_notifications(options.store.as_ref(), &result).await;
            for line in notifications_summary(&result, &waiting) {
                writeln!(out, "  {line}")?;
            }
            Ok(RunOutcome {
                workflow_id,
                ui_link,
                result: Some(result),
            })
        }
        Err(error) => Err(anyhow!(
            "workflow {workflow_id} {}  (details: {ui_link})",
            describe_end(&error)
        )),
    }
}

/// Starts an AgentWorkflow with id `agent-run-<run_id>` (the input's `run_id`, which must be set).
pub async fn start_agent_workflow(
    client: &Client,
    task_queue: &str,
    input: AgentRunInput,
) -> anyhow::Result<AgentHandle> {
    let run_id = input
        .run_id
        .clone()
        .ok_or_else(|| anyhow!("an agent run to start needs a run_id"))?;
    let workflow_id = workflow_id_for(&run_id);
    client
        .start_workflow(
            AgentWorkflow::run,
            input.to_raw(),
            WorkflowStartOptions::new(task_queue.to_owned(), workflow_id.clone()).build(),
        )
        .await
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("cannot start workflow {workflow_id}"))?;
    Ok(client.get_workflow_handle::<AgentWorkflow>(workflow_id))
}

/// How many workers poll the task queue for workflow tasks (`None` if the server won't say).
async fn workflow_pollers(client: &Client, namespace: &str, task_queue: &str) -> Option<usize> {
    let request = DescribeTaskQueueRequest {
        namespace: namespace.to_owned(),
        task_queue: Some(TaskQueue {
            name: task_queue.to_owned(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        }),
        task_queue_type: TaskQueueType::Workflow as i32,
        ..Default::default()
    };
    let mut service = client.connection().workflow_service();
    service
        .describe_task_queue(Request::new(request))
        .await
        .ok()
        .map(|response| response.into_inner().pollers.len())
}

fn progress_of(result: &AgentRunResult) -> Progress {
    Progress {
        steps_done: result.steps,
        last_step_id: result.step_ids.last().cloned(),
        webhooks_delivered: result.webhooks_delivered,
        webhook_failures: result.webhook_failures,
        webhooks_left_to_outbox: result.webhooks_left_to_outbox,
        last_webhook_error: result.last_webhook_error.clone(),
        steps: Vec::new(),
        echo: None,
    }
}

/// Prints what the run did since `shown`: each new step (what the model said, each tool call
/// with its result, the tokens), or, for a run whose progress carries no step summaries, the
/// last stored step.
fn print_progress(
    out: &mut (dyn Write + Send),
    shown: &Progress,
    now: &Progress,
    steps: Option<u32>,
) -> std::io::Result<()> {
    if now.echo == Some(true) && shown.echo != Some(true) {
        writeln!(
            out,
            "  (the worker has no model, {}: steps are the offline echo)",
            stephook_model::config::BASE_URL_VAR
        )?;
    }
    let of = |n: u32| steps.map_or_else(|| n.to_string(), |max| format!("{n}/{max}"));
    let new_steps: Vec<_> = now
        .steps
        .iter()
        .filter(|s| s.number > shown.steps_done)
        .collect();
    if new_steps.is_empty() {
        if now.steps_done > shown.steps_done {
            writeln!(
                out,
                "  step {} stored: {}",
                of(now.steps_done),
                now.last_step_id.as_deref().unwrap_or("-")
            )?;
        }
        return out.flush();
    }
    for step in new_steps {
        writeln!(
            out,
            "  step {} stored: {}  ({})",
            of(step.number),
            step.step_id,
            step.status
        )?;
        if let Some(text) = &step.text {
            writeln!(out, "    {}", text.replace('\n', " "))?;
        }
        for call in &step.tool_calls {
            writeln!(
                out,
                "    tool {}({}) -> {}{}",
                call.name,
                call.arguments,
                if call.is_error { "[error] " } else { "" },
                call.result.replace('\n', " ")
            )?;
        }
        if step.total_tokens > 0 || step.stop_reason.is_some() {
            writeln!(
                out,
                "    tokens {}{}",
                step.total_tokens,
                step.stop_reason
                    .as_deref()
                    .map(|r| format!(", stop reason {r}"))
                    .unwrap_or_default()
            )?;
        }
    }
    out.flush()
}

/// The run's notifications the activity did not deliver, as the store has them now (when this
/// command can read the store).
async fn waiting_notifications(
    store: Option<&stephook_core::StoreArgs>,
    result: &AgentRunResult,
) -> Vec<stephook_store::Delivery> {
    let undelivered = result.steps.saturating_sub(result.webhooks_delivered);
    let Some(args) = store.filter(|_| undelivered > 0) else {
        return Vec::new();
    };
    let Ok(store) = crate::open::existing_store(args).await else {
        return Vec::new();
    };
    let mut waiting = Vec::new();
    for id in &result.step_ids {
        let Ok(id) = stephook_core::StepId::parse(id) else {
            continue;
        };
        if let Ok(Some(delivery)) = store.delivery(&id).await
            && delivery.state != stephook_store::DeliveryState::Delivered
        {
            waiting.push(delivery);
        }
    }
    waiting
}

/// What became of the run's notifications, said as it is: delivered, or waiting in the outbox
/// (which retries them), with when and why.
fn notifications_summary(
    result: &AgentRunResult,
    waiting: &[stephook_store::Delivery],
) -> Vec<String> {
    let mut lines = vec![format!(
        "notifications delivered: {} of {}",
        result.webhooks_delivered, result.steps
    )];
    let not_yet = result.webhook_failures + result.webhooks_left_to_outbox;
    if not_yet == 0 {
        return lines;
    }
    let next = waiting
        .iter()
        .filter_map(|d| d.next_attempt_at)
        .min()
        .and_then(stephook_api::time::iso)
        .map_or_else(
            || "each falls due 60 s after its step".to_owned(),
            |at| format!("next attempt {at}"),
        );
    lines.push(format!(
        "{not_yet} notification(s) not yet delivered: the outbox retries them ({next}); \
         see `stephook deliveries list`"
    ));
    let last_error = waiting
        .iter()
        .find_map(|d| d.last_error.clone())
        .or_else(|| result.last_webhook_error.clone());
    if let Some(error) = last_error {
        lines.push(format!("last error: {error}"));
    }
    lines
}

pub(crate) fn describe_end(error: &WorkflowGetResultError) -> String {
    match error {
        WorkflowGetResultError::Failed(cause) => match cause.as_ref() {
            IncomingError::Application(app) => format!(
                "failed: {}: {app}",
                app.type_name().unwrap_or("ApplicationFailure")
            ),
            other => format!("failed: {other}"),
        },
        WorkflowGetResultError::Cancelled { .. } => "was cancelled".to_owned(),
        other => other.to_string(),
    }
}

/// `<ui>/namespaces/<ns>/workflows/<workflow id>`, each part escaped as a path segment.
pub fn ui_link(ui_url: &str, namespace: &str, workflow_id: &str) -> anyhow::Result<String> {
    let mut url =
        Url::parse(ui_url).with_context(|| format!("{UI_URL_VAR}: {ui_url:?} is not a URL"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow!("{UI_URL_VAR}: {ui_url:?} cannot take a path"))?
        .pop_if_empty()
        .extend(["namespaces", namespace, "workflows", workflow_id]);
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ui_links_point_at_the_workflow() {
        assert_eq!(
            ui_link(DEFAULT_UI_URL, "default", "agent-run-r1").unwrap(),
            "http://localhost:8233/namespaces/default/workflows/agent-run-r1"
        );
        assert_eq!(
            ui_link("http://ui.example/temporal/", "ns", "agent-run-a b").unwrap(),
            "http://ui.example/temporal/namespaces/ns/workflows/agent-run-a%20b"
        );
    }
}

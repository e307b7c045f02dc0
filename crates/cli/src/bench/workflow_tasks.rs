//! Where a workflow task's time goes, from the measured worker's own SDK metrics (its
//! `/metrics`): from scheduled to started it waits at the server, from started to completed it is
//! in the worker. Side by side, the two say which of them is the wall.

use crate::temporal::metrics_page;

/// The SDK's histograms (in seconds: the worker exports durations in seconds).
const SCHEDULE_TO_START: &str = "temporal_workflow_task_schedule_to_start_latency";
const EXECUTION: &str = "temporal_workflow_task_execution_latency";

/// The `_sum` and `_count` of one histogram, over all its label sets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Histogram {
    sum_s: f64,
    count: u64,
}

impl Histogram {
    fn parse(page: &str, name: &str) -> Self {
        let mut histogram = Self::default();
        for line in page.lines() {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let series = series.split_once('{').map_or(series, |(series, _)| series);
            let Some(part) = series.strip_prefix(name) else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            match part {
                "_sum" => histogram.sum_s += value,
                "_count" => histogram.count += value as u64,
                _ => {}
            }
        }
        histogram
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            sum_s: (self.sum_s - before.sum_s).max(0.0),
            count: self.count.saturating_sub(before.count),
        }
    }

    fn mean_ms(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum_s * 1000.0 / self.count as f64)
    }
}

/// The workflow tasks a worker has taken so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkflowTasks {
    at_server: Histogram,
    in_worker: Histogram,
}

impl WorkflowTasks {
    pub async fn read(metrics_url: &str) -> anyhow::Result<Self> {
        Ok(Self::parse(
            &metrics_page::fetch(metrics_url, "the worker").await?,
        ))
    }

    pub fn parse(page: &str) -> Self {
        Self {
            at_server: Histogram::parse(page, SCHEDULE_TO_START),
            in_worker: Histogram::parse(page, EXECUTION),
        }
    }

    /// The tasks taken between `before` and `self`.
    pub fn since(&self, before: &Self) -> Self {
        Self {
            at_server: self.at_server.since(&before.at_server),
            in_worker: self.in_worker.since(&before.in_worker),
        }
    }

    /// Tasks the worker completed.
    pub fn count(&self) -> u64 {
        self.in_worker.count
    }

    /// Mean time from scheduled to started, in milliseconds.
    pub fn mean_at_server_ms(&self) -> Option<f64> {
        self.at_server.mean_ms()
    }

    /// Mean time from started to completed, in milliseconds.
    pub fn mean_in_worker_ms(&self) -> Option<f64> {
        self.in_worker.mean_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::WorkflowTasks;

    const PAGE: &str = r#"# HELP temporal_workflow_task_execution_latency Histogram of workflow task execution
# TYPE temporal_workflow_task_execution_latency histogram
temporal_workflow_task_execution_latency_bucket{task_queue="q",workflow_type="AgentWorkflow",le="0.001"} 10
temporal_workflow_task_execution_latency_sum{task_queue="q",workflow_type="AgentWorkflow"} 0.3
temporal_workflow_task_execution_latency_count{task_queue="q",workflow_type="AgentWorkflow"} 100
temporal_workflow_task_execution_latency_sum{task_queue="q",workflow_type="Other"} 0.1
temporal_workflow_task_execution_latency_count{task_queue="q",workflow_type="Other"} 100
temporal_workflow_task_schedule_to_start_latency_sum{task_queue="q"} 40
temporal_workflow_task_schedule_to_start_latency_count{task_queue="q"} 200
temporal_workflow_task_replay_latency_sum{task_queue="q"} 99
temporal_workflow_task_replay_latency_count{task_queue="q"} 7
"#;

    #[test]
    fn each_histogram_is_added_up_over_its_label_sets_and_nothing_else_counts() {
        let tasks = WorkflowTasks::parse(PAGE);
        assert_eq!(tasks.count(), 200);
        assert_eq!(tasks.mean_in_worker_ms(), Some(2.0));
        assert_eq!(tasks.mean_at_server_ms(), Some(200.0));
    }

    #[test]
    fn a_load_counts_the_tasks_taken_after_it_started() {
        let before = WorkflowTasks::parse(PAGE);
        let after = WorkflowTasks::parse(
            &PAGE
                .replace("AgentWorkflow\"} 0.3", "AgentWorkflow\"} 1.3")
                .replace("AgentWorkflow\"} 100", "AgentWorkflow\"} 300")
                .replace("} 40", "} 140")
                .replace("q\"} 200", "q\"} 400"),
        );
        let load = after.since(&before);
        assert_eq!(load.count(), 200);
        assert_eq!(load.mean_in_worker_ms(), Some(5.0));
        assert_eq!(load.mean_at_server_ms(), Some(500.0));
    }

    #[test]
    fn a_page_without_tasks_has_no_means() {
        let tasks = WorkflowTasks::parse("# nothing here\n");
        assert_eq!(tasks.count(), 0);
        assert_eq!(tasks.mean_in_worker_ms(), None);
        assert_eq!(tasks.mean_at_server_ms(), None);
    }
}

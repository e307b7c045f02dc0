//! The requests a dev server answered, by gRPC operation, read from its Prometheus counter
//! `service_requests` (every service of the dev server counts: a completion the frontend passes
//! on to the history service is two). The server is the wall: a request fewer per step is server
//! work saved for every step.

use std::collections::BTreeMap;

const COUNTER: &str = "service_requests";
/// How many operations the summary names; the rest are counted in the total only.
pub const SHOWN_OPERATIONS: usize = 5;

/// Requests per operation (every namespace and task queue added up).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests(pub BTreeMap<String, u64>);

impl Requests {
    pub async fn read(metrics_url: &str) -> anyhow::Result<Self> {
        Ok(Self::parse(
            &super::metrics_page::fetch(metrics_url, "the dev server").await?,
        ))
    }

    /// The `service_requests` samples of a Prometheus text page.
    pub fn parse(page: &str) -> Self {
        let mut by_operation = BTreeMap::new();
        for line in page.lines() {
            let Some((name, rest)) = line.split_once('{') else {
                continue;
            };
            if name.strip_suffix("_total").unwrap_or(name) != COUNTER {
                continue;
            }
            let Some(operation) = label(rest, "operation") else {
                continue;
            };
            let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
                continue;
            };
            *by_operation.entry(operation.to_owned()).or_insert(0) += value as u64;
        }
        Self(by_operation)
    }

    /// What was answered between `before` and `self`.
    pub fn since(&self, before: &Self) -> Self {
        Self(
            self.0
                .iter()
                .map(|(operation, n)| {
                    let earlier = before.0.get(operation).copied().unwrap_or(0);
                    (operation.clone(), n.saturating_sub(earlier))
                })
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }

    /// The requests of one operation (0 when it had none).
    pub fn of(&self, operation: &str) -> u64 {
        self.0.get(operation).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The busiest operations first.
    pub fn busiest(&self) -> Vec<(&str, u64)> {
        let mut all: Vec<(&str, u64)> = self.0.iter().map(|(o, n)| (o.as_str(), *n)).collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        all
    }
}

/// The value of `key="..."` in a sample's label set.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{key}=\""))? + key.len() + 2;
    let len = labels[start..].find('"')?;
    Some(&labels[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::Requests;

    const PAGE: &str = r#"# HELP service_requests service_requests
# TYPE service_requests counter
service_requests{namespace="default",operation="RespondWorkflowTaskCompleted",service_name="frontend"} 12
service_requests{namespace="other",operation="RespondWorkflowTaskCompleted",service_name="frontend"} 3
service_requests{namespace="default",operation="RecordActivityTaskHeartbeat",service_name="frontend"} 4
service_requests_latency_bucket{operation="RespondWorkflowTaskCompleted",le="0.1"} 99
service_errors{operation="RecordActivityTaskHeartbeat"} 7
"#;

    #[test]
    fn requests_are_added_up_by_operation_and_nothing_else_is_counted() {
        let requests = Requests::parse(PAGE);
        assert_eq!(requests.0.len(), 2);
        assert_eq!(requests.of("RespondWorkflowTaskCompleted"), 15);
        assert_eq!(requests.of("RecordActivityTaskHeartbeat"), 4);
        assert_eq!(requests.of("PollWorkflowTaskQueue"), 0);
        assert_eq!(requests.total(), 19);
    }

    #[test]
    fn a_load_counts_what_was_answered_after_it_started() {
        let before = Requests::parse(PAGE);
        let after = Requests::parse(&PAGE.replace("} 12", "} 112"));
        let load = after.since(&before);
        assert_eq!(load.busiest(), vec![("RespondWorkflowTaskCompleted", 100)]);
    }
}

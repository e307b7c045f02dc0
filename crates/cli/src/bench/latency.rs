//! Notification latency: from the commit of a step (its `completed_at`, written by `create_step`
//! in the transaction that queues the notification) to the first arrival of its request at the
//! bench's receiver. Both clocks are this machine's, in milliseconds.

use std::collections::HashMap;
use stephook_core::Step;

/// Nearest-rank percentiles of the latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latency {
    pub samples: usize,
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
    pub max: i64,
}

impl Latency {
    /// `None` when no step both committed and arrived.
    pub fn of<'a>(
        steps: impl IntoIterator<Item = &'a Step>,
        first_arrivals: &HashMap<String, i64>,
    ) -> Option<Self> {
        let mut samples: Vec<i64> = steps
            .into_iter()
            .filter_map(|step| {
                let committed = step.completed_at?;
                let arrived = first_arrivals.get(step.id.as_str())?;
                Some((arrived - committed).max(0))
            })
            .collect();
        Self::from_samples(&mut samples)
    }

    fn from_samples(samples: &mut [i64]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = |p: usize| samples[(samples.len() * p).div_ceil(100).saturating_sub(1)];
        Some(Self {
            samples: samples.len(),
            p50: rank(50),
            p90: rank(90),
            p99: rank(99),
            max: samples[samples.len() - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<i64> = (1..=100).rev().collect();
        let latency = Latency::from_samples(&mut samples).expect("samples");
        assert_eq!(
            (latency.p50, latency.p90, latency.p99, latency.max),
            (50, 90, 99, 100)
        );
        assert_eq!(Latency::from_samples(&mut [7]).map(|l| l.p99), Some(7));
        assert_eq!(Latency::from_samples(&mut []), None);
    }
}

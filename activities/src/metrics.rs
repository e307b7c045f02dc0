//! stephook's own worker metrics, in Prometheus text format: webhook attempts by outcome, their
//! latency, and how many notifications were given up on. Plain atomics: recording is lock-free
//! and costs nothing next to an HTTP request.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use stephook_webhook::{DeliveryReport, Outcome};

/// Upper bounds of the latency histogram, in seconds: loopback answers land in the first buckets,
/// a receiver close to `STEP_COMPLETE_TIMEOUT_MS` in the last.
pub const LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
];

/// Every label [`Outcome::label`] gives, plus a catch-all so a new one is still counted.
const OUTCOME_LABELS: [&str; 6] = [
    "not_configured",
    "delivered",
    "timeout",
    "http_status",
    "transport",
    "other",
];
const OTHER_LABEL_INDEX: usize = OUTCOME_LABELS.len() - 1;

const DELIVERIES: &str = "stephook_webhook_deliveries_total";
const LATENCY: &str = "stephook_webhook_delivery_seconds";
const UNDELIVERED: &str = "stephook_webhook_undelivered_total";

#[derive(Debug, Default)]
pub struct WebhookMetrics {
    deliveries: [AtomicU64; OUTCOME_LABELS.len()],
    /// Per bucket (not cumulative); the text output accumulates.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    undelivered: AtomicU64,
}

impl WebhookMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one attempt; its latency too when a request was actually made.
    pub fn observe(&self, report: &DeliveryReport) {
        let index = OUTCOME_LABELS
            .iter()
            .position(|label| *label == report.outcome.label())
            .unwrap_or(OTHER_LABEL_INDEX);
        self.deliveries[index].fetch_add(1, Ordering::Relaxed);
        if report.outcome != Outcome::NotConfigured {
            self.observe_latency(report.elapsed);
        }
    }

    fn observe_latency(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS_SECONDS.iter().position(|le| seconds <= *le) {
            self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts one notification recorded as undelivered.
    pub fn record_undelivered(&self) {
        self.undelivered.fetch_add(1, Ordering::Relaxed);
    }

    /// Attempts seen with this outcome label.
    pub fn deliveries(&self, label: &str) -> u64 {
        OUTCOME_LABELS
            .iter()
            .position(|known| *known == label)
            .map_or(0, |index| self.deliveries[index].load(Ordering::Relaxed))
    }

    pub fn undelivered(&self) -> u64 {
        self.undelivered.load(Ordering::Relaxed)
    }

    /// The metrics in Prometheus text exposition format (version 0.0.4).
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = writeln!(
            out,
            "# HELP {DELIVERIES} Step-complete webhook attempts by outcome.\n# TYPE {DELIVERIES} counter"
        );
        for (label, count) in OUTCOME_LABELS.iter().zip(&self.deliveries) {
            let _ = writeln!(
                out,
                "{DELIVERIES}{{outcome=\"{label}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP {LATENCY} Duration of one step-complete webhook attempt.\n# TYPE {LATENCY} histogram"
        );
        let mut cumulative = 0;
        for (le, count) in LATENCY_BUCKETS_SECONDS.iter().zip(&self.latency_buckets) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{LATENCY}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let total = self.latency_count.load(Ordering::Relaxed);
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{LATENCY}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{LATENCY}_sum {sum}");
        let _ = writeln!(out, "{LATENCY}_count {total}");
        let _ = writeln!(
            out,
            "# HELP {UNDELIVERED} Notifications recorded as undelivered after Temporal's retries ended.\n# TYPE {UNDELIVERED} counter"
        );
        let _ = writeln!(out, "{UNDELIVERED} {}", self.undelivered());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: Outcome, ms: u64) -> DeliveryReport {
        DeliveryReport {
            outcome,
            elapsed: Duration::from_millis(ms),
        }
    }

    #[test]
    fn counts_and_histogram_render_as_prometheus_text() {
        let metrics = WebhookMetrics::new();
        metrics.observe(&report(Outcome::Delivered { status: 200 }, 3));
        metrics.observe(&report(Outcome::Delivered { status: 204 }, 70));
        metrics.observe(&report(Outcome::Timeout, 20_000));
        metrics.observe(&report(Outcome::NotConfigured, 0));
        metrics.record_undelivered();

        assert_eq!(metrics.deliveries("delivered"), 2);
        assert_eq!(metrics.deliveries("not_configured"), 1);
        let text = metrics.render_prometheus();
        for line in [
            "stephook_webhook_deliveries_total{outcome=\"delivered\"} 2",
            "stephook_webhook_deliveries_total{outcome=\"timeout\"} 1",
            "stephook_webhook_delivery_seconds_bucket{le=\"0.005\"} 1",
            "stephook_webhook_delivery_seconds_bucket{le=\"0.1\"} 2",
            "stephook_webhook_delivery_seconds_bucket{le=\"15\"} 2",
            // The 20 s timeout is above every bucket: only +Inf and the count hold it.
            "stephook_webhook_delivery_seconds_bucket{le=\"+Inf\"} 3",
            "stephook_webhook_delivery_seconds_count 3",
            "stephook_webhook_undelivered_total 1",
            "# TYPE stephook_webhook_delivery_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}

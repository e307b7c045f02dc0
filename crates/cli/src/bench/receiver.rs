//! The bench's webhook endpoint: a loopback axum server that answers at once (200, or another
//! status while an outage is simulated) and counts every delivery it accepted by step id (from the
//! body) and by `webhook-id`, so lost and duplicated notifications can be told apart afterwards.

use super::loopback::Loopback;
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Default)]
struct Deliveries {
    requests: u64,
    /// Requests whose body had no `step_id` string.
    unreadable: u64,
    by_step: HashMap<String, u64>,
    /// Every `webhook-id` each step arrived with (one, unless ids are unstable).
    webhook_ids: HashMap<String, HashSet<String>>,
    /// When each step's notification first arrived, Unix milliseconds (the step store's clock
    /// on this same machine), for the commit-to-arrival latency.
    first_arrival_ms: HashMap<String, i64>,
}

/// What arrived, measured against the step ids the runs reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub requests: u64,
    /// Distinct expected steps that arrived at least once.
    pub received: u64,
    /// Expected steps that never arrived.
    pub lost: u64,
    /// Deliveries beyond the first of an expected step (same step id and webhook-id).
    pub duplicated: u64,
    /// Requests for steps nobody expected, or without a readable step id.
    pub unexpected: u64,
    /// Steps that arrived with more than one `webhook-id` (should never happen).
    pub unstable_ids: u64,
}

pub struct Receiver {
    server: Loopback,
    url: String,
    deliveries: Arc<Mutex<Deliveries>>,
    status: Arc<AtomicU16>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let deliveries = Arc::new(Mutex::new(Deliveries::default()));
        let status = Arc::new(AtomicU16::new(StatusCode::OK.as_u16()));
        let shared = Arc::clone(&deliveries);
        let answer = Arc::clone(&status);
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let shared = Arc::clone(&shared);
            let answer =
                StatusCode::from_u16(answer.load(Ordering::Relaxed)).unwrap_or(StatusCode::OK);
            async move {
                // Only what the endpoint accepted counts as delivered.
                if answer.is_success() {
                    record(&shared, &headers, &body);
                }
                answer
            }
        });
        let server = Loopback::serve(app, "the bench receiver").await?;
        let url = format!("http://{}/hooks/step-complete", server.addr());
        Ok(Self {
            server,
            url,
            deliveries,
            status,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// From now on, answer every request with `status` (503 simulates an outage).
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::Relaxed);
    }

    /// `ignored`: steps sent outside the measured load (the warm-up), left out of every count.
    pub fn tally(&self, expected: &[String], ignored: &[String]) -> Tally {
        let deliveries = self
            .deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let expected: HashSet<&str> = expected.iter().map(String::as_str).collect();
        let ignored_requests: u64 = ignored
            .iter()
            .filter_map(|step| deliveries.by_step.get(step))
            .sum();
        let mut tally = Tally {
            requests: deliveries.requests.saturating_sub(ignored_requests),
            received: 0,
            lost: 0,
            duplicated: 0,
            unexpected: deliveries.unreadable,
            unstable_ids: 0,
        };
        for step in &expected {
            match deliveries.by_step.get(*step) {
                Some(&count) if count > 0 => {
                    tally.received += 1;
                    tally.duplicated += count - 1;
                }
                _ => tally.lost += 1,
            }
        }
        for (step, count) in &deliveries.by_step {
            if !expected.contains(step.as_str()) && !ignored.contains(step) {
                tally.unexpected += count;
            }
        }
        tally.unstable_ids = deliveries
            .webhook_ids
            .values()
            .filter(|ids| ids.len() > 1)
            .count() as u64;
        tally
    }

    /// When each step's notification first arrived (Unix milliseconds).
    pub fn first_arrivals(&self) -> HashMap<String, i64> {
        self.deliveries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .first_arrival_ms
            .clone()
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

fn record(deliveries: &Mutex<Deliveries>, headers: &HeaderMap, body: &[u8]) {
    let arrived_ms = stephook_core::now_millis();
    let step_id = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|value| value.get("step_id")?.as_str().map(str::to_owned));
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut deliveries = deliveries.lock().unwrap_or_else(PoisonError::into_inner);
    deliveries.requests += 1;
    let Some(step_id) = step_id else {
        deliveries.unreadable += 1;
        return;
    };
    if let Some(webhook_id) = webhook_id {
        deliveries
            .webhook_ids
            .entry(step_id.clone())
            .or_default()
            .insert(webhook_id);
    }
    deliveries
        .first_arrival_ms
        .entry(step_id.clone())
        .or_insert(arrived_ms);
    *deliveries.by_step.entry(step_id).or_default() += 1;
}

//! The worker's `/metrics` endpoint: the Temporal SDK's own metrics followed by stephook's, as one
//! Prometheus text page. The SDK only exposes its registry through its own HTTP exporter, so that
//! exporter listens on a private loopback port and this endpoint fetches and forwards its page.

use anyhow::{Context as _, anyhow};
use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;
use stephook_activities::WebhookMetrics;
use temporalio_common::telemetry::metrics::CoreMeter;
use temporalio_common::telemetry::{PrometheusExporterOptions, start_prometheus_metric_exporter};
use tokio::net::TcpListener;

pub const METRICS_PATH: &str = "/metrics";
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The SDK page is on loopback: if it takes this long, something is wrong; serve ours anyway.
const SDK_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The SDK's exporter, started before the worker so every worker metric is recorded in it.
pub struct SdkMetrics {
    pub meter: Arc<dyn CoreMeter>,
    page_url: String,
    abort: tokio::task::AbortHandle,
}

impl SdkMetrics {
    pub fn start() -> anyhow::Result<Self> {
        let options = PrometheusExporterOptions::builder()
            .socket_addr(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0)))
            .counters_total_suffix(true)
            .use_seconds_for_durations(true)
            .build();
        let started = start_prometheus_metric_exporter(options)
            .map_err(|e| anyhow!("{e:#}"))
            .context("cannot start the Temporal SDK's metrics exporter")?;
        Ok(Self {
            meter: started.meter,
            page_url: format!("http://{}{METRICS_PATH}", started.bound_addr),
            abort: started.abort_handle,
        })
    }
}

impl Drop for SdkMetrics {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

struct Page {
    sdk_url: String,
    http: reqwest::Client,
    webhook: Arc<WebhookMetrics>,
}

/// Binds `addr` now (so a bad address fails at start) and returns the server to run.
pub async fn bind(
    addr: SocketAddr,
    sdk: &SdkMetrics,
    webhook: Arc<WebhookMetrics>,
) -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("STEPHOOK_METRICS_ADDR: cannot listen on {addr} (--metrics-addr)")
    })?;
    let page = Arc::new(Page {
        sdk_url: sdk.page_url.clone(),
        http: reqwest::Client::builder()
            .timeout(SDK_FETCH_TIMEOUT)
            .build()
            .context("an HTTP client for the SDK's metrics")?,
        webhook,
    });
    let app = Router::new()
        .route(METRICS_PATH, get(render))
        .with_state(page);
    Ok(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    })
}

async fn render(State(page): State<Arc<Page>>) -> impl IntoResponse {
    let mut body = match fetch(&page).await {
        Ok(text) => text,
        Err(error) => format!("# Temporal SDK metrics unavailable: {error}\n"),
    };
    if !body.is_empty() && !body.ends_with('\n') {
        body.push('\n');
    }
    body.push_str(&page.webhook.render_prometheus());
    ([(CONTENT_TYPE, PROMETHEUS_TEXT)], body)
}

async fn fetch(page: &Page) -> Result<String, reqwest::Error> {
    page.http
        .get(&page.sdk_url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

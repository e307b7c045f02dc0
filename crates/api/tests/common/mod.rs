//! A real API server on a loopback port over a real store, and ways to fill the store.

#![allow(dead_code)] // each test binary uses its own part of this module

use serde_json::Value;
use std::time::Duration;
use stephook_api::{ApiConfig, bind};
use stephook_core::{Secret, Step, StepId, StepMetrics, StepStatus, Usage, WebhookArgs};
use stephook_direct::{Dispatcher, DispatcherConfig, RetrySchedule, RunningDispatcher};
use stephook_store::testing::{self, TestStore};
use stephook_store::{Notify, NotifyTo, Store};
use stephook_testkit::{Receiver, Reply};
use stephook_webhook::WebhookService;
use tokio::sync::oneshot;

pub const TOKEN: &str = "test-api-token-0123456789";
pub const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const WAIT: Duration = Duration::from_secs(10);
/// Some fixed instant (2026-01-01T00:00:00Z) that seeded steps are created around.
pub const BASE_MS: i64 = 1_767_225_600_000;

pub enum Db {
    Sqlite,
    Postgres,
}

pub struct Server {
    pub test: TestStore,
    pub base: String,
    pub http: reqwest::Client,
    token: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// `None` when the database is not available (reported as a skip).
    pub async fn start(db: Db, token: Option<&str>) -> Option<Self> {
        let test = match db {
            Db::Sqlite => testing::sqlite().await,
            Db::Postgres => testing::postgres().await?,
        };
        Some(Self::over(test, token).await)
    }

    pub async fn over(test: TestStore, token: Option<&str>) -> Self {
        Self::over_with(test, token, None).await
    }

    /// A server whose own webhook URL (where `to_current_endpoint` moves notifications) is
    /// `current`.
    pub async fn start_sending_to(db: Db, current: &str) -> Option<Self> {
        let test = match db {
            Db::Sqlite => testing::sqlite().await,
            Db::Postgres => testing::postgres().await?,
        };
        let endpoint = stephook_core::Endpoint::of(&current.parse().expect("a URL"));
        Some(Self::over_with(test, None, Some(endpoint)).await)
    }

    async fn over_with(
        test: TestStore,
        token: Option<&str>,
        current: Option<stephook_core::Endpoint>,
    ) -> Self {
        let mut config = ApiConfig::loopback(0).with_current_endpoint(current);
        if let Some(token) = token {
            config = config.with_token(token);
        }
        let bound = bind(&config, test.store.clone())
            .await
            .expect("bind loopback");
        let base = bound.base_url();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            bound.serve(shutdown).await.expect("serve");
        });
        Self {
            test,
            base,
            http: reqwest::Client::new(),
            token: token.map(str::to_owned),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn store(&self) -> &Store {
        &self.test.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// GET with the server's token; the status and the JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .authorized(self.http.get(self.url(path)))
            .send()
            .await
            .expect("GET");
        json_of(response).await
    }

    pub async fn post(&self, path: &str) -> (u16, Value) {
        let response = self
            .authorized(self.http.post(self.url(path)))
            .send()
            .await
            .expect("POST");
        json_of(response).await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

pub async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// A terminal step whose notification row is for `endpoint` (its step committed by a process
/// sending there), due now.
pub async fn seed_step_for(store: &Store, endpoint: &str) -> StepId {
    let endpoint = stephook_core::Endpoint::of(&endpoint.parse().expect("a URL"));
    let mut step = Step::pending(StepId::new_random(), "agent-x", Some("run-x".into()));
    step.status = StepStatus::Success;
    store
        .upsert_step(
            &step,
            None,
            Some(Notify {
                after: Duration::ZERO,
                to: NotifyTo::Endpoint(&endpoint),
            }),
        )
        .await
        .expect("seed a step");
    step.id
}

/// A terminal step created at `created_at`, with usage and metrics, and its notification row
/// (pending, due now) written in the same transaction.
pub async fn seed_step(
    store: &Store,
    agent_id: &str,
    run_id: &str,
    status: StepStatus,
    created_at: i64,
) -> StepId {
    seed_step_due(store, agent_id, run_id, status, created_at, Duration::ZERO).await
}

/// As [`seed_step`], with the notification due `due_after` from now.
pub async fn seed_step_due(
    store: &Store,
    agent_id: &str,
    run_id: &str,
    status: StepStatus,
    created_at: i64,
    due_after: Duration,
) -> StepId {
    let id = StepId::new_random();
    let step = Step {
        id: id.clone(),
        agent_id: agent_id.into(),
        run_id: Some(run_id.into()),
        status,
        usage: Usage {
            model: Some("gpt-4o-mini".into()),
            provider: Some("openai".into()),
            prompt_tokens: 11,
            completion_tokens: 7,
            total_tokens: 18,
            ..Default::default()
        },
        stop_reason: status.is_terminal().then(|| "end_turn".to_owned()),
        error_type: (status == StepStatus::Failed).then(|| "ValueError".to_owned()),
        error_data: (status == StepStatus::Failed).then(|| serde_json::json!({"message": "boom"})),
        created_at,
        updated_at: created_at,
        completed_at: status.is_terminal().then_some(created_at + 5),
    };
    let metrics = StepMetrics {
        step_ms: 42,
        model_call_ms: 30,
        tool_execution_ms: None,
    };
    store
        .upsert_step(
            &step,
            Some(metrics),
            status.is_terminal().then_some(Notify {
                after: due_after,
                to: NotifyTo::Unbound,
            }),
        )
        .await
        .expect("seed a step");
    id
}

/// A webhook service towards `receiver`, signing (so requests carry `webhook-id`).
pub fn webhook_to(receiver: &Receiver) -> WebhookService {
    WebhookService::new(
        WebhookArgs {
            url: Some(Secret::new(receiver.url())),
            signing_secret: Some(Secret::new(SIGNING_SECRET)),
            timeout_ms: Some("3000".into()),
            ..Default::default()
        }
        .validate()
        .expect("valid webhook settings"),
    )
    .expect("webhook service")
}

/// A dispatcher for every row, polling often, with no retries: a failed attempt is dead.
pub fn dispatcher(store: &Store, receiver: &Receiver) -> RunningDispatcher {
    Dispatcher::new(
        store.clone(),
        webhook_to(receiver),
        DispatcherConfig {
            schedule: RetrySchedule::new(Vec::new(), 0.0),
            idle_poll: Duration::from_millis(50),
            ..Default::default()
        },
    )
    .expect("a webhook URL is configured")
    .spawn()
}

/// Waits until the delivery of `id` is in `state`.
pub async fn wait_for_state(store: &Store, id: &StepId, state: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let current = store.delivery(id).await.expect("read delivery");
        if current.as_ref().is_some_and(|d| d.state.as_str() == state) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery of {id} never became {state}: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Terminal steps whose notifications a receiver answering 400 has made dead.
pub async fn dead_deliveries(store: &Store, n: usize) -> Vec<StepId> {
    let receiver = Receiver::start(Reply::Status(400)).await;
    dead_deliveries_at(store, &receiver, n).await
}

/// As [`dead_deliveries`], at `receiver`'s endpoint (each row is bound to the endpoint that
/// first took it): `receiver` answers 400 with a two-line body meanwhile, and is left answering
/// that.
pub async fn dead_deliveries_at(store: &Store, receiver: &Receiver, n: usize) -> Vec<StepId> {
    receiver.set_reply(Reply::StatusBody(400, "no such hook\ntry again later"));
    let dispatcher = dispatcher(store, receiver);
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            seed_step(
                store,
                "agent-dead",
                "run-dead",
                StepStatus::Failed,
                BASE_MS + i as i64,
            )
            .await,
        );
    }
    for id in &ids {
        wait_for_state(store, id, "dead").await;
    }
    dispatcher.stop().await;
    ids
}

/// Whether `program --version` runs.
pub fn have(program: &str, arg: &str) -> bool {
    std::process::Command::new(program)
        .arg(arg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

//! A loopback server that speaks OpenAI's Chat Completions wire protocol and plays back the
//! answers a test scripts: text, tool calls (several in one answer), an answer cut at the token
//! limit, usage with cached and reasoning tokens, HTTP errors with their real bodies (a 429 with
//! `Retry-After`, a 400 `context_length_exceeded`, a 500), and slow answers. No hosted model is
//! reachable from the tests; this stands in for one. Every request is kept, headers and body, so
//! tests assert on what the provider would have received.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, oneshot};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum ModelAnswer {
    /// A whole answer, `finish_reason: stop`.
    Text(String),
    /// Tool calls (name, arguments as the model writes them), `finish_reason: tool_calls`.
    ToolCalls(Vec<(String, String)>),
    /// An answer cut at the token limit, `finish_reason: length`.
    Length(String),
    /// An HTTP error with this body and, when given, `Retry-After` seconds.
    Error {
        status: u16,
        body: String,
        retry_after: Option<u32>,
    },
    /// Wait, then answer.
    Slow(Duration, Box<ModelAnswer>),
    /// A 200 whose body is not a chat completion.
    Garbage,
}

impl ModelAnswer {
    pub fn text(text: &str) -> Self {
        Self::Text(text.to_owned())
    }

    pub fn tools(calls: &[(&str, &str)]) -> Self {
        Self::ToolCalls(
            calls
                .iter()
                .map(|(n, a)| ((*n).to_owned(), (*a).to_owned()))
                .collect(),
        )
    }

    /// 429 with `Retry-After`, as OpenAI sends it.
    pub fn rate_limited(retry_after: u32) -> Self {
        Self::Error {
            status: 429,
            body: json!({"error": {"message": "Rate limit reached for requests",
                "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
            .to_string(),
            retry_after: Some(retry_after),
        }
    }

    /// 400 `context_length_exceeded`, as OpenAI sends it.
    pub fn context_too_long() -> Self {
        Self::Error {
            status: 400,
            body: json!({"error": {"message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens.",
                "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}})
            .to_string(),
            retry_after: None,
        }
    }

    pub fn status(status: u16, body: &str) -> Self {
        Self::Error {
            status,
            body: body.to_owned(),
            retry_after: None,
        }
    }
}

/// A request as the provider received it.
#[derive(Debug, Clone)]
pub struct ModelRequestSeen {
    pub headers: HeaderMap,
    pub body: Value,
}

impl ModelRequestSeen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The messages sent, as JSON.
    pub fn messages(&self) -> &[Value] {
        self.body["messages"].as_array().map_or(&[], Vec::as_slice)
    }

    /// The names of the tools offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

struct Shared {
    script: Mutex<VecDeque<ModelAnswer>>,
    fallback: Mutex<ModelAnswer>,
    seen: Mutex<Vec<ModelRequestSeen>>,
    arrived: Notify,
    next_call: Mutex<u64>,
}

pub struct ModelServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl ModelServer {
    /// Answers with `script` in order, then with "done" (`finish_reason: stop`) forever.
    pub async fn start(script: Vec<ModelAnswer>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into()),
            fallback: Mutex::new(ModelAnswer::text("done")),
            seen: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            next_call: Mutex::new(0),
        });
        let app = Router::new()
            .route("/v1/chat/completions", axum::routing::post(answer))
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            shared,
            stop: Some(stop),
        }
    }

    /// What `STEPHOOK_MODEL_BASE_URL` is set to.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Appends answers to the script.
    pub fn script(&self, answers: Vec<ModelAnswer>) {
        lock(&self.shared.script).extend(answers);
    }

    /// The answer once the script is used up.
    pub fn set_fallback(&self, answer: ModelAnswer) {
        *lock(&self.shared.fallback) = answer;
    }

    pub fn requests(&self) -> Vec<ModelRequestSeen> {
        lock(&self.shared.seen).clone()
    }

    /// Waits until at least `n` requests arrived or `timeout` passed; returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ModelRequestSeen> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            if lock(&self.shared.seen).len() >= n {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        self.requests()
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn answer(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    lock(&shared.seen).push(ModelRequestSeen { headers, body });
    shared.arrived.notify_waiters();
    let scripted = lock(&shared.script).pop_front();
    let mut answer = scripted.unwrap_or_else(|| lock(&shared.fallback).clone());
    while let ModelAnswer::Slow(delay, then) = answer {
        tokio::time::sleep(delay).await;
        answer = *then;
    }
    let call = {
        let mut next = lock(&shared.next_call);
        *next += 1;
        *next
    };
    let completion = |message: Value, finish: &str| {
        json!({
            "id": format!("chatcmpl-{call}"), "object": "chat.completion", "created": 1_795_000_000,
            "model": model, "system_fingerprint": "fp_stephook_test",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": {"prompt_tokens": 21, "completion_tokens": 9, "total_tokens": 30,
                      "prompt_tokens_details": {"cached_tokens": 4, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 2, "audio_tokens": 0,
                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}
        })
    };
    let json_response = |status: StatusCode, value: Value| {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response()
    };
    match answer {
        ModelAnswer::Text(text) => json_response(
            StatusCode::OK,
            completion(
                json!({"role": "assistant", "content": text, "refusal": null}),
                "stop",
            ),
        ),
        ModelAnswer::Length(text) => json_response(
            StatusCode::OK,
            completion(json!({"role": "assistant", "content": text}), "length"),
        ),
        ModelAnswer::ToolCalls(calls) => {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, arguments))| {
                    json!({"id": format!("call_{call}_{i}"), "type": "function",
                           "function": {"name": name, "arguments": arguments}})
                })
                .collect();
            json_response(
                StatusCode::OK,
                completion(
                    json!({"role": "assistant", "content": null, "tool_calls": calls}),
                    "tool_calls",
                ),
            )
        }
        ModelAnswer::Error {
            status,
            body,
            retry_after,
        } => {
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response();
            if let Some(seconds) = retry_after
                && let Ok(value) = seconds.to_string().parse()
            {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        ModelAnswer::Garbage => (StatusCode::OK, "<html>not json</html>").into_response(),
        ModelAnswer::Slow(..) => unreachable!("slow answers are unwrapped above"),
    }
}

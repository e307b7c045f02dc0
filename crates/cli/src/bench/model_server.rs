//! The bench's model: a loopback server speaking OpenAI's Chat Completions wire protocol that
//! answers at once, every time with one call of a tool no MCP server has. So each step of a
//! model-step run is a real model call (HTTP, JSON, the typed client) plus a real `call_tool`
//! activity (which answers "unknown tool" without any server), and the loop goes on until
//! `max_steps`: the measured cost is stephook's own, not a model's.

use super::loopback::Loopback;
use axum::Router;
use axum::routing::post;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The tool every answer asks for; no server offers it.
const BENCH_TOOL: &str = "bench-noop";
pub const BENCH_MODEL: &str = "bench-model";

pub struct ModelServer {
    server: Loopback,
    base_url: String,
    requests: Arc<AtomicU64>,
}

impl ModelServer {
    pub async fn start() -> anyhow::Result<Self> {
        let requests = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&requests);
        let app = Router::new().route(
            "/v1/chat/completions",
            post(move || {
                let n = counted.fetch_add(1, Ordering::Relaxed);
                async move { ([("content-type", "application/json")], answer(n)) }
            }),
        );
        let server = Loopback::serve(app, "the bench model").await?;
        let base_url = format!("http://{}/v1", server.addr());
        Ok(Self {
            server,
            base_url,
            requests,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// The `n`th answer: one tool call, with usage, as OpenAI sends it.
fn answer(n: u64) -> String {
    serde_json::json!({
        "id": format!("chatcmpl-bench-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": BENCH_MODEL,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": format!("call_bench_{n}"),
                    "type": "function",
                    "function": {"name": BENCH_TOOL, "arguments": "{}"}
                }]
            },
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": 24, "completion_tokens": 8, "total_tokens": 32}
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_is_a_tool_call_with_its_own_id() {
        let first: serde_json::Value = serde_json::from_str(&answer(0)).expect("JSON");
        let second: serde_json::Value = serde_json::from_str(&answer(1)).expect("JSON");
        assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            first["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
            BENCH_TOOL
        );
        assert_ne!(
            first["choices"][0]["message"]["tool_calls"][0]["id"],
            second["choices"][0]["message"]["tool_calls"][0]["id"]
        );
    }
}

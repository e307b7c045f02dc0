//! `stephook receive`: a local webhook receiver, so stephook can be tried without any outside
//! service. It prints one line per event and checks what a production receiver should: the
//! Bearer key (401 if wrong or missing) and the Standard Webhooks signature (400 if bad).

use crate::cli::ReceiveArgs;
use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use stephook_core::{Secret, SigningSecret, StepId};
use stephook_webhook::signing::{self, VerifyError};
use stephook_webhook::{HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP};
use tokio::net::TcpListener;

/// How many webhook-ids the receiver remembers to mark repeats. Retries and redeliveries of one
/// step come within hours, and 100 000 ids (about 45 bytes each, twice) stay within ~10 MiB
/// however long the receiver runs.
const SEEN_CAPACITY: usize = 100_000;

/// What the receiver checks and how it answers.
#[derive(Debug, Clone, Default)]
pub struct ReceiverConfig {
    pub key: Option<Secret>,
    pub secret: Option<SigningSecret>,
    /// Answer every accepted request with this status (to try failure handling).
    pub status: Option<u16>,
}

pub async fn run(args: ReceiveArgs) -> anyhow::Result<()> {
    let config = ReceiverConfig {
        key: args.key.filter(|k| !k.is_empty()),
        secret: args
            .secret
            .filter(|s| !s.is_empty())
            .map(|s| SigningSecret::parse(s.expose()))
            .transpose()?,
        status: args.status,
    };
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    println!(
        "stephook receive: listening on http://{addr}/  (bearer key {}, signature {})",
        on_off(config.key.is_some()),
        on_off(config.secret.is_some())
    );
    serve(listener, config, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

fn on_off(on: bool) -> &'static str {
    if on { "checked" } else { "not checked" }
}

/// Serves until `shutdown` completes. Used by `receive` and by `dev`.
pub async fn serve(
    listener: TcpListener,
    config: ReceiverConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = Arc::new(Receiver {
        config,
        seen: Mutex::new(SeenIds::new(SEEN_CAPACITY)),
    });
    let app = Router::new().fallback(handle).with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .context("the receiver stopped")
}

struct Receiver {
    config: ReceiverConfig,
    /// webhook-ids already printed, to mark repeats (retries and redeliveries).
    seen: Mutex<SeenIds>,
}

async fn handle(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let (status, line) = receiver.judge(&headers, &body);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    status
}

impl Receiver {
    fn judge(&self, headers: &HeaderMap, body: &[u8]) -> ((StatusCode, &'static str), String) {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(key) = &self.config.key {
            let expected = format!("Bearer {}", key.expose());
            let given = header("authorization").unwrap_or("");
            if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
                return (
                    (StatusCode::UNAUTHORIZED, "invalid authorization\n"),
                    "rejected  401  missing or wrong Bearer key".to_owned(),
                );
            }
        }
        let msg_id = header(HEADER_WEBHOOK_ID).unwrap_or("-").to_owned();
        if let Some(secret) = &self.config.secret {
            let verified = match (
                header(HEADER_WEBHOOK_ID),
                header(HEADER_WEBHOOK_TIMESTAMP),
                header(HEADER_WEBHOOK_SIGNATURE),
            ) {
                (Some(id), Some(ts), Some(sig)) => {
                    let now = stephook_core::now_unix_seconds();
                    signing::verify(secret, id, ts, sig, body, now)
                }
                _ => Err(VerifyError::MissingHeaders),
            };
            if let Err(error) = verified {
                return (
                    (StatusCode::BAD_REQUEST, "invalid signature\n"),
                    format!("rejected  400  bad signature: {error}"),
                );
            }
        }
        let step_id = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("step_id")?.as_str().map(str::to_owned))
            .and_then(|id| StepId::parse(&id).ok());
        let Some(step_id) = step_id else {
            return (
                (
                    StatusCode::BAD_REQUEST,
                    "expected {\"step_id\":\"step-...\"}\n",
                ),
                "rejected  400  body is not {\"step_id\": \"step-...\"}".to_owned(),
            );
        };
        let repeat = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(&msg_id);
        let checks = match (self.config.key.is_some(), self.config.secret.is_some()) {
            (true, true) => "bearer ok, signature verified",
            (true, false) => "bearer ok",
            (false, true) => "signature verified",
            (false, false) => "unchecked",
        };
        let answer = self
            .config
            .status
            .and_then(|s| StatusCode::from_u16(s).ok())
            .unwrap_or(StatusCode::OK);
        (
            (answer, "ok\n"),
            format!(
                "step-complete  {step_id}  ({checks})  webhook-id={msg_id}{}  -> {}",
                if repeat && msg_id != "-" {
                    "  [repeat]"
                } else {
                    ""
                },
                answer.as_u16()
            ),
        )
    }
}

/// The most recently seen ids, at most `capacity` of them: a bounded LRU set. Seeing an id again
/// makes it the most recent; past the capacity the least recently seen one is forgotten.
struct SeenIds {
    capacity: usize,
    /// Each remembered id and the tick it was last seen at.
    last_seen: HashMap<String, u64>,
    /// (id, tick) in the order seen. An entry whose tick is older than the id's `last_seen` is
    /// stale (the id was seen again since) and is skipped when evicting.
    order: VecDeque<(String, u64)>,
    tick: u64,
}

impl SeenIds {
    fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            last_seen: HashMap::new(),
            order: VecDeque::new(),
            tick: 0,
        }
    }

    /// Records `id` as seen now; true when it was already remembered (a repeat).
    fn insert(&mut self, id: &str) -> bool {
        self.tick += 1;
        let repeat = self.last_seen.insert(id.to_owned(), self.tick).is_some();
        self.order.push_back((id.to_owned(), self.tick));
        while self.last_seen.len() > self.capacity {
            let Some((oldest, tick)) = self.order.pop_front() else {
                break;
            };
            if self.last_seen.get(&oldest) == Some(&tick) {
                self.last_seen.remove(&oldest);
            }
        }
        // Ids seen over and over leave stale entries behind; drop them before they pile up.
        if self.order.len() > 2 * self.capacity {
            let last_seen = &self.last_seen;
            self.order
                .retain(|(id, tick)| last_seen.get(id) == Some(tick));
        }
        repeat
    }
}

/// Equal-length comparison that takes the same time wherever the first difference is.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{SeenIds, constant_time_eq};

    #[test]
    fn seen_ids_mark_a_recent_repeat() {
        let mut seen = SeenIds::new(3);
        assert!(!seen.insert("a"));
        assert!(!seen.insert("b"));
        assert!(seen.insert("a"), "a recent repeat is marked");
        assert!(!seen.insert("c"));
        assert!(
            !seen.insert("d"),
            "over capacity: b, the least recent, is forgotten"
        );
        assert!(seen.insert("a"), "a was seen again, so it stayed");
        assert!(!seen.insert("b"));
    }

    #[test]
    fn seen_ids_stay_bounded() {
        let mut seen = SeenIds::new(100);
        for i in 0..10_000 {
            seen.insert(&format!("msg-{i}"));
            // One id seen over and over must not grow the order queue either.
            seen.insert("hot");
            assert!(seen.last_seen.len() <= 100);
            assert!(seen.order.len() <= 2 * 100 + 1, "{}", seen.order.len());
        }
        assert!(seen.insert("hot"));
        assert!(seen.insert("msg-9999"));
        assert!(!seen.insert("msg-0"), "long forgotten");
        assert_eq!(SeenIds::new(0).capacity, 1);
    }

    #[test]
    fn constant_time_eq_compares_bytes() {
        assert!(constant_time_eq(b"Bearer k", b"Bearer k"));
        assert!(!constant_time_eq(b"Bearer k", b"Bearer x"));
        assert!(!constant_time_eq(b"Bearer", b"Bearer k"));
    }
}

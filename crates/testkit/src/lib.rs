//! A real HTTP server on 127.0.0.1 that records every request it gets and answers as a test
//! tells it to. Tests assert on what a receiver would really see: bytes, headers, timing.

mod logs;
mod mcp_http;
mod model_server;
pub use logs::LogCapture;
pub use mcp_http::McpHttpServer;
pub use model_server::{ModelAnswer, ModelRequestSeen, ModelServer};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, oneshot};

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// This status, empty body.
    Status(u16),
    /// This status with this body.
    StatusBody(u16, &'static str),
    /// Wait, then answer with this status.
    Delay(Duration, u16),
    /// A 3xx with a `Location` header.
    Redirect(u16, String),
    /// This status with a body of `len` bytes, streamed.
    LargeBody(u16, usize),
    /// Answer with each status in turn, then keep answering with the last one.
    Sequence(Vec<u16>),
    /// This status with a body that starts with a line made to look like a log line of its own
    /// ([`FORGED_LOG_LINE`], between newlines), then echoes every request header as a
    /// `name: value` line, the credentials first: a careless or hostile receiver.
    EchoHeaders(u16),
}

/// The forged line an [`Reply::EchoHeaders`] body starts with (after a newline).
pub const FORGED_LOG_LINE: &str = "ERROR forged log line";
/// Echoed first, so they fall inside even a short excerpt of the body.
const ECHOED_FIRST: [&str; 2] = ["authorization", "webhook-signature"];

/// Called with each request body before the reply; its answer is kept with the request (for
/// example, what the step store held when the notification arrived).
pub type Probe = Arc<dyn Fn(Bytes) -> BoxFuture<'static, String> + Send + Sync>;

#[derive(Debug, Clone)]
pub struct Captured {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub received_at: Instant,
    pub probe: Option<String>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `step_id` of a reference-shaped body.
    pub fn step_id(&self) -> Option<String> {
        let text = std::str::from_utf8(&self.body).ok()?;
        let rest = text.strip_prefix(r#"{"step_id":""#)?;
        Some(rest.strip_suffix(r#""}"#)?.to_owned())
    }
}

struct Shared {
    reply: Mutex<Reply>,
    served: Mutex<usize>,
    captured: Mutex<Vec<Captured>>,
    arrived: Notify,
    probe: Mutex<Option<Probe>>,
}

pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
}

impl Receiver {
    pub async fn start(reply: Reply) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            reply: Mutex::new(reply),
            served: Mutex::new(0),
            captured: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            probe: Mutex::new(None),
        });
        let app = Router::new()
            .fallback(handle)
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

    pub fn url(&self) -> String {
        format!("http://{}/hooks/step-complete", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set_reply(&self, reply: Reply) {
        *lock(&self.shared.reply) = reply;
        *lock(&self.shared.served) = 0;
    }

    pub fn set_probe(&self, probe: Probe) {
        *lock(&self.shared.probe) = Some(probe);
    }

    pub fn requests(&self) -> Vec<Captured> {
        lock(&self.shared.captured).clone()
    }

    pub fn count(&self) -> usize {
        lock(&self.shared.captured).len()
    }

    /// Waits until at least `n` requests arrived or `timeout` passed; returns what arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.arrived.notified();
            if self.count() >= n {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        self.requests()
    }
}

impl Drop for Receiver {
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

/// The body of a [`Reply::EchoHeaders`] answer.
fn echo_body(headers: &HeaderMap) -> String {
    let mut body = format!("\n{FORGED_LOG_LINE}\n");
    let first = ECHOED_FIRST
        .iter()
        .flat_map(|name| headers.get_all(*name).iter().map(move |v| (*name, v)));
    let rest = headers
        .iter()
        .filter(|(name, _)| !ECHOED_FIRST.contains(&name.as_str()))
        .map(|(name, value)| (name.as_str(), value));
    for (name, value) in first.chain(rest) {
        body.push_str(&format!(
            "{name}: {}\r\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    body
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let received_at = Instant::now();
    let probe = lock(&shared.probe).clone();
    let probe = match probe {
        Some(probe) => Some(probe(body.clone()).await),
        None => None,
    };
    let reply = lock(&shared.reply).clone();
    let served = {
        let mut served = lock(&shared.served);
        *served += 1;
        *served - 1
    };
    let echo = matches!(reply, Reply::EchoHeaders(_)).then(|| echo_body(&headers));
    lock(&shared.captured).push(Captured {
        headers,
        body,
        received_at,
        probe,
    });
    shared.arrived.notify_waiters();
    match reply {
        Reply::Status(code) => status(code).into_response(),
        Reply::StatusBody(code, body) => (status(code), body).into_response(),
        Reply::Delay(delay, code) => {
            tokio::time::sleep(delay).await;
            status(code).into_response()
        }
        Reply::Redirect(code, location) => {
            (status(code), [(header::LOCATION, location)]).into_response()
        }
        Reply::LargeBody(code, len) => {
            let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
            let chunks = len.div_ceil(chunk.len());
            let stream = futures::stream::iter(
                (0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
            );
            (status(code), axum::body::Body::from_stream(stream)).into_response()
        }
        Reply::Sequence(codes) => {
            let code = codes.get(served).or(codes.last()).copied().unwrap_or(200);
            status(code).into_response()
        }
        Reply::EchoHeaders(code) => (status(code), echo.unwrap_or_default()).into_response(),
    }
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

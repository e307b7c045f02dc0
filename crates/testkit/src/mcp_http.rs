//! server-everything (the real MCP server from npm) in streamable HTTP mode on a free loopback
//! port, for the tool tests; killed when dropped.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the server may take to say it listens (node starting cold).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct McpHttpServer {
    child: Child,
    /// The MCP endpoint, `http://127.0.0.1:PORT/mcp`.
    pub url: String,
}

impl McpHttpServer {
    /// `entry`: server-everything's `dist/index.js`.
    pub fn start(entry: &str) -> Self {
        let port = stephook_core::free_loopback_port().expect("a free loopback port");
        let mut child = Command::new("node")
            .args([entry, "streamableHttp"])
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start server-everything over HTTP");
        let stderr = child.stderr.take().expect("its stderr");
        let (ready, listening) = std::sync::mpsc::channel();
        // It says so on stderr; the thread keeps draining it so the server never blocks.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = ready.send(());
                }
            }
        });
        listening
            .recv_timeout(READY_TIMEOUT)
            .expect("server-everything says it listens");
        Self {
            child,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }
}

impl Drop for McpHttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! The connected MCP servers of one worker: connected and listed at start (a server that cannot
//! be started stops the worker, naming it), their tools offered to the model by name, and calls
//! routed to the server that has the tool. A server whose connection drops (a stdio server that
//! exited) is connected again on the next call.

use crate::config::{McpConfig, McpServerConfig, Transport};
use crate::outcome::ToolOutcome;
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use stephook_core::chat::ToolSpec;
use tokio::io::AsyncBufReadExt as _;
use tokio::sync::Mutex;

/// Starting a server and listing its tools gets this long.
const START_TIMEOUT: Duration = Duration::from_secs(60);

type Client = RunningService<RoleClient, ()>;

#[derive(Debug, thiserror::Error)]
pub enum ToolsError {
    #[error("MCP server {server:?} ({transport}) cannot be started: {reason}")]
    Start {
        server: String,
        transport: String,
        reason: String,
    },
    #[error(
        "MCP servers {first:?} and {second:?} both have a tool named {tool:?}: rename or disable one"
    )]
    DuplicateTool {
        tool: String,
        first: String,
        second: String,
    },
    /// The server did not answer the call (worth another attempt).
    #[error("MCP server {server:?} did not answer tool {tool:?}: {reason}")]
    Unavailable {
        server: String,
        tool: String,
        reason: String,
    },
}

struct Server {
    config: McpServerConfig,
    client: Mutex<Option<Arc<Client>>>,
}

/// Every configured server's tools; cheap to share behind an `Arc`.
pub struct McpServers {
    servers: HashMap<String, Server>,
    /// Tool name → (server name, spec), in name order.
    tools: BTreeMap<String, (String, ToolSpec)>,
}

impl std::fmt::Debug for McpServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServers")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl McpServers {
    /// No servers: no tools.
    pub fn none() -> Self {
        Self {
            servers: HashMap::new(),
            tools: BTreeMap::new(),
        }
    }

    /// Connects every server and lists its tools.
    pub async fn connect(config: &McpConfig) -> Result<Self, ToolsError> {
        let mut servers = HashMap::new();
        let mut tools: BTreeMap<String, (String, ToolSpec)> = BTreeMap::new();
        for server in &config.servers {
            let client = Arc::new(connect(server).await?);
            let listed = tokio::time::timeout(START_TIMEOUT, client.list_all_tools())
                .await
                .map_err(|_| {
                    start_error(
                        server,
                        format!("listing its tools took over {START_TIMEOUT:?}"),
                    )
                })?
                .map_err(|e| start_error(server, format!("cannot list its tools: {e}")))?;
            for tool in listed {
                let spec = ToolSpec {
                    name: tool.name.to_string(),
                    description: tool.description.map(|d| d.to_string()),
                    parameters: serde_json::Value::Object((*tool.input_schema).clone()),
                };
                if let Some((first, _)) = tools.get(&spec.name) {
                    return Err(ToolsError::DuplicateTool {
                        tool: spec.name,
                        first: first.clone(),
                        second: server.name.clone(),
                    });
                }
                tools.insert(spec.name.clone(), (server.name.clone(), spec));
            }
            servers.insert(
                server.name.clone(),
                Server {
                    config: server.clone(),
                    client: Mutex::new(Some(client)),
                },
            );
        }
        Ok(Self { servers, tools })
    }

    /// `(server, tool)` for every tool, in name order.
    pub fn tool_names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tools
            .iter()
            .map(|(tool, (server, _))| (server.as_str(), tool.as_str()))
    }

    /// The specs offered to the model: every tool, or only those named in `only` (unknown names
    /// are reported back, for the run to fail on).
    pub fn specs(&self, only: Option<&[String]>) -> Result<Vec<ToolSpec>, Vec<String>> {
        match only {
            None => Ok(self.tools.values().map(|(_, spec)| spec.clone()).collect()),
            Some(names) => {
                let unknown: Vec<String> = names
                    .iter()
                    .filter(|name| !self.tools.contains_key(name.as_str()))
                    .cloned()
                    .collect();
                if !unknown.is_empty() {
                    return Err(unknown);
                }
                Ok(names
                    .iter()
                    .filter_map(|name| self.tools.get(name).map(|(_, spec)| spec.clone()))
                    .collect())
            }
        }
    }

    /// Calls tool `name` with the model's `arguments` (JSON text). What the model should hear
    /// about (an unknown tool, arguments that are not a JSON object, the tool's own error) is an
    /// outcome; a server that does not answer is an error, worth another attempt.
    pub async fn call(
        &self,
        name: &str,
        arguments: &str,
        timeout: Duration,
    ) -> Result<ToolOutcome, ToolsError> {
        let Some((server_name, _)) = self.tools.get(name) else {
            let known: Vec<&str> = self.tools.keys().map(String::as_str).collect();
            return Ok(ToolOutcome::error(format!(
                "there is no tool named {name:?}; the tools are: {}",
                known.join(", ")
            )));
        };
        let arguments = match parse_arguments(arguments) {
            Ok(arguments) => arguments,
            Err(reason) => return Ok(ToolOutcome::error(reason)),
        };
        let server = &self.servers[server_name];
        let unavailable = |reason: String| ToolsError::Unavailable {
            server: server_name.clone(),
            tool: name.to_owned(),
            reason,
        };
        let client = server
            .client()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
        match tokio::time::timeout(timeout, client.call_tool(params)).await {
            Err(_) => Err(unavailable(format!("no answer within {timeout:?}"))),
            Ok(Ok(result)) => Ok(outcome(result)),
            // The server answered with a protocol error (invalid arguments, say): the model
            // can read it and correct itself.
            Ok(Err(ServiceError::McpError(error))) => {
                Ok(ToolOutcome::error(format!("{}", error.message)))
            }
            Ok(Err(error)) => {
                // The connection is gone: connect again on the next call.
                server.forget(&client).await;
                Err(unavailable(error.to_string()))
            }
        }
    }

    /// Closes every connection (stdio servers' processes end).
    pub async fn close(&self) {
        for server in self.servers.values() {
            if let Some(client) = server.client.lock().await.take()
                && let Ok(client) = Arc::try_unwrap(client)
            {
                let _ = client.cancel().await;
            }
        }
    }
}

impl Server {
    async fn client(&self) -> Result<Arc<Client>, ToolsError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(connect(&self.config).await?);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    async fn forget(&self, failed: &Arc<Client>) {
        let mut slot = self.client.lock().await;
        if slot
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, failed))
        {
            *slot = None;
        }
    }
}

fn start_error(server: &McpServerConfig, reason: String) -> ToolsError {
    ToolsError::Start {
        server: server.name.clone(),
        transport: format!("{:?}", server.transport),
        reason,
    }
}

async fn connect(server: &McpServerConfig) -> Result<Client, ToolsError> {
    // reqwest 0.13 (the HTTP transport) brings no crypto provider; the process's is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = match &server.transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut process = tokio::process::Command::new(command);
            process.args(args);
            for (key, value) in env {
                process.env(key, value.expose());
            }
            if let Some(cwd) = cwd {
                process.current_dir(cwd);
            }
            let (transport, stderr) = TokioChildProcess::builder(process)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| start_error(server, format!("cannot run its command: {e}")))?;
            if let Some(stderr) = stderr {
                forward_stderr(server.name.clone(), stderr);
            }
            tokio::time::timeout(START_TIMEOUT, ().serve(transport)).await
        }
        Transport::Http { url, headers } => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url.clone());
            let mut custom = HashMap::new();
            for (name, value) in headers {
                if name.eq_ignore_ascii_case("authorization")
                    && let Some(token) = value.expose().strip_prefix("Bearer ")
                {
                    config = config.auth_header(token.to_owned());
                    continue;
                }
                let name = http::HeaderName::try_from(name.as_str()).map_err(|_| {
                    start_error(server, format!("header {name:?} is not a header name"))
                })?;
                let mut value = http::HeaderValue::try_from(value.expose()).map_err(|_| {
                    start_error(server, format!("header {name} has an unusable value"))
                })?;
                value.set_sensitive(true);
                custom.insert(name, value);
            }
            if !custom.is_empty() {
                config = config.custom_headers(custom);
            }
            let transport = StreamableHttpClientTransport::from_config(config);
            tokio::time::timeout(START_TIMEOUT, ().serve(transport)).await
        }
    };
    started
        .map_err(|_| {
            start_error(
                server,
                format!("it did not answer within {START_TIMEOUT:?}"),
            )
        })?
        .map_err(|e| start_error(server, e.to_string()))
}

/// A stdio server's stderr, line by line, at debug level (it is the server's own log).
fn forward_stderr(server: String, stderr: tokio::process::ChildStderr) {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(server = %server, "{}", stephook_core::excerpt::inert(&line));
        }
    });
}

/// The model's arguments: a JSON object (an empty text is no arguments).
fn parse_arguments(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::Map::new());
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "the arguments must be a JSON object, got {}",
            kind(&other)
        )),
        Err(e) => Err(format!("the arguments are not valid JSON ({e})")),
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The result's text blocks, in order; other content (images, resources) is named, not
/// inlined.
fn outcome(result: CallToolResult) -> ToolOutcome {
    let mut parts = Vec::new();
    for block in &result.content {
        match block.as_text() {
            Some(text) => parts.push(text.text.clone()),
            None => parts.push("[non-text content omitted]".to_owned()),
        }
    }
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    ToolOutcome::result(parts.join("\n"), result.is_error.unwrap_or(false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_must_be_a_json_object() {
        assert!(parse_arguments("").unwrap().is_empty());
        assert_eq!(parse_arguments(r#"{"a": 1}"#).unwrap().len(), 1);
        assert!(parse_arguments("[1]").unwrap_err().contains("an array"));
        assert!(
            parse_arguments("{oops")
                .unwrap_err()
                .contains("not valid JSON")
        );
    }
}

//! A real MCP server (`@modelcontextprotocol/server-everything` from npm, pinned and installed by
//! `scripts/test`), over stdio and over streamable HTTP: its tools are listed with their schemas,
//! `echo` and `get-sum` answer, and everything that can go wrong reaches the model as an error it
//! can read. Skipped (and said so; a failure under CI=true) without node or the package.

use std::time::Duration;
use stephook_testkit::McpHttpServer;
use stephook_tools::{McpConfig, McpServers, ToolsError};

const CALL_TIMEOUT: Duration = Duration::from_secs(20);

fn stdio_config(entry: &str) -> McpConfig {
    let text = serde_json::json!({"mcpServers": {"everything": {
        "command": "node", "args": [entry, "stdio"]}}})
    .to_string();
    McpConfig::parse(&text, "test").expect("a valid config")
}

async fn both_tools_answer(servers: &McpServers) {
    let names: Vec<&str> = servers.tool_names().map(|(_, tool)| tool).collect();
    assert!(
        names.contains(&"echo") && names.contains(&"get-sum"),
        "{names:?}"
    );
    let specs = servers
        .specs(Some(&["echo".to_owned(), "get-sum".to_owned()]))
        .expect("both exist");
    assert_eq!(specs[0].name, "echo");
    assert_eq!(
        specs[0].parameters["properties"]["message"]["type"],
        "string"
    );

    let echo = servers
        .call("echo", r#"{"message": "hi there"}"#, CALL_TIMEOUT)
        .await
        .expect("echo answers");
    assert_eq!(
        (echo.content.as_str(), echo.is_error),
        ("Echo: hi there", false)
    );
    let sum = servers
        .call("get-sum", r#"{"a": 2, "b": 40}"#, CALL_TIMEOUT)
        .await
        .expect("get-sum answers");
    assert!(sum.content.contains("42"), "{sum:?}");

    // What the model gets wrong comes back to it as an error it can read.
    let not_json = servers
        .call("echo", "{message:", CALL_TIMEOUT)
        .await
        .unwrap();
    assert!(
        not_json.is_error && not_json.content.contains("not valid JSON"),
        "{not_json:?}"
    );
    let unknown = servers.call("ecko", "{}", CALL_TIMEOUT).await.unwrap();
    assert!(
        unknown.is_error && unknown.content.contains("echo"),
        "{unknown:?}"
    );
    let wrong_args = servers
        .call("get-sum", r#"{"a": "two"}"#, CALL_TIMEOUT)
        .await
        .expect("an answer, not a failure");
    assert!(wrong_args.is_error, "{wrong_args:?}");
    assert!(servers.specs(Some(&["nope".to_owned()])).is_err());
}

#[tokio::test]
async fn server_everything_over_stdio() {
    let Some(entry) = stephook_store::testing::mcp_everything() else {
        return;
    };
    let servers = McpServers::connect(&stdio_config(&entry))
        .await
        .expect("the server starts");
    both_tools_answer(&servers).await;
    servers.close().await;
}

#[tokio::test]
async fn server_everything_over_streamable_http() {
    let Some(entry) = stephook_store::testing::mcp_everything() else {
        return;
    };
    let server = McpHttpServer::start(&entry);
    let text = serde_json::json!({"mcpServers": {"remote": {
        "url": server.url, "headers": {"Authorization": "Bearer not-checked-here"}}}})
    .to_string();
    let servers = McpServers::connect(&McpConfig::parse(&text, "test").unwrap())
        .await
        .expect("connected over HTTP");
    both_tools_answer(&servers).await;
    servers.close().await;
}

#[tokio::test]
async fn a_server_that_cannot_start_is_named() {
    let text = serde_json::json!({"mcpServers": {"broken": {
        "command": "/nonexistent/mcp-server"}}})
    .to_string();
    let error = McpServers::connect(&McpConfig::parse(&text, "test").unwrap())
        .await
        .expect_err("cannot start");
    assert!(matches!(error, ToolsError::Start { .. }), "{error}");
    assert!(error.to_string().contains(r#""broken""#), "{error}");
}

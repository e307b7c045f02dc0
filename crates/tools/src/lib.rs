//! An agent step's tools, with no Temporal in it: MCP servers configured in the `mcpServers`
//! JSON shape that MCP clients share, connected through the official Rust SDK over stdio (a
//! command) or streamable HTTP (a URL), their tools listed at start and called by name.
//!
//! - [`config`]: the `mcpServers` file, checked, every error naming its server;
//! - [`servers`]: the connected servers: their tools' specs for the model, and calls;
//! - [`outcome`]: what a call gives back to the model (text, capped, or an error it can read).

pub mod config;
pub mod outcome;
pub mod servers;

pub use config::{McpConfig, McpServerConfig, Transport};
pub use outcome::{MAX_TOOL_RESULT_BYTES, ToolOutcome};
pub use servers::{McpServers, ToolsError};

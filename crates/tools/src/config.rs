//! The `mcpServers` file (`STEPHOOK_MCP_CONFIG`), in the shape Claude Desktop, Cursor and other
//! MCP clients share:
//!
//! ```json
//! {"mcpServers": {
//!   "everything": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything"]},
//!   "remote": {"url": "http://127.0.0.1:3001/mcp", "headers": {"Authorization": "Bearer …"}}
//! }}
//! ```
//!
//! A server has a `command` (stdio) or a `url` (streamable HTTP), never both. Header values and
//! `env` values are secrets: they are never printed.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use stephook_core::Secret;

pub const CONFIG_VAR: &str = "STEPHOOK_MCP_CONFIG";

/// How to reach one server.
#[derive(Clone)]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, Secret>,
        cwd: Option<PathBuf>,
    },
    Http {
        url: String,
        headers: BTreeMap<String, Secret>,
    },
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdio { command, args, .. } => write!(f, "stdio `{command} {}`", args.join(" ")),
            Self::Http { url, .. } => write!(f, "streamable HTTP {url}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct McpServerConfig {
    pub name: String,
    pub transport: Transport,
}

/// Every configured server, in name order.
#[derive(Debug, Clone, Default)]
pub struct McpConfig {
    pub servers: Vec<McpServerConfig>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{CONFIG_VAR}: cannot read {path}: {reason} (--mcp-config)")]
    Read { path: String, reason: String },
    #[error("{CONFIG_VAR}: {path} is not an mcpServers file: {reason} (--mcp-config)")]
    Shape { path: String, reason: String },
    #[error("{CONFIG_VAR}: MCP server {server:?}: {reason} (--mcp-config)")]
    Server { server: String, reason: String },
}

#[derive(Deserialize)]
struct File {
    #[serde(rename = "mcpServers")]
    mcp_servers: BTreeMap<String, RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// `stdio`, `http` or `streamable-http` (optional: the fields say which).
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    disabled: bool,
}

impl McpConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &shown)
    }

    pub fn parse(text: &str, shown: &str) -> Result<Self, ConfigError> {
        let file: File = serde_json::from_str(text).map_err(|e| ConfigError::Shape {
            path: shown.to_owned(),
            reason: e.to_string(),
        })?;
        let servers = file
            .mcp_servers
            .into_iter()
            .filter(|(_, raw)| !raw.disabled)
            .map(|(name, raw)| server(name, raw))
            .collect::<Result<_, _>>()?;
        Ok(Self { servers })
    }
}

fn server(name: String, raw: RawServer) -> Result<McpServerConfig, ConfigError> {
    let fail = |reason: &str| ConfigError::Server {
        server: name.clone(),
        reason: reason.to_owned(),
    };
    let secrets = |map: BTreeMap<String, String>| {
        map.into_iter()
            .map(|(k, v)| (k, Secret::new(v)))
            .collect::<BTreeMap<_, _>>()
    };
    let transport = match (raw.command, raw.url) {
        (Some(_), Some(_)) => return Err(fail("has both a command and a url: give one")),
        (None, None) => {
            return Err(fail(
                "has neither a command (stdio) nor a url (streamable HTTP)",
            ));
        }
        (Some(command), None) => {
            if command.trim().is_empty() {
                return Err(fail("its command is empty"));
            }
            if raw.kind.as_deref().is_some_and(|k| k != "stdio") {
                return Err(fail("has a command, so its type can only be stdio"));
            }
            Transport::Stdio {
                command,
                args: raw.args,
                env: secrets(raw.env),
                cwd: raw.cwd,
            }
        }
        (None, Some(url)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(fail("its url must be an http or https URL"));
            }
            if raw
                .kind
                .as_deref()
                .is_some_and(|k| !matches!(k, "http" | "streamable-http" | "streamableHttp"))
            {
                return Err(fail(
                    "has a url: its type can only be http (streamable HTTP); SSE is not supported",
                ));
            }
            Transport::Http {
                url,
                headers: secrets(raw.headers),
            }
        }
    };
    Ok(McpServerConfig { name, transport })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_transports_parse_and_secrets_never_print() {
        let config = McpConfig::parse(
            r#"{"mcpServers": {
                "everything": {"command": "node", "args": ["index.js", "stdio"],
                               "env": {"TOKEN": "env-s3cret"}},
                "remote": {"url": "http://127.0.0.1:3001/mcp",
                           "headers": {"Authorization": "Bearer hdr-s3cret"}},
                "off": {"command": "x", "disabled": true}
            }}"#,
            "mcp.json",
        )
        .unwrap();
        assert_eq!(config.servers.len(), 2);
        let shown = format!("{config:?}");
        assert!(shown.contains("stdio `node index.js stdio`"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn every_mistake_names_its_server() {
        let cases = [
            (r#"{"mcpServers": {"a": {}}}"#, "neither a command"),
            (
                r#"{"mcpServers": {"a": {"command": "x", "url": "http://h/"}}}"#,
                "both",
            ),
            (
                r#"{"mcpServers": {"a": {"url": "ftp://h/"}}}"#,
                "http or https",
            ),
            (
                r#"{"mcpServers": {"a": {"url": "http://h/", "type": "sse"}}}"#,
                "SSE",
            ),
        ];
        for (text, expected) in cases {
            let error = McpConfig::parse(text, "mcp.json").unwrap_err().to_string();
            assert!(
                error.contains(r#"MCP server "a""#) && error.contains(expected),
                "{error}"
            );
        }
        let unknown = McpConfig::parse(r#"{"mcpServers": {"a": {"comand": "x"}}}"#, "f")
            .unwrap_err()
            .to_string();
        assert!(unknown.contains("comand"), "{unknown}");
        assert!(McpConfig::parse("{}", "f").is_err());
    }
}

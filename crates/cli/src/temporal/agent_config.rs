//! The agent step's settings: the model (an OpenAI-compatible endpoint) and the MCP servers whose
//! tools it may call. Without a base URL the steps are the offline echo (the embedded default,
//! which needs no model). Every unusable value stops the worker at start, naming its variable.

use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use stephook_core::Secret;
use stephook_model::config::{
    API_KEY_VAR, BASE_URL_VAR, DEFAULT_MODEL, MAX_TIMEOUT, MIN_TIMEOUT, MODEL_VAR, TIMEOUT_VAR,
};
use stephook_model::{ModelClient, ModelConfig};
use stephook_tools::config::CONFIG_VAR;
use stephook_tools::{McpConfig, McpServers};

const TOOL_TIMEOUT_VAR: &str = "STEPHOOK_TOOL_TIMEOUT";

#[derive(Debug, Clone, clap::Args)]
pub struct AgentArgs {
    /// OpenAI-compatible base URL (`…/v1`): OpenAI, vLLM, llama.cpp, Ollama, LM Studio, LiteLLM,
    /// OpenRouter. Unset: the steps are the offline echo.
    #[arg(long = "model-base-url", env = BASE_URL_VAR)]
    pub base_url: Option<String>,
    /// The model asked for, unless a run names another.
    #[arg(long = "model", env = MODEL_VAR, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Sent as `Authorization: Bearer <key>` to the model endpoint.
    #[arg(long = "model-api-key", env = API_KEY_VAR, hide_env_values = true)]
    pub api_key: Option<Secret>,
    /// One model call, answer included (ms, s, m; 1 s to 10 min).
    #[arg(long = "model-timeout", env = TIMEOUT_VAR, default_value = DEFAULT_MODEL_TIMEOUT)]
    pub timeout: String,
    /// A JSON file of MCP servers in the shared `mcpServers` shape: their tools are offered to
    /// the model.
    #[arg(long = "mcp-config", env = CONFIG_VAR)]
    pub mcp_config: Option<PathBuf>,
    /// One tool call, answer included (ms, s, m; 1 s to 4 min).
    #[arg(long = "tool-timeout", env = TOOL_TIMEOUT_VAR, default_value = DEFAULT_TOOL_TIMEOUT)]
    pub tool_timeout: String,
}

const DEFAULT_MODEL_TIMEOUT: &str = "120s";
const DEFAULT_TOOL_TIMEOUT: &str = "60s";

/// As the command line's defaults: no model (the offline echo), no MCP servers.
impl Default for AgentArgs {
    fn default() -> Self {
        Self {
            base_url: None,
            model: DEFAULT_MODEL.to_owned(),
            api_key: None,
            timeout: DEFAULT_MODEL_TIMEOUT.to_owned(),
            mcp_config: None,
            tool_timeout: DEFAULT_TOOL_TIMEOUT.to_owned(),
        }
    }
}

/// The agent step's settings, validated; nothing is connected yet.
#[derive(Debug, Clone, Default)]
pub struct AgentConfig {
    /// `None`: the offline echo.
    pub model: Option<ModelConfig>,
    pub mcp: McpConfig,
    pub tool_timeout: Duration,
}

/// What a worker runs its steps with.
pub struct AgentParts {
    pub model: Option<ModelClient>,
    pub tools: Arc<McpServers>,
    pub tool_timeout: Duration,
}

impl AgentArgs {
    pub fn validate(&self) -> anyhow::Result<AgentConfig> {
        let model = match self.base_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => {
                let base_url = url::Url::parse(raw)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{BASE_URL_VAR}: not an http or https URL with a host (e.g. \
                             http://localhost:11434/v1 for Ollama) (--model-base-url)"
                        )
                    })?;
                if self.model.trim().is_empty() {
                    anyhow::bail!("{MODEL_VAR}: must not be empty (--model)");
                }
                Some(ModelConfig {
                    base_url,
                    model: self.model.trim().to_owned(),
                    api_key: self.api_key.clone().filter(|k| !k.is_empty()),
                    timeout: duration(
                        &self.timeout,
                        TIMEOUT_VAR,
                        "--model-timeout",
                        MIN_TIMEOUT,
                        MAX_TIMEOUT,
                    )?,
                })
            }
        };
        let mcp = match &self.mcp_config {
            Some(path) => McpConfig::load(path)?,
            None => McpConfig::default(),
        };
        Ok(AgentConfig {
            model,
            mcp,
            tool_timeout: duration(
                &self.tool_timeout,
                TOOL_TIMEOUT_VAR,
                "--tool-timeout",
                Duration::from_secs(1),
                Duration::from_secs(240),
            )?,
        })
    }
}

impl AgentConfig {
    /// Builds the model client and starts every MCP server (a server that cannot start stops
    /// the worker, naming it), and says in the log what the steps will use.
    pub async fn start(&self) -> anyhow::Result<AgentParts> {
        let model = self
            .model
            .clone()
            .map(ModelClient::new)
            .transpose()
            .context("cannot build the model client")?;
        match &self.model {
            Some(config) => tracing::info!(
                base_url = %stephook_core::redacted_url(&config.base_url),
                model = %config.model,
                provider = %config.provider(),
                "steps call the model"
            ),
            None => {
                tracing::info!("no model configured ({BASE_URL_VAR}): steps are the offline echo")
            }
        }
        let tools = McpServers::connect(&self.mcp).await?;
        for (server, tool) in tools.tool_names() {
            tracing::info!(server, tool, "MCP tool offered to the model");
        }
        Ok(AgentParts {
            model,
            tools: Arc::new(tools),
            tool_timeout: self.tool_timeout,
        })
    }
}

fn duration(
    text: &str,
    var: &str,
    flag: &str,
    min: Duration,
    max: Duration,
) -> anyhow::Result<Duration> {
    stephook_direct::parse_bounded(text.trim(), min, max)
        .map_err(|e| anyhow::anyhow!("{var}: {e} ({flag})"))
}

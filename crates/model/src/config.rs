//! Where the model is and how long a call may take, validated by the caller.

use std::fmt;
use std::time::Duration;
use stephook_core::Secret;
use url::Url;

pub const BASE_URL_VAR: &str = "STEPHOOK_MODEL_BASE_URL";
pub const MODEL_VAR: &str = "STEPHOOK_MODEL";
pub const API_KEY_VAR: &str = "STEPHOOK_MODEL_API_KEY";
pub const TIMEOUT_VAR: &str = "STEPHOOK_MODEL_TIMEOUT";
/// The model asked for when neither the run nor the worker names one.
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Below the `call_model` activity's start-to-close, so the client reports its own timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// A configured model endpoint.
#[derive(Clone)]
pub struct ModelConfig {
    /// `…/v1`: requests go to `{base_url}/chat/completions`.
    pub base_url: Url,
    /// The model asked for unless a run names another.
    pub model: String,
    pub api_key: Option<Secret>,
    /// One request, answer included.
    pub timeout: Duration,
}

impl ModelConfig {
    /// The provider, as a step records it (`provider_name`).
    pub fn provider(&self) -> String {
        provider_name(&self.base_url)
    }
}

impl fmt::Debug for ModelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelConfig")
            .field("base_url", &stephook_core::redacted_url(&self.base_url))
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The provider a base URL points at, by its host: `openai`, `openrouter`, `ollama` (its
/// port), or the host itself.
pub fn provider_name(base_url: &Url) -> String {
    let host = base_url.host_str().unwrap_or_default();
    if host.ends_with("openai.com") {
        "openai".to_owned()
    } else if host.ends_with("openrouter.ai") {
        "openrouter".to_owned()
    } else if base_url.port() == Some(11434) {
        "ollama".to_owned()
    } else {
        host.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_named_by_their_host() {
        let name = |u: &str| provider_name(&Url::parse(u).unwrap());
        assert_eq!(name("https://api.openai.com/v1"), "openai");
        assert_eq!(name("https://openrouter.ai/api/v1"), "openrouter");
        assert_eq!(name("http://localhost:11434/v1"), "ollama");
        assert_eq!(name("http://127.0.0.1:8000/v1"), "127.0.0.1");
    }

    #[test]
    fn the_key_never_prints() {
        let config = ModelConfig {
            base_url: Url::parse("http://127.0.0.1:1/v1?api_key=in-url").unwrap(),
            model: "m".into(),
            api_key: Some(Secret::new("sk-very-secret")),
            timeout: DEFAULT_TIMEOUT,
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("sk-very-secret") && !shown.contains("in-url"),
            "{shown}"
        );
    }
}

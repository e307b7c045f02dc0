//! The API server's configuration: where it listens and the token it requires, validated once
//! at start. Binding beyond loopback without a token would publish every step and let anyone
//! on the network re-send webhooks, so that is refused.

use clap::Args;
use std::net::SocketAddr;
use stephook_core::{ConfigError, Endpoint, Secret};

pub const ADDR_VAR: &str = "STEPHOOK_API_ADDR";
pub const TOKEN_VAR: &str = "STEPHOOK_API_TOKEN";
pub const ALLOWED_HOSTS_VAR: &str = "STEPHOOK_API_ALLOWED_HOSTS";
/// Letta's own default port, so client configuration written for Letta carries over.
pub const DEFAULT_PORT: u16 = 8283;
pub const DEFAULT_ADDR: &str = "127.0.0.1:8283";

/// Raw API settings as given on the command line or in the environment.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// Address the HTTP API and console listen on (IP:PORT).
    #[arg(long = "api-addr", env = ADDR_VAR, default_value = DEFAULT_ADDR)]
    pub addr: String,
    /// When set, every API request needs `Authorization: Bearer <token>`; required to listen
    /// on a non-loopback address.
    #[arg(long = "api-token", env = TOKEN_VAR, hide_env_values = true)]
    pub token: Option<Secret>,
    /// Extra `Host` values the API answers to (comma-separated `host[:port]`), for a proxy in
    /// front. It always answers to its listening address, `localhost` and loopback addresses.
    #[arg(long = "api-allowed-hosts", env = ALLOWED_HOSTS_VAR, value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
}

impl Default for ApiArgs {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR.to_owned(),
            token: None,
            allowed_hosts: Vec::new(),
        }
    }
}

/// Validated API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub addr: SocketAddr,
    /// `None`: no authentication (loopback only).
    pub token: Option<Secret>,
    /// Extra `Host` values (lower-case `host[:port]`) beyond the listening address, `localhost`
    /// and loopback addresses.
    pub allowed_hosts: Vec<String>,
    /// The endpoint this process's dispatcher sends to, when it has a webhook URL: where
    /// "redeliver to the current endpoint" moves notifications.
    pub current_endpoint: Option<Endpoint>,
}

impl ApiConfig {
    /// Loopback on `port` (0: any free port), no token: for `stephook dev` and tests.
    pub fn loopback(port: u16) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            token: None,
            allowed_hosts: Vec::new(),
            current_endpoint: None,
        }
    }

    pub fn with_token(mut self, token: impl Into<Secret>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn with_current_endpoint(mut self, endpoint: Option<Endpoint>) -> Self {
        self.current_endpoint = endpoint;
        self
    }
}

impl ApiArgs {
    pub fn validate(&self) -> Result<ApiConfig, ConfigError> {
        let addr: SocketAddr = self.addr.trim().parse().map_err(|_| {
            ConfigError::new(
                ADDR_VAR,
                format!(
                    "{:?} is not an IP:PORT address (e.g. {DEFAULT_ADDR}) (--api-addr)",
                    self.addr
                ),
            )
        })?;
        let token = self.token.clone().filter(|token| !token.is_empty());
        if token.is_none() && !addr.ip().is_loopback() {
            return Err(ConfigError::new(
                ADDR_VAR,
                format!(
                    "{addr} is not a loopback address and {TOKEN_VAR} is not set: set \
                     {TOKEN_VAR} (--api-token) to serve beyond this machine, or bind \
                     {ADDR_VAR} to 127.0.0.1"
                ),
            ));
        }
        let allowed_hosts = self
            .allowed_hosts
            .iter()
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .map(|host| {
                if host.contains('/') || host.contains(char::is_whitespace) {
                    Err(ConfigError::new(
                        ALLOWED_HOSTS_VAR,
                        format!(
                            "{host:?} is not a host[:port] (e.g. steps.example.com or \
                             proxy.internal:8080) (--api-allowed-hosts)"
                        ),
                    ))
                } else {
                    Ok(host)
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ApiConfig {
            addr,
            token,
            allowed_hosts,
            current_endpoint: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(addr: &str, token: Option<&str>) -> ApiArgs {
        ApiArgs {
            addr: addr.into(),
            token: token.map(Secret::new),
            allowed_hosts: Vec::new(),
        }
    }

    #[test]
    fn allowed_hosts_are_lower_cased_and_checked() {
        let mut given = args("127.0.0.1:8283", None);
        given.allowed_hosts = vec![" Steps.Example.com ".into(), String::new()];
        assert_eq!(
            given.validate().unwrap().allowed_hosts,
            vec!["steps.example.com".to_owned()]
        );
        given.allowed_hosts = vec!["http://x/".into()];
        assert_eq!(given.validate().unwrap_err().var, ALLOWED_HOSTS_VAR);
    }

    #[test]
    fn loopback_without_a_token_is_fine() {
        let config = args("127.0.0.1:8283", None).validate().unwrap();
        assert_eq!(config.addr.port(), 8283);
        assert!(config.token.is_none());
        assert!(
            args("[::1]:9000", Some(""))
                .validate()
                .unwrap()
                .token
                .is_none()
        );
    }

    #[test]
    fn public_without_a_token_is_refused_naming_both_variables() {
        let error = args("0.0.0.0:8283", None).validate().unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(ADDR_VAR) && text.contains(TOKEN_VAR),
            "{text}"
        );
        assert!(args("0.0.0.0:8283", Some("t")).validate().is_ok());
    }

    #[test]
    fn a_bad_address_names_the_variable_and_the_token_never_prints() {
        let error = args("localhost", Some("hunter2")).validate().unwrap_err();
        assert_eq!(error.var, ADDR_VAR);
        let config = args("0.0.0.0:1", Some("hunter2")).validate().unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}

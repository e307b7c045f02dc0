//! Configuration: every variable of the design's table, readable from the environment or a CLI
//! flag, validated once at start. An unusable value is a [`ConfigError`] that names the variable,
//! and never quotes a secret.

use crate::secret::Secret;
use base64::Engine as _;
use std::fmt;
use std::time::Duration;
use url::Url;

pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 10_000;
/// The webhook activity's start-to-close timeout: one HTTP attempt must end before it does, or
/// Temporal would time the activity out before the client could report what happened.
pub const MAX_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(15);
/// Where the embedded default store lives, under [`stephook_data_dir`].
pub const DEFAULT_STORE_FILE: &str = "stephook.db";
pub const DEFAULT_TASK_QUEUE: &str = "agent-steps";

const SIGNING_SECRET_PREFIX: &str = "whsec_";
/// What a secret is replaced with when a URL is shown.
const REDACTED: &str = "REDACTED";
/// Query parameter names whose values are secrets, matched as lower-case substrings of the
/// (decoded) name: `password` and `sslpassword` by `pass`, `X-Amz-Signature` by `sig`, ...
/// Over-matching only hides a harmless value; under-matching would print a credential.
const SECRET_PARAM_MARKERS: &[&str] = &[
    "password",
    "pass",
    "pwd",
    "token",
    "key",
    "secret",
    "sig",
    "signature",
    "auth",
    "api_key",
    "apikey",
    "access_token",
    "credential",
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    /// The environment variable (its CLI flag is named in `reason` where it helps).
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

/// Raw webhook settings as given on the command line or in the environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WebhookArgs {
    /// URL that receives a POST per terminal step; unset or empty: notifications are skipped.
    /// (Held as a secret: a URL can carry credentials or a token.)
    #[arg(
        long = "webhook-url",
        env = "STEP_COMPLETE_WEBHOOK",
        hide_env_values = true
    )]
    pub url: Option<Secret>,
    /// Sent as `Authorization: Bearer <key>` when set.
    #[arg(
        long = "webhook-key",
        env = "STEP_COMPLETE_KEY",
        hide_env_values = true
    )]
    pub key: Option<Secret>,
    /// `whsec_<base64>`: adds Standard Webhooks signature headers when set.
    #[arg(
        long = "webhook-signing-secret",
        env = "STEP_COMPLETE_SIGNING_SECRET",
        hide_env_values = true
    )]
    pub signing_secret: Option<Secret>,
    /// Per-request HTTP timeout in milliseconds; must stay below 15000.
    #[arg(long = "webhook-timeout-ms", env = "STEP_COMPLETE_TIMEOUT_MS")]
    pub timeout_ms: Option<String>,
}

/// Validated webhook settings.
#[derive(Clone)]
pub struct WebhookConfig {
    pub url: Option<Url>,
    pub key: Option<Secret>,
    pub signing_secret: Option<SigningSecret>,
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            url: None,
            key: None,
            signing_secret: None,
            timeout: Duration::from_millis(DEFAULT_WEBHOOK_TIMEOUT_MS),
        }
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url.as_ref().map(redacted_url))
            .field("key", &self.key)
            .field("signing_secret", &self.signing_secret)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl WebhookConfig {
    /// The endpoint this configuration sends to; `None` when no URL is set.
    pub fn endpoint(&self) -> Option<crate::Endpoint> {
        self.url.as_ref().map(crate::Endpoint::of)
    }
}

impl WebhookArgs {
    pub fn validate(&self) -> Result<WebhookConfig, ConfigError> {
        Ok(WebhookConfig {
            url: parse_webhook_url(self.url.as_ref().map(Secret::expose))?,
            key: self.key.clone().filter(|key| !key.is_empty()),
            signing_secret: match &self.signing_secret {
                Some(raw) if !raw.is_empty() => Some(SigningSecret::parse(raw.expose())?),
                _ => None,
            },
            timeout: parse_timeout(self.timeout_ms.as_deref())?,
        })
    }
}

fn parse_webhook_url(raw: Option<&str>) -> Result<Option<Url>, ConfigError> {
    const VAR: &str = "STEP_COMPLETE_WEBHOOK";
    let raw = match raw.map(str::trim) {
        None | Some("") => return Ok(None),
        Some(raw) => raw,
    };
    // The value is not quoted back: a URL can carry credentials.
    let url = Url::parse(raw)
        .map_err(|e| ConfigError::new(VAR, format!("not a valid URL ({e}) (--webhook-url)")))?;
    match url.scheme() {
        "http" | "https" if url.host().is_none() => {
            return Err(ConfigError::new(VAR, "the URL has no host (--webhook-url)"));
        }
        "http" | "https" => {}
        other => {
            return Err(ConfigError::new(
                VAR,
                format!("must be an http or https URL, got scheme {other:?} (--webhook-url)"),
            ));
        }
    }
    if has_user_info(&url) {
        // reqwest turns `user:pass@` into a Basic Authorization header; with a key there would be
        // two, and receivers reject that. One way to authenticate: the key. (Neither the user nor
        // the password is quoted back.)
        return Err(ConfigError::new(
            VAR,
            "the URL carries credentials (a user name or password before the host); remove them and \
             set STEP_COMPLETE_KEY (--webhook-key) to authenticate with a Bearer key instead \
             (--webhook-url)",
        ));
    }
    Ok(Some(url))
}

/// Whether the URL has a user name or a password (`http://user:pw@host/`, `http://:pw@host/`).
fn has_user_info(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

fn parse_timeout(raw: Option<&str>) -> Result<Duration, ConfigError> {
    const VAR: &str = "STEP_COMPLETE_TIMEOUT_MS";
    let raw = match raw.map(str::trim) {
        None | Some("") => return Ok(Duration::from_millis(DEFAULT_WEBHOOK_TIMEOUT_MS)),
        Some(raw) => raw,
    };
    let ms: u64 = raw.parse().map_err(|_| {
        ConfigError::new(
            VAR,
            format!("must be a whole number of milliseconds, got {raw:?} (--webhook-timeout-ms)"),
        )
    })?;
    let timeout = Duration::from_millis(ms);
    if ms == 0 || timeout >= MAX_WEBHOOK_TIMEOUT {
        return Err(ConfigError::new(
            VAR,
            format!(
                "must be between 1 and {} ms (below the webhook activity's 15 s start-to-close), got {ms} (--webhook-timeout-ms)",
                MAX_WEBHOOK_TIMEOUT.as_millis() - 1
            ),
        ));
    }
    Ok(timeout)
}

/// The decoded key of a `whsec_<base64>` Standard Webhooks secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl SigningSecret {
    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        const VAR: &str = "STEP_COMPLETE_SIGNING_SECRET";
        let encoded = raw
            .trim()
            .strip_prefix(SIGNING_SECRET_PREFIX)
            .ok_or_else(|| {
                ConfigError::new(VAR, "must start with whsec_ (--webhook-signing-secret)")
            })?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| {
                ConfigError::new(
                    VAR,
                    "the part after whsec_ is not valid base64 (--webhook-signing-secret)",
                )
            })?;
        if key.len() < 16 {
            return Err(ConfigError::new(
                VAR,
                "the key must decode to at least 16 bytes (--webhook-signing-secret)",
            ));
        }
        Ok(Self(key))
    }

    pub fn key(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret([REDACTED])")
    }
}

/// Raw store settings.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Step store: sqlite://FILE or postgres://... for shared deployments [default: one SQLite
    /// file per user, whatever the current directory: $XDG_DATA_HOME/stephook/stephook.db, or
    /// ~/.local/share/stephook/stephook.db]
    #[arg(
        long = "database-url",
        env = "STEPHOOK_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<Secret>,
}

impl StoreArgs {
    /// The store at `url`.
    pub fn at(url: impl Into<Secret>) -> Self {
        Self {
            database_url: Some(url.into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: DatabaseUrl,
    /// Whether this is the per-user default (nothing was set): its directory may be created.
    pub is_default: bool,
}

impl StoreArgs {
    pub fn validate(&self) -> Result<StoreConfig, ConfigError> {
        match self.database_url.as_ref().filter(|url| !url.is_empty()) {
            Some(url) => Ok(StoreConfig {
                url: DatabaseUrl::parse(url.expose())?,
                is_default: false,
            }),
            None => Ok(StoreConfig {
                url: DatabaseUrl::parse(&default_database_url()?)?,
                is_default: true,
            }),
        }
    }
}

/// `sqlite://<stephook_data_dir>/stephook.db`, so that every command finds the same store from
/// any directory.
pub fn default_database_url() -> Result<String, ConfigError> {
    let dir = stephook_data_dir().ok_or_else(|| {
        ConfigError::new(
            DatabaseUrl::VAR,
            "no per-user data directory (neither XDG_DATA_HOME nor HOME is set): set \
             STEPHOOK_DATABASE_URL (--database-url)",
        )
    })?;
    Ok(format!(
        "sqlite://{}",
        dir.join(DEFAULT_STORE_FILE).display()
    ))
}

/// stephook's per-user directory: `stephook/` in the platform's data directory
/// (`$XDG_DATA_HOME`, or `~/.local/share` on Linux; `~/Library/Application Support` on macOS).
/// The default store and `stephook dev`'s state and logs live here.
pub fn stephook_data_dir() -> Option<std::path::PathBuf> {
    data_dir().map(|dir| dir.join("stephook"))
}

fn data_dir() -> Option<std::path::PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(std::path::PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    if cfg!(target_os = "macos") {
        return absolute("HOME").map(|home| home.join("Library/Application Support"));
    }
    absolute("XDG_DATA_HOME").or_else(|| absolute("HOME").map(|home| home.join(".local/share")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// A database URL whose password never prints: `Display` and `Debug` show it redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: Secret,
    kind: DatabaseKind,
}

impl DatabaseUrl {
    pub const VAR: &'static str = "STEPHOOK_DATABASE_URL";

    pub fn parse(raw: &str) -> Result<Self, ConfigError> {
        let raw = raw.trim();
        let kind = if raw.starts_with("sqlite:") {
            DatabaseKind::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            DatabaseKind::Postgres
        } else {
            return Err(ConfigError::new(
                Self::VAR,
                "must start with sqlite: or postgres:// (--database-url)",
            ));
        };
        if kind == DatabaseKind::Postgres {
            Url::parse(raw).map_err(|e| {
                ConfigError::new(Self::VAR, format!("not a valid URL ({e}) (--database-url)"))
            })?;
        }
        if kind == DatabaseKind::Sqlite && is_in_memory(raw) {
            // Each connection of the store would open a database of its own (sqlx names one per
            // connection), so reads miss what writes stored; and a restart loses every
            // notification not yet sent.
            return Err(ConfigError::new(
                Self::VAR,
                "an in-memory SQLite database cannot hold the store: it is not shared between \
                 the store's connections and keeps nothing across a restart; give a file, \
                 sqlite://PATH (--database-url)",
            ));
        }
        Ok(Self {
            raw: Secret::new(raw),
            kind,
        })
    }

    pub fn kind(&self) -> DatabaseKind {
        self.kind
    }

    /// The full URL, password included: for the database driver only.
    pub fn expose(&self) -> &str {
        self.raw.expose()
    }

    /// For SQLite, the database file (`None` for PostgreSQL).
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        if self.kind != DatabaseKind::Sqlite {
            return None;
        }
        let (path, _) = sqlite_parts(self.raw.expose())?;
        (!path.is_empty()).then(|| std::path::PathBuf::from(path))
    }
}

/// An SQLite URL's path and query: `sqlite://PATH?QUERY` or `sqlite:PATH?QUERY`.
fn sqlite_parts(raw: &str) -> Option<(&str, &str)> {
    let rest = raw
        .strip_prefix("sqlite://")
        .or_else(|| raw.strip_prefix("sqlite:"))?;
    Some(rest.split_once('?').unwrap_or((rest, "")))
}

/// `sqlite::memory:`, `sqlite://:memory:` or `mode=memory`.
fn is_in_memory(raw: &str) -> bool {
    sqlite_parts(raw).is_some_and(|(path, query)| {
        path == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
    })
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = self.raw.expose();
        match self.kind {
            // An SQLite URL is a path, printed as given, except for query values that look
            // secret (SQLCipher's `key=`, for one).
            DatabaseKind::Sqlite => match raw.split_once('?') {
                Some((path, query)) => write!(f, "{path}?{}", redacted_query(query)),
                None => f.write_str(raw),
            },
            DatabaseKind::Postgres => match Url::parse(raw) {
                Ok(url) => f.write_str(&redacted_url(&url)),
                Err(_) => f.write_str("[unprintable database URL]"),
            },
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// The URL with every secret replaced, safe for logs: the user-info password and the values of
/// query (and fragment) parameters whose name looks secret ([`SECRET_PARAM_MARKERS`]). The user
/// name, host, path and the other parameters stay readable.
pub fn redacted_url(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Fails only for URLs that cannot have a password (no host), which have none to hide.
        let _ = shown.set_password(Some(REDACTED));
    }
    if let Some(query) = url.query() {
        shown.set_query(Some(&redacted_query(query)));
    }
    // A fragment is never sent, but OAuth-style `#access_token=...` still must not be printed.
    if let Some(fragment) = url.fragment() {
        shown.set_fragment(Some(&redacted_query(fragment)));
    }
    shown.to_string()
}

/// `a=1&password=x` → `a=1&password=REDACTED`: each `name=value` pair whose name looks secret
/// keeps its name (so the reader knows it was set) and loses its value. Other pairs are kept
/// byte for byte, encoding included.
fn redacted_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() && is_secret_param(name) => {
                format!("{name}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether a (still percent-encoded) query parameter name looks like it names a secret.
fn is_secret_param(encoded_name: &str) -> bool {
    // Decoded first, so `pass%77ord` or `api+key` cannot slip past the markers.
    let name: String = url::form_urlencoded::parse(encoded_name.as_bytes())
        .map(|(name, _)| name.into_owned())
        .collect();
    let name = name.to_lowercase();
    SECRET_PARAM_MARKERS
        .iter()
        .any(|marker| name.contains(marker))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook_args(url: &str) -> WebhookArgs {
        WebhookArgs {
            url: Some(Secret::new(url)),
            ..Default::default()
        }
    }

    #[test]
    fn empty_or_unset_url_means_not_configured() {
        assert_eq!(WebhookArgs::default().validate().unwrap().url, None);
        assert_eq!(webhook_args("  ").validate().unwrap().url, None);
    }

    #[test]
    fn unusable_values_name_their_variable() {
        let cases: Vec<(WebhookArgs, &str)> = vec![
            (
                webhook_args("ftp://example.test/x"),
                "STEP_COMPLETE_WEBHOOK",
            ),
            (webhook_args("not a url"), "STEP_COMPLETE_WEBHOOK"),
            (
                WebhookArgs {
                    timeout_ms: Some("15000".into()),
                    ..Default::default()
                },
                "STEP_COMPLETE_TIMEOUT_MS",
            ),
            (
                WebhookArgs {
                    timeout_ms: Some("ten".into()),
                    ..Default::default()
                },
                "STEP_COMPLETE_TIMEOUT_MS",
            ),
            (
                WebhookArgs {
                    timeout_ms: Some("0".into()),
                    ..Default::default()
                },
                "STEP_COMPLETE_TIMEOUT_MS",
            ),
            (
                WebhookArgs {
                    signing_secret: Some(Secret::new("sk_live_abcdef")),
                    ..Default::default()
                },
                "STEP_COMPLETE_SIGNING_SECRET",
            ),
            (
                WebhookArgs {
                    signing_secret: Some(Secret::new("whsec_!!!not-base64!!!")),
                    ..Default::default()
                },
                "STEP_COMPLETE_SIGNING_SECRET",
            ),
        ];
        for (args, var) in cases {
            let err = args.validate().expect_err("should be rejected");
            assert_eq!(err.var, var);
            assert!(err.to_string().starts_with(var), "{err}");
        }
        let err = StoreArgs {
            database_url: Some(Secret::new("mysql://root@localhost/x")),
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.var, "STEPHOOK_DATABASE_URL");
    }

    #[test]
    fn errors_never_quote_secrets() {
        let err = SigningSecret::parse("whsec_###topsecret###").unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
        let err = webhook_args("http//user:topsecret@host")
            .validate()
            .unwrap_err();
        assert!(!err.to_string().contains("topsecret"));
    }

    #[test]
    fn good_values_are_accepted() {
        let config = WebhookArgs {
            url: Some(Secret::new("https://hooks.example.test/step")),
            key: Some(Secret::new("k")),
            signing_secret: Some(Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
            timeout_ms: Some("14999".into()),
        }
        .validate()
        .unwrap();
        assert_eq!(config.timeout, Duration::from_millis(14_999));
        assert!(config.signing_secret.is_some());
        assert_eq!(
            WebhookArgs::default().validate().unwrap().timeout,
            Duration::from_millis(DEFAULT_WEBHOOK_TIMEOUT_MS)
        );
    }

    #[test]
    fn a_webhook_url_with_user_info_is_refused_without_quoting_it() {
        for url in [
            "http://alice:s3cr3t-pw@hooks.example.test/x",
            "https://alice@hooks.example.test/",
            "http://:s3cr3t-pw@hooks.example.test/",
        ] {
            let err = webhook_args(url).validate().expect_err(url);
            assert_eq!(err.var, "STEP_COMPLETE_WEBHOOK");
            let shown = err.to_string();
            assert!(shown.starts_with("STEP_COMPLETE_WEBHOOK"), "{shown}");
            assert!(shown.contains("STEP_COMPLETE_KEY"), "{shown}");
            assert!(!shown.contains("s3cr3t-pw"), "{shown}");
            assert!(!shown.contains("alice"), "{shown}");
        }
    }

    fn shown(url: &str) -> String {
        redacted_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn redacted_urls_hide_passwords_and_secret_query_values() {
        assert_eq!(
            shown("postgres://u:pw@h/db?password=secret&sslmode=require"),
            "postgres://u:REDACTED@h/db?password=REDACTED&sslmode=require"
        );
        assert_eq!(
            shown("https://h/hook?token=abc&v=2"),
            "https://h/hook?token=REDACTED&v=2"
        );
        assert_eq!(
            shown("https://h/x?X-Amz-Signature=f00&API_KEY=k1&sslpassword=p&pass%77ord=q&n=1"),
            "https://h/x?X-Amz-Signature=REDACTED&API_KEY=REDACTED&sslpassword=REDACTED&pass%77ord=REDACTED&n=1"
        );
        assert_eq!(
            shown("https://h/cb#access_token=t0k&state=s"),
            "https://h/cb#access_token=REDACTED&state=s"
        );
    }

    #[test]
    fn redacted_urls_keep_everything_that_is_not_secret() {
        for url in [
            "https://hooks.example.test/step",
            "https://hooks.example.test/step?tenant=a&retry=&flag",
            "postgres://app@127.0.0.1:5432/db?sslmode=require&application_name=stephook",
        ] {
            assert_eq!(shown(url), url);
        }
        // A secret-looking name without a value has nothing to hide.
        assert_eq!(shown("https://h/?token=&token"), "https://h/?token=&token");
    }

    #[test]
    fn database_urls_print_redacted() {
        let db =
            DatabaseUrl::parse("postgres://u:pw@h/db?password=secret&sslmode=require").unwrap();
        assert_eq!(
            db.to_string(),
            "postgres://u:REDACTED@h/db?password=REDACTED&sslmode=require"
        );
        assert!(!format!("{db:?}").contains("secret"));
        let sqlite =
            DatabaseUrl::parse("sqlite://data/steps.db?key=sqlcipher-key&mode=rwc").unwrap();
        assert_eq!(
            sqlite.to_string(),
            "sqlite://data/steps.db?key=REDACTED&mode=rwc"
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://stephook.db")
                .unwrap()
                .to_string(),
            "sqlite://stephook.db"
        );
    }

    #[test]
    fn the_default_store_is_per_user_whatever_the_directory() {
        let args = StoreArgs::default();
        let config = args.validate().expect("a default");
        assert!(config.is_default);
        let path = config.url.sqlite_path().expect("an SQLite file");
        assert!(path.is_absolute(), "{path:?}");
        assert!(path.ends_with(DEFAULT_STORE_FILE), "{path:?}");
        let given = StoreArgs::at("sqlite://x/y.db?mode=rwc")
            .validate()
            .unwrap();
        assert!(!given.is_default);
        assert_eq!(given.url.sqlite_path(), Some("x/y.db".into()));
    }

    #[test]
    fn an_in_memory_sqlite_store_is_refused_naming_the_setting() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite:x.db?cache=shared&mode=memory",
        ] {
            let error = DatabaseUrl::parse(url).expect_err(url).to_string();
            assert!(error.contains("STEPHOOK_DATABASE_URL"), "{error}");
            assert!(error.contains("in-memory"), "{error}");
        }
        assert!(DatabaseUrl::parse("sqlite://memory.db").is_ok());
    }

    #[test]
    fn debug_and_display_hide_secrets() {
        let config = WebhookArgs {
            url: Some(Secret::new("https://hooks.example.test/step?token=urlpass")),
            key: Some(Secret::new("bearer-key-value")),
            signing_secret: Some(Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
            timeout_ms: None,
        };
        let shown = format!("{config:?} {:?}", config.validate().unwrap());
        for secret in [
            "urlpass",
            "bearer-key-value",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let db = DatabaseUrl::parse("postgres://app:dbpass@127.0.0.1/db").unwrap();
        assert!(!format!("{db} {db:?}").contains("dbpass"));
        assert!(format!("{db}").contains("127.0.0.1"));
    }
}

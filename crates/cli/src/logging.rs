//! One logging setup for the whole process: human-readable lines on stderr by default, JSON
//! lines with `STEPHOOK_LOG_FORMAT=json` (`--log-format`); `RUST_LOG` (`--log-filter`) filters,
//! default `info`. An unusable value of either stops the process, naming it.

use clap::Args;
use std::io::IsTerminal as _;
use stephook_core::ConfigError;
use tracing_subscriber::EnvFilter;

pub const LOG_FORMAT_VAR: &str = "STEPHOOK_LOG_FORMAT";
pub const LOG_FILTER_VAR: &str = "RUST_LOG";
const DEFAULT_FILTER: &str = "info";

/// The logging flags every command takes.
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// Log lines as `text` (default) or `json`.
    #[arg(long = "log-format", env = LOG_FORMAT_VAR, global = true)]
    pub format: Option<String>,
    /// Which logs to show, as tracing's filter syntax (`info`, `warn,stephook=debug`, ...).
    #[arg(long = "log-filter", env = LOG_FILTER_VAR, global = true)]
    pub filter: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

/// Whether the process logs JSON lines (then everything it says on stderr must be JSON too).
pub fn is_json(args: &LogArgs) -> bool {
    args.format
        .as_deref()
        .is_some_and(|format| format.trim().eq_ignore_ascii_case("json"))
}

/// Where the logs go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Everything the filter lets through, on stderr.
    Stderr,
    /// `stephook dev`: everything to this file; on the terminal, beside the receiver's lines,
    /// only stephook's own warnings and errors, one short line each.
    DevFile(std::path::PathBuf),
}

/// Checks the settings, then installs the subscriber.
pub fn init(args: &LogArgs, output: &Output) -> Result<(), ConfigError> {
    let format = match args.format.as_deref().map(str::trim) {
        None | Some("") => Format::Text,
        Some(text) if text.eq_ignore_ascii_case("text") => Format::Text,
        Some(json) if json.eq_ignore_ascii_case("json") => Format::Json,
        Some(other) => {
            return Err(ConfigError::new(
                LOG_FORMAT_VAR,
                format!("{other:?} is not a log format: use text or json (--log-format)"),
            ));
        }
    };
    let filter = match args.filter.as_deref().map(str::trim) {
        None | Some("") => EnvFilter::new(DEFAULT_FILTER),
        Some(text) => EnvFilter::try_new(text).map_err(|e| {
            ConfigError::new(
                LOG_FILTER_VAR,
                format!("{text:?} is not a log filter ({e}); e.g. info or warn,stephook=debug (--log-filter)"),
            )
        })?,
    };
    if let Output::DevFile(path) = output {
        return init_dev(filter, path);
    }
    // Colour codes only for a terminal: in a file or a log collector they are noise that
    // breaks grep.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests that call into the binary's code) is not an error worth failing on.
    let _ = match format {
        Format::Json => builder.json().flatten_event(true).try_init(),
        Format::Text => builder.try_init(),
    };
    Ok(())
}

fn init_dev(filter: EnvFilter, path: &std::path::Path) -> Result<(), ConfigError> {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            ConfigError::new(
                LOG_FILTER_VAR,
                format!("cannot write the dev log {}: {e}", path.display()),
            )
        })?;
    let to_file = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .with_filter(filter);
    let to_terminal = tracing_subscriber::fmt::layer()
        .compact()
        .without_time()
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            *meta.level() <= tracing::Level::WARN && meta.target().starts_with("stephook")
        }));
    let _ = tracing_subscriber::registry()
        .with(to_file)
        .with(to_terminal)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusable_values_name_their_variable() {
        let bad_format = LogArgs {
            format: Some("jsno".into()),
            filter: None,
        };
        assert_eq!(
            init(&bad_format, &Output::Stderr).unwrap_err().var,
            LOG_FORMAT_VAR
        );
        let bad_filter = LogArgs {
            format: None,
            filter: Some("info,=[".into()),
        };
        assert_eq!(
            init(&bad_filter, &Output::Stderr).unwrap_err().var,
            LOG_FILTER_VAR
        );
    }
}

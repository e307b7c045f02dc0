//! One logging setup for the whole process: human-readable lines on stderr by default, JSON
//! lines with `STEPHOOK_LOG_FORMAT=json`; `RUST_LOG` filters (default `info`).

use std::io::IsTerminal as _;
use tracing_subscriber::EnvFilter;

pub const LOG_FORMAT_VAR: &str = "STEPHOOK_LOG_FORMAT";
const DEFAULT_FILTER: &str = "info";

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colour codes only for a terminal: in a file or a log collector they are noise that
    // breaks grep.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let json = std::env::var(LOG_FORMAT_VAR).is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // A second init (tests that call into the binary's code) is not an error worth failing on.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

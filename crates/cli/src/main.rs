//! The `stephook` binary: parse, set up logging, run the command, exit non-zero on error.

use clap::Parser;
use stephook::cli::Cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    stephook::logging::init();
    match stephook::commands::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

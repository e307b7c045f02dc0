//! The `stephook` binary: parse, set up logging, run the command, exit non-zero on error.

use clap::Parser;
use stephook::cli::{Cli, Command};
use stephook::logging::Output;

/// jemalloc instead of glibc's malloc: the worker spends 3 to 6 % less CPU per step with it, for
/// about 2 MB more at its peak (docs/benchmarks.md, "The allocator"). Its settings are in
/// `.cargo/config.toml`.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match &cli.command {
        Command::Worker(args) if args.worker_threads == 1 => {
            tokio::runtime::Builder::new_current_thread()
        }
        Command::Worker(args) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(usize::from(args.worker_threads));
            builder
        }
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> std::process::ExitCode {
    let output = match &cli.command {
        // `dev` shares its terminal with the receiver: full logs go to a file it names.
        Command::Dev(_) => match stephook::temporal::dev::log_file() {
            Ok(path) => Output::DevFile(path),
            Err(error) => {
                eprintln!("error: {}", stephook::report::chain(&error));
                return std::process::ExitCode::FAILURE;
            }
        },
        _ => Output::Stderr,
    };
    if let Err(error) = stephook::logging::init(&cli.log, &output) {
        eprintln!("error: {error}");
        return std::process::ExitCode::FAILURE;
    }
    let json = stephook::logging::is_json(&cli.log);
    match stephook::commands::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let said = stephook::report::chain(&error);
            if json {
                tracing::error!(error = %said, "stephook stopped");
            } else {
                eprintln!("error: {said}");
            }
            stephook::report::exit_code(&error)
        }
    }
}

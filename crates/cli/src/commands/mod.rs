//! One module per command; this one only routes.

mod deliveries;
mod direct_run;
mod steps;

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) if args.direct => direct_run::run(args).await,
        Command::Run(_) => anyhow::bail!("Temporal mode is not wired yet; use --direct"),
        Command::Steps(command) => steps::run(command).await,
        Command::Deliveries(command) => deliveries::run(command).await,
        Command::Receive(args) => crate::receive::run(args).await,
    }
}

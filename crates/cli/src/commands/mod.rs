//! One module per command; this one only routes.

mod deliveries;
mod direct_run;
mod serve;
mod settle;
mod steps;

use crate::cli::{BenchCommand, Cli, Command};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Worker(args) => crate::temporal::worker(args).await,
        Command::Dev(args) => crate::temporal::dev(args).await,
        Command::Run(args) if args.direct => direct_run::run(args).await,
        Command::Run(args) => {
            crate::temporal::run_workflow(crate::temporal::RunWorkflowOptions {
                agent_id: args.agent_id,
                run_id: args.run_id,
                messages: args.messages,
                steps: args.steps,
                model: args.model,
                system: args.system,
                tools: (!args.tools.is_empty()).then_some(args.tools),
                no_wait: args.no_wait,
                task_queue: args.task_queue,
                temporal: args.temporal,
                ui_url: args.temporal_ui,
                store: Some(args.store),
            })
            .await
        }
        Command::Cancel(args) => crate::temporal::cancel(args).await,
        Command::Steps(command) => steps::run(command).await,
        Command::Deliveries(command) => deliveries::run(command).await,
        Command::Receive(args) => crate::receive::run(args).await,
        Command::Serve(args) => serve::run(args).await,
        Command::Bench(BenchCommand::Temporal(args)) => crate::bench::temporal(args).await,
    }
}

//! One module per command; each takes its parsed arguments and returns the
//! process exit code.

mod agent;
mod context;
mod machine;
mod provider;
mod read_config;
mod ssh;
mod workspace;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Up(args) => workspace::up(args),
        Command::Stop(args) => workspace::stop(args),
        Command::Delete(args) => workspace::delete(args),
        Command::Status(args) => workspace::status(args),
        Command::List(args) => workspace::list(args),
        Command::Logs(args) => workspace::logs(args),
        Command::Ssh(args) => ssh::run(args),
        Command::Build(args) => workspace::build(args),
        Command::Provider(cmd) => provider::run(cmd),
        Command::Context(cmd) => context::run(cmd),
        Command::Machine(cmd) => machine::run(cmd),
        Command::ReadConfig(args) => read_config::run(args),
        Command::Agent(cmd) => agent::run(cmd),
        Command::Helper(cmd) => agent::helper(cmd),
    }
}

/// Prints `value` as one line of JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

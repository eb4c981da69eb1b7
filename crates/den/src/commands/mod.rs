//! One module per command; each takes its parsed arguments and returns the
//! process exit code.

mod agent;
mod context;
mod feature;
mod ide;
mod machine;
mod ports;
mod provider;
mod read_config;
mod ssh;
mod ui;
mod workspace;

use crate::cli::{Cli, Command};
use crate::settings::Settings;

pub fn run(cli: Cli, settings: &Settings) -> anyhow::Result<i32> {
    match cli.command {
        Command::Up(args) => workspace::up(settings, args),
        Command::Stop(args) => workspace::stop(settings, args),
        Command::Delete(args) => workspace::delete(settings, args),
        Command::Status(args) => workspace::status(settings, args),
        Command::List(args) => workspace::list(settings, args),
        Command::Logs(args) => workspace::logs(settings, args),
        Command::Ssh(args) => ssh::run(settings, args),
        Command::Build(args) => workspace::build(settings, args),
        Command::Provider(cmd) => provider::run(settings, cmd),
        Command::Context(cmd) => context::run(settings, cmd),
        Command::Machine(cmd) => machine::run(settings, cmd),
        Command::ReadConfig(args) => read_config::run(settings, args),
        Command::Open { id, ide, ide_options } => ide::open(settings, &id, ide.as_deref(), &ide_options),
        Command::Ide(cmd) => ide::run(settings, cmd),
        Command::Ports(args) => ports::list(settings, args),
        Command::Forward(args) => ports::forward(settings, args),
        Command::Ui(args) => ui::run(settings, args),
        Command::ForwardDaemon { id } => Ok(den_forward::daemon::run(&settings.den()?, &id)),
        Command::Feature(cmd) => feature::run(cmd),
        Command::Man => {
            use clap::CommandFactory;
            use std::io::Write;
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            std::io::stdout().write_all(&page)?;
            Ok(crate::exit::OK)
        }
        Command::Completion { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            // Into memory first: the generator panics on a write error, and
            // `den completion bash | head` is not a failure.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "den", &mut script);
            std::io::stdout().write_all(&script)?;
            Ok(crate::exit::OK)
        }
        Command::Agent(cmd) => agent::run(cmd),
        Command::Helper(cmd) => agent::helper(cmd),
    }
}

/// Prints `value` as one line of JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}

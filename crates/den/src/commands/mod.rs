//! One module per command; each takes its parsed arguments and returns the
//! process exit code.

mod read_config;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::ReadConfig(args) => read_config::run(args),
    }
}

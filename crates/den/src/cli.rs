//! The command line: only clap types and help text, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "den",
    version,
    about = "Reproducible dev workspaces on any infrastructure"
)]
pub struct Cli {
    /// Show every external command den runs, and more.
    #[arg(long, global = true)]
    pub debug: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a project's devcontainer configuration with its variables resolved.
    ReadConfig(ReadConfigArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// For people.
    #[default]
    Text,
    /// One JSON document on stdout, for scripts.
    Json,
}

#[derive(Debug, Args)]
pub struct ReadConfigArgs {
    /// The project folder.
    #[arg(default_value = ".")]
    pub folder: PathBuf,
    /// The devcontainer.json to use, relative to FOLDER.
    #[arg(long, value_name = "PATH")]
    pub devcontainer_path: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub output: Output,
}

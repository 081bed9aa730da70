//! `herald config`: inspecting the configuration.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::docs;

/// `herald config` arguments.
#[derive(Debug, Args)]
pub struct ConfigCommand {
    /// What to show.
    #[command(subcommand)]
    pub what: ConfigWhat,
}

/// What `herald config` shows.
#[derive(Debug, Subcommand)]
pub enum ConfigWhat {
    /// Every key with its environment variable, Reverb alias, default and meaning.
    Env,
    /// The same as Markdown: docs/configuration.md.
    Markdown,
}

/// Prints what was asked.
pub fn run(command: ConfigCommand) -> ExitCode {
    let text = match command.what {
        ConfigWhat::Env => docs::env_table(),
        ConfigWhat::Markdown => docs::markdown(),
    };
    #[allow(
        clippy::print_stdout,
        reason = "printing the table is this command's job"
    )]
    {
        print!("{text}");
    }
    ExitCode::SUCCESS
}

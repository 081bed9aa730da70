//! `herald config`: inspecting the configuration.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::config::keys;

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
    /// Every key with its environment variable and Reverb alias.
    Env,
}

/// Prints what was asked.
pub fn run(command: ConfigCommand) -> ExitCode {
    match command.what {
        ConfigWhat::Env => {
            #[allow(
                clippy::print_stdout,
                reason = "printing the table is this command's job"
            )]
            {
                print!("{}", keys::describe());
            }
        }
    }
    ExitCode::SUCCESS
}

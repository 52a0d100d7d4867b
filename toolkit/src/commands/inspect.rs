//! `ratio inspect` / `ratio-inspect`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    pub model: std::path::PathBuf,
}

pub fn run(_args: InspectArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}

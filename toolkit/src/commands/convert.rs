//! `ratio convert` / `ratio-convert`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    pub model: std::path::PathBuf,
}

pub fn run(_args: ConvertArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not yet")
}

//! `ratio report RUN_DIR`: summary, Markdown, self-contained HTML and SVG/PNG figures from a sweep's records.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;

use crate::sweep::render;

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// A `ratio sweep` run directory (shard records are merged).
    pub run_dir: PathBuf,
    /// Significance level for the paired tests.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
}

pub fn run(a: ReportArgs) -> Result<ExitCode> {
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        anyhow::bail!("--alpha {} is not in (0, 1)", a.alpha);
    }
    let out = render::write_report(&a.run_dir, a.alpha)?;
    for c in &out.conclusions {
        crate::outln!("{c}");
    }
    for u in &out.untrusted {
        crate::status!("warning: record not used: {u}");
    }
    crate::outln!("report: {}", out.html.display());
    crate::outln!("markdown: {}", out.markdown.display());
    crate::outln!("summary: {}", out.summary.display());
    Ok(ExitCode::SUCCESS)
}

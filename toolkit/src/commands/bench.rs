//! `ratio bench`: latency and throughput of one or more models on ONNX Runtime, with batch and thread sweeps,
//! interleaved paired comparisons, an optional per-op profile, and provenance with every number.

use std::path::PathBuf;
use std::process::ExitCode;

use reports::schema::{FileRef, Record};

use crate::analysis::bench::{BenchPlan, BenchReport, bench};
use crate::runtime::{Device, OptLevel};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Models to time. With several, each iteration runs every model once (the order rotating), and each model
    /// is compared with the first through per-iteration paired ratios.
    #[arg(required = true)]
    pub models: Vec<PathBuf>,
    /// Untimed runs per model before measuring, for each batch and thread setting.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Timed iterations (default 100 when --duration is not given).
    #[arg(long, conflicts_with = "duration")]
    pub iters: Option<usize>,
    /// Time for this many seconds per batch and thread setting instead of a fixed count.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Batch sizes to sweep, e.g. 1,8,32 (fill the symbolic batch dimension; a static one must match).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub batch: Vec<usize>,
    /// Intra-op thread counts to sweep, e.g. 1,2 (0 = ONNX Runtime's default).
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub threads: Vec<usize>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    #[arg(long, value_enum, default_value_t = OptLevel::All)]
    pub opt_level: OptLevel,
    /// Seed of the random inputs and of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also run ONNX Runtime's profiler (in a separate, untimed pass) and summarise time by op type and node.
    #[arg(long)]
    pub profile: bool,
    /// Runs summarised in the profiling pass (after --warmup runs that are profiled but left out).
    #[arg(long, default_value_t = 20)]
    pub profile_iters: usize,
    /// Nodes listed in the profile summary.
    #[arg(long, default_value_t = 10)]
    pub profile_top: usize,
    /// Keep the raw profiler traces in this folder (default: a temporary folder, removed after summarising).
    #[arg(long)]
    pub profile_dir: Option<PathBuf>,
    /// Bootstrap resamples for the CI of paired ratios.
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,
    /// The JSON record to FILE, or to stdout with `-` (the table then goes to stderr).
    #[command(flatten)]
    pub record: super::args::OutputArgs,
}

impl BenchArgs {
    pub fn plan(&self) -> BenchPlan {
        BenchPlan {
            models: self.models.clone(),
            warmup: self.warmup,
            iters: self.iters,
            duration: self.duration,
            batch: self.batch.clone(),
            threads: self.threads.clone(),
            device: self.device,
            opt_level: self.opt_level,
            seed: self.seed,
            profile: self.profile,
            profile_iters: self.profile_iters,
            profile_top: self.profile_top,
            profile_dir: self.profile_dir.clone(),
            bootstrap: self.bootstrap,
        }
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let report = bench(&args.plan())?;
    let table = render_table(&report);
    let record = record(&report)?;
    if args.record.to_stdout() {
        crate::printer::status_text(&table);
    } else {
        crate::printer::emit(&table)?;
    }
    args.record.write(&record)?;
    Ok(ExitCode::SUCCESS)
}

/// The `ratio/bench/v1` record: the body, the seed pinned, and every model file by sha256.
pub fn record(r: &BenchReport) -> anyhow::Result<Record> {
    let provenance = r.provenance.clone().with_extra("seed", r.body.settings.seed);
    let mut rec = crate::commands::record(&r.body, provenance)?;
    rec.inputs = r
        .body
        .models
        .iter()
        .filter_map(|m| {
            m.sha256.as_ref().map(|sha| FileRef {
                path: m.path.clone(),
                sha256: sha.clone(),
            })
        })
        .collect();
    Ok(rec)
}

fn short(path: &str) -> &str {
    std::path::Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(path)
}

/// The human-readable report: one line per model and setting, then comparisons, overhead and profiles.
pub fn render_table(r: &BenchReport) -> String {
    use std::fmt::Write as _;
    let p = &r.provenance;
    let b = &r.body;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "ratio bench · ONNX Runtime {} · {} · {} · seed {}",
        p.ort_version.as_deref().unwrap_or("?"),
        p.device_label(),
        p.machine.describe(),
        b.settings.seed
    );
    for m in &b.models {
        let _ = writeln!(
            s,
            "  {}  sha256 {}",
            m.path,
            m.sha256.as_deref().map(|h| &h[..12.min(h.len())]).unwrap_or("?")
        );
    }
    let _ = writeln!(
        s,
        "{:<28} {:>5} {:>3} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8} {:>11}",
        "model (ms)", "batch", "thr", "iters", "min", "p50", "p90", "p99", "mean", "std", "items/s"
    );
    for g in &b.runs {
        for m in &g.results {
            let l = &m.latency_ms;
            let _ = writeln!(
                s,
                "{:<28} {:>5} {:>3} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8.3} {:>11.1}",
                short(&m.model),
                g.batch,
                g.threads,
                l.n,
                l.min,
                l.p50,
                l.p90,
                l.p99,
                l.mean,
                l.std,
                m.throughput_per_s
            );
        }
        for c in &g.comparisons {
            let q = &c.ratio;
            let _ = writeln!(
                s,
                "  {} / {}: median ratio {:.3} [{:.0}% CI {:.3}, {:.3}] over {} paired iterations",
                short(&c.model),
                short(&c.baseline),
                q.median,
                q.level * 100.0,
                q.ci_low,
                q.ci_high,
                q.n
            );
        }
        let _ = writeln!(
            s,
            "  overhead outside Session::run: {:.3}% of {:.3} s ({:.1} µs per run)",
            g.overhead_fraction * 100.0,
            g.loop_s,
            g.overhead_us_per_run
        );
        for prof in &g.profiles {
            let ps = &prof.summary;
            let _ = writeln!(
                s,
                "  profile {} (batch {}, {} runs, kernels {:.1}% of run time):",
                short(&prof.model),
                g.batch,
                ps.runs,
                if ps.run_total_us > 0.0 {
                    100.0 * ps.kernel_total_us / ps.run_total_us
                } else {
                    0.0
                }
            );
            let ops: Vec<String> = ps
                .by_op
                .iter()
                .map(|o| format!("{} {:.1}%", o.op_type, o.fraction * 100.0))
                .collect();
            let _ = writeln!(s, "    by op: {}", ops.join(", "));
            let eps: Vec<String> = ps
                .by_provider
                .iter()
                .map(|p| format!("{} {:.1}% ({} nodes)", p.provider, p.fraction * 100.0, p.nodes))
                .collect();
            let _ = writeln!(s, "    by execution provider: {}", eps.join(", "));
            for n in &ps.top_nodes {
                let _ = writeln!(
                    s,
                    "    {:>6.1}%  {:>9.1} µs/call  {:<14} {}",
                    n.fraction * 100.0,
                    n.mean_us,
                    n.op_type,
                    n.node
                );
            }
        }
    }
    s
}

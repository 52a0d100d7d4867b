//! `ratio bench`: latency and throughput of one or more models on ONNX Runtime, with batch and thread sweeps,
//! interleaved paired comparisons, an optional per-op profile, and provenance with every number.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::analysis::latency::{PairedRatio, Summary, paired_ratio};
use crate::provenance::Provenance;
use crate::runtime::{
    Device, ElemType, Feed, OptLevel, Prepared, ProfileSummary, Runner, RuntimeConfig, TensorSpec, fmt_dims,
    summarize_profile,
};

/// Version of the JSON layout below; bump when a field changes meaning.
pub const SCHEMA: &str = "ratio.bench/1";

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
    /// Print the JSON report to stdout (the table then goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Write the JSON report to this file (atomically).
    #[arg(long)]
    pub json_out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub schema: &'static str,
    pub provenance: Provenance,
    pub settings: Settings,
    pub models: Vec<ModelInfo>,
    pub runs: Vec<RunGroup>,
}

#[derive(Debug, Serialize)]
pub struct Settings {
    pub warmup: usize,
    pub iters: Option<usize>,
    pub duration_s: Option<f64>,
    pub batches: Vec<usize>,
    pub threads: Vec<usize>,
    pub opt_level: OptLevel,
    pub seed: u64,
    /// How the inputs were made (stands in for the preprocessing fingerprint of real data).
    pub inputs: String,
    /// How the models share iterations.
    pub schedule: String,
    /// What a latency sample covers.
    pub timing: String,
}

#[derive(Debug, Serialize)]
pub struct ModelInfo {
    pub path: String,
    pub sha256: Option<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// One batch × thread setting: every model measured in the same interleaved loop.
#[derive(Debug, Serialize)]
pub struct RunGroup {
    pub batch: usize,
    /// Requested intra-op threads (0 = ONNX Runtime's default).
    pub threads: usize,
    pub iterations: usize,
    pub results: Vec<ModelResult>,
    /// Each model after the first against the first, paired per iteration.
    pub comparisons: Vec<Comparison>,
    /// Wall time of the timed loop.
    pub loop_s: f64,
    /// Time inside ONNX Runtime's run calls.
    pub run_s: f64,
    /// (loop − run) / loop: the tool's own share of the measured time.
    pub overhead_fraction: f64,
    pub overhead_us_per_run: f64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<ModelProfile>,
}

#[derive(Debug, Serialize)]
pub struct ModelResult {
    pub model: String,
    pub sha256: Option<String>,
    pub latency_ms: Summary,
    pub throughput_per_s: f64,
    /// Every sample, ms, in iteration order (for re-analysis).
    pub samples_ms: Vec<f64>,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub model: String,
    pub baseline: String,
    /// Median of per-iteration latency(model) / latency(baseline), with a bootstrap CI.
    pub ratio: PairedRatio,
}

#[derive(Debug, Serialize)]
pub struct ModelProfile {
    pub model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    pub summary: ProfileSummary,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let report = bench(&args)?;
    let table = render_table(&report);
    if args.json {
        eprint!("{table}");
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print!("{table}");
        std::io::stdout().flush()?;
    }
    if let Some(path) = &args.json_out {
        let mut bytes = serde_json::to_vec_pretty(&report)?;
        bytes.push(b'\n');
        converters::ir::model::write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Measure everything `args` asks for.
pub fn bench(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    validate(args)?;
    let iters = match (args.iters, args.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(100),
    };
    let provenance = Provenance::collect(args.device)?;
    let mut models = Vec::new();
    let mut runs = Vec::new();
    for &threads in &args.threads {
        let cfg = RuntimeConfig {
            device: args.device,
            intra_threads: (threads > 0).then_some(threads),
            opt_level: args.opt_level,
            ..RuntimeConfig::default()
        };
        let mut runners = args
            .models
            .iter()
            .map(|p| Runner::from_path(p, &cfg).with_context(|| format!("loading {} for benchmarking", p.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if models.is_empty() {
            models = runners.iter().map(model_info).collect();
        }
        for &batch in &args.batch {
            let prepared = runners
                .iter()
                .enumerate()
                .map(|(i, r)| random_inputs(r, batch, args.seed.wrapping_add(i as u64)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut group = measure(&mut runners, &prepared, args, iters, batch, threads)?;
            if args.profile {
                group.profiles = profile_pass(args, &cfg, batch, threads)?;
            }
            runs.push(group);
        }
    }
    Ok(BenchReport {
        schema: SCHEMA,
        provenance,
        settings: Settings {
            warmup: args.warmup,
            iters,
            duration_s: args.duration,
            batches: args.batch.clone(),
            threads: args.threads.clone(),
            opt_level: args.opt_level,
            seed: args.seed,
            inputs: format!(
                "random: f32/f16 uniform [0,1), i64 uniform [0,10); ChaCha8 seeded with seed + model index (seed {})",
                args.seed
            ),
            schedule: "each iteration runs every model once, starting with model (iteration mod count)".into(),
            timing: "wall time of one Session::run call on prepared inputs; outputs dropped unread".into(),
        },
        models,
        runs,
    })
}

fn validate(args: &BenchArgs) -> anyhow::Result<()> {
    if args.batch.contains(&0) {
        bail!("--batch: batch sizes must be at least 1 (got {:?})", args.batch);
    }
    if args.iters == Some(0) {
        bail!("--iters must be at least 1");
    }
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        bail!("--duration must be a positive number of seconds (got {d})");
    }
    if args.batch.is_empty() || args.threads.is_empty() {
        bail!("--batch and --threads need at least one value");
    }
    Ok(())
}

fn model_info(r: &Runner) -> ModelInfo {
    ModelInfo {
        path: r.name().to_string(),
        sha256: r.sha256().map(str::to_string),
        inputs: r.inputs().iter().map(ToString::to_string).collect(),
        outputs: r.outputs().iter().map(ToString::to_string).collect(),
    }
}

/// Shape of `spec` for `batch`: a symbolic first dimension takes the batch; a static one must equal it on the
/// data input (`data`: the model's first input). Other static inputs keep their shapes, so a train-step graph
/// (parameters and optimizer state as inputs) can be timed at its built batch.
fn input_shape(model: &str, spec: &TensorSpec, batch: usize, data: bool) -> anyhow::Result<Vec<usize>> {
    let mut shape = Vec::with_capacity(spec.dims.len());
    for (i, d) in spec.dims.iter().enumerate() {
        match (i, d) {
            (0, None) => shape.push(batch),
            (0, Some(b)) if *b == batch as i64 || !data => shape.push(*b as usize),
            (0, Some(b)) => bail!(
                "{model}: input '{}' {} has a static batch dimension of {b}; --batch {batch} cannot be used \
                 (re-export the model with a symbolic batch, or bench with --batch {b})",
                spec.name,
                fmt_dims(&spec.dims)
            ),
            (_, Some(d)) if *d >= 0 => shape.push(*d as usize),
            _ => bail!(
                "{model}: input '{}' {} has a symbolic dimension {i} besides the batch; bench needs the other \
                 dimensions static",
                spec.name,
                fmt_dims(&spec.dims)
            ),
        }
    }
    Ok(shape)
}

fn random_inputs(r: &Runner, batch: usize, seed: u64) -> anyhow::Result<Prepared> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut f32s: Vec<(String, ArrayD<f32>)> = Vec::new();
    let mut f16s: Vec<(String, ArrayD<half::f16>)> = Vec::new();
    let mut i64s: Vec<(String, ArrayD<i64>)> = Vec::new();
    for (i, spec) in r.inputs().iter().enumerate() {
        let shape = IxDyn(&input_shape(r.name(), spec, batch, i == 0)?);
        match spec.elem {
            ElemType::F32 => f32s.push((spec.name.clone(), ArrayD::from_shape_fn(shape, |_| rng.random()))),
            ElemType::F16 => f16s.push((
                spec.name.clone(),
                ArrayD::from_shape_fn(shape, |_| half::f16::from_f32(rng.random())),
            )),
            ElemType::I64 => i64s.push((
                spec.name.clone(),
                ArrayD::from_shape_fn(shape, |_| rng.random_range(0..10)),
            )),
            ref other => bail!(
                "{}: input '{}' has element type {other}; bench can feed f32, f16 and i64 inputs",
                r.name(),
                spec.name
            ),
        }
    }
    let mut feeds: Vec<(&str, Feed<'_>)> = Vec::new();
    feeds.extend(f32s.iter().map(|(n, a)| (n.as_str(), Feed::F32(a.view()))));
    feeds.extend(f16s.iter().map(|(n, a)| (n.as_str(), Feed::F16(a.view()))));
    feeds.extend(i64s.iter().map(|(n, a)| (n.as_str(), Feed::I64(a.view()))));
    Ok(r.prepare(&feeds)?)
}

fn measure(
    runners: &mut [Runner],
    prepared: &[Prepared],
    args: &BenchArgs,
    iters: Option<usize>,
    batch: usize,
    threads: usize,
) -> anyhow::Result<RunGroup> {
    let n = runners.len();
    for _ in 0..args.warmup {
        for (r, p) in runners.iter_mut().zip(prepared) {
            r.time_prepared(p)?;
        }
    }
    let budget = args.duration.map(Duration::from_secs_f64);
    let cap = iters.unwrap_or(1024);
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(cap); n];
    let mut run_total = Duration::ZERO;
    let mut i = 0usize;
    let start = Instant::now();
    loop {
        let done = match (iters, budget) {
            (Some(k), _) => i >= k,
            (None, Some(b)) => i > 0 && start.elapsed() >= b,
            (None, None) => true,
        };
        if done {
            break;
        }
        for k in 0..n {
            // Rotating the order cancels any advantage of always running first (warm caches, turbo state).
            let m = (i + k) % n;
            let t = runners[m].time_prepared(&prepared[m])?;
            run_total += t;
            samples[m].push(t.as_secs_f64() * 1e3);
        }
        i += 1;
    }
    let loop_time = start.elapsed();
    let loop_s = loop_time.as_secs_f64();
    let run_s = run_total.as_secs_f64();
    let results = runners
        .iter()
        .zip(&samples)
        .map(|(r, s)| {
            let latency = Summary::of(s).context("no samples were taken")?;
            Ok(ModelResult {
                model: r.name().to_string(),
                sha256: r.sha256().map(str::to_string),
                throughput_per_s: latency.throughput_per_s(batch),
                latency_ms: latency,
                samples_ms: s.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let comparisons = (1..n)
        .filter_map(|m| {
            let ratio = paired_ratio(&samples[m], &samples[0], 0.95, args.bootstrap, args.seed)?;
            Some(Comparison {
                model: runners[m].name().to_string(),
                baseline: runners[0].name().to_string(),
                ratio,
            })
        })
        .collect();
    let runs_done = (i * n).max(1) as f64;
    Ok(RunGroup {
        batch,
        threads,
        iterations: i,
        results,
        comparisons,
        loop_s,
        run_s,
        overhead_fraction: if loop_s > 0.0 {
            ((loop_s - run_s) / loop_s).max(0.0)
        } else {
            0.0
        },
        overhead_us_per_run: (loop_s - run_s).max(0.0) * 1e6 / runs_done,
        profiles: Vec::new(),
    })
}

/// Profile each model in its own session so the profiler's cost never enters the timed samples.
fn profile_pass(
    args: &BenchArgs,
    cfg: &RuntimeConfig,
    batch: usize,
    threads: usize,
) -> anyhow::Result<Vec<ModelProfile>> {
    let (dir, keep) = match &args.profile_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating profile folder {}", d.display()))?;
            (d.clone(), true)
        }
        None => {
            let d = std::env::temp_dir().join(format!("ratio-bench-profile-{}", std::process::id()));
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            (d, false)
        }
    };
    let mut out = Vec::new();
    for (i, path) in args.models.iter().enumerate() {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
        let prefix = dir.join(format!("{i}_{stem}_b{batch}_t{threads}"));
        let pcfg = RuntimeConfig {
            profile: Some(prefix),
            ..cfg.clone()
        };
        let mut r = Runner::from_path(path, &pcfg)?;
        let p = random_inputs(&r, batch, args.seed.wrapping_add(i as u64))?;
        for _ in 0..args.warmup + args.profile_iters.max(1) {
            r.time_prepared(&p)?;
        }
        let trace = r.end_profiling()?;
        let summary = summarize_profile(&trace, args.profile_top, args.warmup)?;
        if !keep {
            let _ = std::fs::remove_file(&trace);
        }
        out.push(ModelProfile {
            model: r.name().to_string(),
            trace: keep.then(|| trace.display().to_string()),
            summary,
        });
    }
    if !keep {
        let _ = std::fs::remove_dir(&dir);
    }
    Ok(out)
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
    let mut s = String::new();
    let _ = writeln!(
        s,
        "ratio bench · ONNX Runtime {} · {} ({}) · {} · {} cores · seed {}",
        p.ort_version, p.device, p.execution_provider, p.machine.cpu_model, p.machine.cores, r.settings.seed
    );
    for m in &r.models {
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
    for g in &r.runs {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dims: Vec<Option<i64>>) -> TensorSpec {
        TensorSpec {
            name: "x".into(),
            elem: ElemType::F32,
            dims,
        }
    }

    #[test]
    fn batch_fills_a_symbolic_first_dimension_only() {
        let s = spec(vec![None, Some(3), Some(8), Some(8)]);
        assert_eq!(input_shape("m", &s, 32, true).unwrap(), vec![32, 3, 8, 8]);
        let fixed = spec(vec![Some(4), Some(3)]);
        assert_eq!(input_shape("m", &fixed, 4, true).unwrap(), vec![4, 3]);
        let e = input_shape("m.onnx", &fixed, 2, true).unwrap_err().to_string();
        assert!(
            e.contains("m.onnx: input 'x' [4,3] has a static batch dimension of 4; --batch 2"),
            "{e}"
        );
        let e = input_shape("m.onnx", &spec(vec![None, None]), 1, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic dimension 1 besides the batch"), "{e}");
        assert_eq!(input_shape("m", &spec(vec![]), 5, true).unwrap(), Vec::<usize>::new());
        // A parameter input of a train-step graph keeps its static shape whatever the batch.
        assert_eq!(input_shape("m", &fixed, 128, false).unwrap(), vec![4, 3]);
    }
}

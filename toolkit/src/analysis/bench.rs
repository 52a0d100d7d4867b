//! Latency and throughput of one or more models on ONNX Runtime: batch and thread sweeps, every iteration
//! running each model once in rotating order (so drift and warm caches cancel in the paired ratios), and an
//! optional per-op profile in separate, untimed sessions.
//!
//! The engine behind `ratio bench` and the sweep's bench step; the command only parses flags and renders.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reports::schema::bench::{
    BenchBody, BenchModel, BenchSettings, LatencyComparison, ModelLatency, ModelProfile, RunGroup,
};

use crate::analysis::latency::{paired_ratio, summary};
use crate::provenance::{Collect, Provenance};
use crate::runtime::{
    Device, OptLevel, Prepared, RANDOM_INPUTS, Runner, RuntimeConfig, TensorSpec, fmt_dims, summarize_profile,
};

/// What to measure (the flags of `ratio bench`, see there for each one's meaning).
#[derive(Debug, Clone)]
pub struct BenchPlan {
    pub models: Vec<PathBuf>,
    pub warmup: usize,
    pub iters: Option<usize>,
    pub duration: Option<f64>,
    pub batch: Vec<usize>,
    pub threads: Vec<usize>,
    pub device: Device,
    pub opt_level: OptLevel,
    pub seed: u64,
    pub profile: bool,
    pub profile_iters: usize,
    pub profile_top: usize,
    pub profile_dir: Option<PathBuf>,
    pub bootstrap: usize,
}

/// What [`bench`] measured, and where.
#[derive(Debug)]
pub struct BenchReport {
    pub provenance: Provenance,
    pub body: BenchBody,
}

/// Measure everything `plan` asks for.
pub fn bench(plan: &BenchPlan) -> anyhow::Result<BenchReport> {
    validate(plan)?;
    let iters = match (plan.iters, plan.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(100),
    };
    let provenance = Provenance::collect(plan.device)?;
    let mut models = Vec::new();
    let mut runs = Vec::new();
    for &threads in &plan.threads {
        let cfg = RuntimeConfig {
            device: plan.device,
            intra_threads: (threads > 0).then_some(threads),
            opt_level: plan.opt_level,
            ..RuntimeConfig::default()
        };
        let mut runners = plan
            .models
            .iter()
            .map(|p| Runner::from_path(p, &cfg).with_context(|| format!("loading {} for benchmarking", p.display())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if models.is_empty() {
            models = runners.iter().map(model_info).collect();
        }
        for &batch in &plan.batch {
            let prepared = runners
                .iter()
                .enumerate()
                .map(|(i, r)| random_inputs(r, batch, plan.seed.wrapping_add(i as u64)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut group = measure(&mut runners, &prepared, plan, iters, batch, threads)?;
            if plan.profile {
                group.profiles = profile_pass(plan, &cfg, batch, threads)?;
            }
            runs.push(group);
        }
    }
    Ok(BenchReport {
        provenance,
        body: BenchBody {
            settings: BenchSettings {
                warmup: plan.warmup,
                iters,
                duration_s: plan.duration,
                batches: plan.batch.clone(),
                threads: plan.threads.clone(),
                opt_level: format!("{:?}", plan.opt_level).to_lowercase(),
                seed: plan.seed,
                inputs: format!(
                    "random: {RANDOM_INPUTS}; ChaCha8 seeded with seed + model index (seed {})",
                    plan.seed
                ),
                schedule: "each iteration runs every model once, starting with model (iteration mod count)".into(),
                timing: "wall time of one Session::run call on prepared inputs; outputs dropped unread".into(),
            },
            models,
            runs,
        },
    })
}

fn validate(plan: &BenchPlan) -> anyhow::Result<()> {
    if plan.batch.contains(&0) {
        bail!("--batch: batch sizes must be at least 1 (got {:?})", plan.batch);
    }
    if plan.iters == Some(0) {
        bail!("--iters must be at least 1");
    }
    if let Some(d) = plan.duration
        && !(d.is_finite() && d > 0.0)
    {
        bail!("--duration must be a positive number of seconds (got {d})");
    }
    if plan.batch.is_empty() || plan.threads.is_empty() {
        bail!("--batch and --threads need at least one value");
    }
    Ok(())
}

fn model_info(r: &Runner) -> BenchModel {
    BenchModel {
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

/// The seeded random inputs of model `r` at `batch` (see [`crate::runtime::random_inputs`]), prepared for timing.
fn random_inputs(r: &Runner, batch: usize, seed: u64) -> anyhow::Result<Prepared> {
    let inputs = crate::runtime::random_inputs(r.inputs(), seed, |i, spec| input_shape(r.name(), spec, batch, i == 0))
        .with_context(|| format!("{}: bench inputs", r.name()))?;
    Ok(r.prepare(&inputs.feeds())?)
}

fn measure(
    runners: &mut [Runner],
    prepared: &[Prepared],
    plan: &BenchPlan,
    iters: Option<usize>,
    batch: usize,
    threads: usize,
) -> anyhow::Result<RunGroup> {
    let n = runners.len();
    for _ in 0..plan.warmup {
        for (r, p) in runners.iter_mut().zip(prepared) {
            r.time_prepared(p)?;
        }
    }
    let budget = plan.duration.map(Duration::from_secs_f64);
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
            let latency = summary(s).context("no samples were taken")?;
            Ok(ModelLatency {
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
            let ratio = paired_ratio(&samples[m], &samples[0], 0.95, plan.bootstrap, plan.seed)?;
            Some(LatencyComparison {
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
    plan: &BenchPlan,
    cfg: &RuntimeConfig,
    batch: usize,
    threads: usize,
) -> anyhow::Result<Vec<ModelProfile>> {
    let (dir, keep) = match &plan.profile_dir {
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
    for (i, path) in plan.models.iter().enumerate() {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("model");
        let prefix = dir.join(format!("{i}_{stem}_b{batch}_t{threads}"));
        let pcfg = RuntimeConfig {
            profile: Some(prefix),
            ..cfg.clone()
        };
        let mut r = Runner::from_path(path, &pcfg)?;
        let p = random_inputs(&r, batch, plan.seed.wrapping_add(i as u64))?;
        for _ in 0..plan.warmup + plan.profile_iters.max(1) {
            r.time_prepared(&p)?;
        }
        let trace = r.end_profiling()?;
        let summary = summarize_profile(&trace, plan.profile_top, plan.warmup)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::ElemType;

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

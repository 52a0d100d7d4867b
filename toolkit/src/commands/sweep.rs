//! `ratio sweep`: the whole experiment in one command (see `toolkit::sweep`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use converters::ir::model::write_atomic;

use crate::sweep::spec::{self, Mode, ModelSource, Ratio, Shard, SweepSpec};
use crate::sweep::{exec, plan, provenance, render, slurm, store};

#[derive(Debug, Clone, clap::Args)]
pub struct SweepArgs {
    /// Built-in architecture (resnet20, vgg, densenet, plain) or a trained 1:1 checkpoint (.onnx).
    #[arg(long)]
    pub model: String,
    /// Data set name understood by `ratio train/eval` (fashion-mnist, digits, mnist, …).
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Preprocessing preset for training, eval and richness (default: the --data name: mnist, fashion-mnist,
    /// digits).
    #[arg(long)]
    pub preset: Option<String>,
    /// Comma-separated N:M ratios; must include 1:1.
    #[arg(long, default_value = "1:1,2:1")]
    pub ratios: String,
    /// Comma-separated placement policies (which ReLUs stay): first, last, spread, random.
    #[arg(long, default_value = "last")]
    pub policies: String,
    /// Seeds per variant (0..n); paired tests need at least 2, 3+ recommended.
    #[arg(long, default_value_t = 3)]
    pub seeds: u64,
    /// Train every converted architecture from random initialisation.
    #[arg(long, conflicts_with = "finetune")]
    pub from_scratch: bool,
    /// Convert a trained 1:1 model and fine-tune each variant (default).
    #[arg(long)]
    pub finetune: bool,
    /// Epochs of training (base model) and of fine-tuning (each variant).
    #[arg(long, default_value_t = 1)]
    pub epochs: u32,
    /// Learning rate of training and fine-tuning (SGD with momentum unless --step-args train=... says otherwise).
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Steps per variant, comma-separated, from convert,calibrate,train,inspect,eval,bench,richness (calibrate
    /// refits each converted model to the source's activations before fine-tuning; it is not a default step).
    #[arg(long, default_value = "convert,train,inspect,eval,bench,richness")]
    pub steps: String,
    /// Extra arguments for one step's command line, e.g. `--step-args "train=--limit 2000"` (repeatable).
    #[arg(long = "step-args", value_name = "STEP=ARGS")]
    pub step_args: Vec<String>,
    /// Run directory holding the manifest, every step's record and the report.
    #[arg(long)]
    pub run_dir: PathBuf,
    /// Run only variants i, i+n, i+2n, … (zero-based i/n; Slurm array tasks use this).
    #[arg(long)]
    pub shard: Option<String>,
    /// Write a job script instead of running: `slurm` writes RUN_DIR/sweep.sbatch.
    #[arg(long, value_parser = ["slurm"])]
    pub emit: Option<String>,
    /// Number of array tasks for --emit slurm (default: one per variant).
    #[arg(long)]
    pub tasks: Option<usize>,
    /// Extra #SBATCH option for --emit slurm, e.g. `--sbatch=--time=02:00:00` (repeatable).
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
    /// Significance level for the paired tests.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Do not render the report at the end (shards never do; run `ratio report` after the last one).
    #[arg(long)]
    pub no_report: bool,
}

/// Resolve the flags into a validated spec (no side effects besides resolving paths).
pub fn spec_from_args(a: &SweepArgs) -> Result<SweepSpec> {
    let (data, preset) = spec::resolve_data(&a.data, a.preset.as_deref())?;
    let spec = SweepSpec {
        model: ModelSource::parse(&a.model)?,
        data,
        preset,
        mode: if a.from_scratch {
            Mode::FromScratch
        } else {
            Mode::Finetune
        },
        ratios: spec::split_list(&a.ratios)
            .iter()
            .map(|r| r.parse::<Ratio>())
            .collect::<Result<Vec<_>, _>>()?,
        policies: spec::split_list(&a.policies),
        seeds: a.seeds,
        epochs: a.epochs,
        lr: a.lr,
        steps: spec::split_list(&a.steps),
        step_args: spec::parse_step_args(&a.step_args)?,
    };
    spec.validate()?;
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        bail!("--alpha {} is not in (0, 1)", a.alpha);
    }
    Ok(spec)
}

pub fn run(a: SweepArgs) -> Result<ExitCode> {
    let spec = spec_from_args(&a)?;
    let shard = a.shard.as_deref().map(Shard::parse).transpose()?;
    let run_dir = std::path::absolute(&a.run_dir).with_context(|| format!("resolving {}", a.run_dir.display()))?;
    let plans = plan::plan(&spec, &run_dir)?;
    plan::check_against_cli(&plans)?;
    let manifest = store::manifest_record(&spec, &run_dir)?;
    store::open_run_dir(&run_dir, &manifest)?;
    let program = std::env::current_exe().context("locating the ratio executable")?;
    let variants = spec.variants();

    if a.emit.is_some() {
        let tasks = a.tasks.unwrap_or(variants.len()).clamp(1, variants.len());
        let args = spec.to_args(&run_dir, a.alpha);
        let script = slurm::script(&slurm::SlurmJob {
            program: &program,
            sweep_args: &[args, vec!["--no-report".into()]].concat(),
            run_dir: &run_dir,
            tasks,
            job_name: format!("ratio-sweep-{}", &spec.hash()[..8]),
            cpus_per_task: 2,
            extra: &a.sbatch,
        });
        std::fs::create_dir_all(run_dir.join("slurm"))
            .with_context(|| format!("creating {}/slurm", run_dir.display()))?;
        let path = run_dir.join("sweep.sbatch");
        write_atomic(&path, script.as_bytes())?;
        crate::outln!("{}", path.display());
        crate::status!(
            "wrote {} ({} array tasks over {} variants); submit with `sbatch {}`, then merge with `{} report {}`",
            path.display(),
            tasks,
            variants.len(),
            path.display(),
            program.display(),
            run_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let index: std::collections::HashMap<&str, usize> =
        variants.iter().enumerate().map(|(i, v)| (v.id.as_str(), i)).collect();
    let owned = |p: &plan::StepPlan| match (&p.variant, shard) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(v), Some(s)) => index.get(v.id.as_str()).is_some_and(|&i| s.owns(i)),
    };
    crate::status!(
        "sweep {} → {} ({} variants{})",
        &spec.hash()[..12],
        run_dir.display(),
        variants.len(),
        shard
            .map(|s| format!(", shard {}/{}", s.index, s.count))
            .unwrap_or_default()
    );
    let outcome = exec::run_plans(&program, &run_dir, &plans, &owned, &provenance::current(), &mut |l| {
        crate::status!("  {l}")
    })?;
    crate::status!(
        "steps: {} ran, {} reused, {} failed, {} blocked, {} untrusted records redone",
        outcome.ran_ok.len(),
        outcome.reused.len(),
        outcome.failed.len(),
        outcome.blocked.len(),
        outcome.redone.len()
    );
    if shard.is_none() && !a.no_report {
        let out = render::write_report(&run_dir, a.alpha)?;
        for c in &out.conclusions {
            crate::outln!("{c}");
        }
        crate::outln!("report: {}", out.html.display());
    } else if shard.is_some() {
        crate::status!(
            "shard done; after every shard has finished run `ratio report {}`",
            run_dir.display()
        );
    }
    let clean = outcome.failed.is_empty() && outcome.blocked.is_empty();
    Ok(if clean { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

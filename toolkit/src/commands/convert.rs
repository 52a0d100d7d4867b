//! `ratio convert` / `ratio-convert`: plan and apply an N:M policy, check the result, write it atomically.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use converters::convert::{apply_plan, convert};
use converters::ir::Model;
use converters::plan::{Decision, Plan};
use converters::policy::{Keep, Policy, Preset, Ratio, Scope};
use reports::schema::convert::{ConversionCheck, ConvertBody, ScopeCount};
use reports::schema::{FileRef, Record};

use crate::checks::check_conversion;
use crate::commands::{emit, inspect::parse_acts};
use crate::runtime::{Device, RuntimeConfig};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ScopeArg {
    Auto,
    Block,
    Stage,
    Global,
}

/// Named placement policies (`--policy`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PolicyPresetArg {
    /// EraseReLU: remove the last activation of every block.
    EraseLast,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KeepArg {
    First,
    Last,
    Spread,
    Random,
    ByNegativeMass,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ConvertArgs {
    /// The 1:1 ONNX model to convert (never modified).
    pub model: PathBuf,
    /// N convolutions per M activations, N > M ≥ 1 (1:1 writes the model unchanged).
    #[arg(long, value_name = "N:M", default_value = "2:1")]
    pub ratio: Ratio,
    /// Where the ratio is counted: auto = block for residual/concat nets, stage for plain chains.
    #[arg(long, value_enum, default_value = "auto")]
    pub scope: ScopeArg,
    /// Which activations of each scope survive.
    #[arg(long, value_enum, default_value = "last")]
    pub keep: KeepArg,
    /// Seed for `--keep random` (recorded in the output).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Only activations whose node name matches one of these regexes are eligible.
    #[arg(long)]
    pub include: Vec<String>,
    /// Activations whose node name matches one of these regexes are kept.
    #[arg(long)]
    pub exclude: Vec<String>,
    /// Allow removing the first activation (protected by default).
    #[arg(long)]
    pub no_protect_stem: bool,
    /// Allow removing activations in the classifier head (protected by default).
    #[arg(long)]
    pub no_protect_head: bool,
    /// Activation kinds that form slots (comma-separated): relu, relu6, leakyrelu, prelu.
    #[arg(long, value_delimiter = ',', default_value = "relu")]
    pub act: Vec<String>,
    /// A named placement policy instead of --ratio/--scope/--keep: `erase-last` (EraseReLU: remove the last
    /// activation of every block).
    #[arg(long, value_enum, conflicts_with_all = ["keep", "scope"])]
    pub policy: Option<PolicyPresetArg>,
    /// Preprocessing preset (built-in name or JSON file) of --data and --calibrate-data, as in every command.
    #[arg(long)]
    pub preset: Option<String>,
    /// Replace chosen activations by LeakyRelu(α) instead of removing them.
    #[arg(long, value_name = "ALPHA")]
    pub leaky: Option<f32>,
    /// Dry run: print every slot and its decision, write nothing.
    #[arg(long)]
    pub plan: bool,
    /// The plan (with --plan) or the conversion record as JSON: to FILE, or to stdout with `-`.
    #[command(flatten)]
    pub record: super::args::OutputArgs,
    /// Apply a saved or hand-edited plan (from `--plan --json`) exactly.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["keep", "scope", "leaky"])]
    pub apply_plan: Option<PathBuf>,
    /// Output path (default: NAME.N-M.onnx beside the input).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
    /// Always write weights to a side `.data` file.
    #[arg(long)]
    pub external_data: bool,
    /// Skip the ONNX Runtime checks (structural checks always run).
    #[arg(long)]
    pub no_check: bool,
    /// Device for the ONNX Runtime checks.
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Data for `--keep by-negative-mass` (a dataset path or name).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Samples used to score negative mass.
    #[arg(long, default_value_t = 512)]
    pub samples: usize,
    /// Calibrate the converted model on this data (its training split) against the source before writing it,
    /// as `ratio calibrate --method auto` does.
    #[arg(long, value_name = "D")]
    pub calibrate_data: Option<String>,
    /// Preprocessing preset of --calibrate-data when it differs from --preset.
    #[arg(long, value_name = "P", requires = "calibrate_data")]
    pub calibrate_preset: Option<String>,
    /// Calibration samples (the first N of the training split).
    #[arg(long, value_name = "N", default_value_t = 2000, requires = "calibrate_data")]
    pub calibrate_samples: usize,
}

/// Samples in the runtime check's batch: enough for a sample-level comparison, small enough that the two ResNet-50
/// forward passes cost well under the model load (the check's time is dominated by batch size past that).
pub const CHECK_BATCH: usize = 1;

impl ConvertArgs {
    fn policy(&self) -> Result<Policy> {
        if self.preset.as_deref() == Some("erase-last") {
            bail!("--preset names a preprocessing preset; the EraseReLU placement policy is --policy erase-last");
        }
        if let Some(p) = &self.preset
            && self.data.is_none()
            && self.calibrate_data.is_none()
        {
            bail!("--preset {p}: a preprocessing preset needs --data or --calibrate-data");
        }
        let preset = self.policy.map(|PolicyPresetArg::EraseLast| Preset::EraseLast);
        Ok(Policy {
            ratio: self.ratio,
            scope: match self.scope {
                ScopeArg::Auto => Scope::Auto,
                ScopeArg::Block => Scope::Block,
                ScopeArg::Stage => Scope::Stage,
                ScopeArg::Global => Scope::Global,
            },
            keep: match self.keep {
                KeepArg::First => Keep::First,
                KeepArg::Last => Keep::Last,
                KeepArg::Spread => Keep::Spread,
                KeepArg::Random => Keep::Random,
                KeepArg::ByNegativeMass => Keep::ByNegativeMass,
            },
            seed: self.seed,
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            protect_stem: !self.no_protect_stem,
            protect_head: !self.no_protect_head,
            acts: parse_acts(&self.act)?,
            preset,
            leaky: self.leaky,
        })
    }
}

/// NAME.N-M.onnx beside the input (NAME.erase-last.onnx for the preset).
pub fn default_output(input: &Path, policy: &Policy) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let tag = match policy.preset {
        Some(Preset::EraseLast) => "erase-last".to_string(),
        None => format!("{}-{}", policy.ratio.n, policy.ratio.m),
    };
    let leaky = policy.leaky.map(|a| format!(".leaky{a}")).unwrap_or_default();
    input.with_file_name(format!("{stem}.{tag}{leaky}.onnx"))
}

fn same_file(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| -> Option<PathBuf> {
        let parent = p
            .parent()
            .filter(|x| !x.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(parent.canonicalize().ok()?.join(p.file_name()?))
    };
    match (canon(a), canon(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    let model = Model::load(&args.model)?;
    let (converted, plan) = match &args.apply_plan {
        Some(file) => {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("{}: cannot read plan", file.display()))?;
            let plan: Plan =
                serde_json::from_str(&text).with_context(|| format!("{}: not a ratio plan", file.display()))?;
            let m = apply_plan(&model, &plan)?;
            (m, plan)
        }
        None => {
            let policy = args.policy()?;
            let scores = if policy.keep == Keep::ByNegativeMass {
                Some(negative_mass(&args, &model)?)
            } else {
                None
            };
            let c = convert(&model, &policy, scores.as_ref())?;
            (c.model, c.plan)
        }
    };
    if args.plan {
        args.record.write_value(&plan)?;
        if !args.record.to_stdout() {
            emit(&render_plan(&plan))?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.model, &plan.policy));
    if same_file(&output, &args.model) {
        bail!(
            "{}: output path is the input model; refusing to overwrite it (give -o)",
            output.display()
        );
    }
    if output.exists() && !args.force {
        bail!("{}: output exists; pass --force to overwrite", output.display());
    }

    let runtime_check = if args.no_check || plan.is_identity() {
        None
    } else {
        let cfg = RuntimeConfig {
            device: args.device,
            ..RuntimeConfig::default()
        };
        Some(
            check_conversion(&model, &converted, &plan, &cfg, CHECK_BATCH, 0)
                .with_context(|| format!("{}: runtime check of the converted model failed", args.model.display()))?,
        )
    };
    let converted = super::calibrate::after_convert(&args, &model, converted, &output)?;
    let output_sha256 = converted
        .save(&output, args.external_data)
        .with_context(|| format!("writing {}", output.display()))?;

    let record = ConvertBody {
        source: args.model.display().to_string(),
        source_sha256: model.source_sha256.clone().unwrap_or_default(),
        output: output.display().to_string(),
        output_sha256,
        ratio: plan.policy.ratio.to_string(),
        policy: plan.policy.describe(),
        slots: plan.slots.len(),
        changed: plan.changed().map(|s| s.name.clone()).collect(),
        leaky: plan.policy.leaky,
        scopes: plan
            .scopes
            .iter()
            .map(|c| ScopeCount {
                scope: c.scope.clone(),
                slots: c.slots,
                eligible: c.eligible,
                kept: c.kept,
                changed: c.changed,
            })
            .collect(),
        runtime_check: runtime_check.map(|c| ConversionCheck {
            batch: c.batch,
            seed: c.seed,
            qualifying_samples: c.qualifying_samples,
            max_abs_diff_qualifying: c.max_abs_diff_qualifying,
            max_abs_diff_all: c.max_abs_diff_all,
        }),
    };
    if args.record.json.is_some() {
        args.record.write(&envelope(&record, args.device, args.no_check)?)?;
    }
    if !args.record.to_stdout() {
        emit(&render_record(&record))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The `ratio/convert/v1` record: source and output pinned by sha256; ONNX Runtime named when the check ran.
fn envelope(body: &ConvertBody, device: Device, no_check: bool) -> Result<Record> {
    use crate::provenance::Collect;
    let provenance = if no_check || body.runtime_check.is_none() {
        crate::provenance::no_runtime()
    } else {
        crate::provenance::Provenance::collect(device)?
    };
    let mut rec = crate::commands::record(body, provenance)?;
    rec.inputs.push(FileRef {
        path: body.source.clone(),
        sha256: body.source_sha256.clone(),
    });
    rec.outputs.push(FileRef {
        path: body.output.clone(),
        sha256: body.output_sha256.clone(),
    });
    Ok(rec)
}

/// Negative-mass scores of every activation, from the training split of `--data` under the preprocessing preset.
fn negative_mass(args: &ConvertArgs, model: &Model) -> Result<std::collections::HashMap<String, f64>> {
    let (Some(data), Some(preset)) = (&args.data, args.preset.as_deref()) else {
        bail!("--keep by-negative-mass needs --data and a preprocessing --preset (for example --preset mnist)");
    };
    crate::analysis::richness::source::negative_mass_scores(model, &data.to_string_lossy(), preset, args.samples)
        .with_context(|| format!("{}: scoring negative mass on {}", args.model.display(), data.display()))
}

fn decision_str(d: &Decision) -> String {
    match d {
        Decision::Keep => "keep".into(),
        Decision::Remove => "REMOVE".into(),
        Decision::Leaky { alpha } => format!("LEAKY({alpha})"),
    }
}

pub fn render_plan(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "policy: {}  (scope used: {:?})", plan.policy.describe(), plan.scope);
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:>4}  {:<40} {:<6} {:>5} {:>5}  {:<5} {:<9} {:>9}  note",
        "#", "activation", "kind", "block", "stage", "role", "decision", "score"
    );
    for p in &plan.slots {
        let _ = writeln!(
            s,
            "{:>4}  {:<40} {:<6} {:>5} {:>5}  {:<5} {:<9} {:>9}  {}",
            p.depth,
            p.name,
            p.kind.as_str(),
            p.block,
            p.stage,
            format!("{:?}", p.role).to_lowercase(),
            decision_str(&p.decision),
            p.score.map(|x| format!("{x:.4}")).unwrap_or_default(),
            p.held.as_deref().unwrap_or("")
        );
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<10} {:>6} {:>9} {:>6} {:>8}",
        "scope", "slots", "eligible", "kept", "changed"
    );
    for c in &plan.scopes {
        let _ = writeln!(
            s,
            "{:<10} {:>6} {:>9} {:>6} {:>8}",
            c.scope, c.slots, c.eligible, c.kept, c.changed
        );
    }
    let changed = plan.changed().count();
    let _ = writeln!(
        s,
        "\n{changed} of {} activations change; nothing written (--plan).",
        plan.slots.len()
    );
    s
}

fn render_record(r: &ConvertBody) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{} → {}", r.source, r.output);
    let _ = writeln!(s, "policy: {}", r.policy);
    let _ = writeln!(
        s,
        "changed {} of {} activations: {}",
        r.changed.len(),
        r.slots,
        r.changed.join(", ")
    );
    match &r.runtime_check {
        Some(c) => {
            let _ = writeln!(
                s,
                "checks: structure ok; ONNX Runtime ran a batch of {} (seed {}); {} sample(s) where every removed activation is the identity{}; max |Δoutput| {:.4}",
                c.batch,
                c.seed,
                c.qualifying_samples,
                c.max_abs_diff_qualifying
                    .map(|d| format!(" matched within {d:.2e}"))
                    .unwrap_or_default(),
                c.max_abs_diff_all
            );
        }
        None if r.changed.is_empty() => {
            let _ = writeln!(s, "ratio 1:1 (or nothing eligible): model written unchanged");
        }
        None => {
            let _ = writeln!(s, "checks: structure ok; ONNX Runtime checks skipped (--no-check)");
        }
    }
    let _ = writeln!(s, "sha256 {}", r.output_sha256);
    s
}

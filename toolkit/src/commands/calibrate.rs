//! `ratio calibrate MODEL --data D --preset P`: refit a converted model so it reproduces its source again
//! (`toolkit::calibrate`), write it atomically beside the input, print before/after numbers on held-out data,
//! and record everything in `metadata_props` and a `ratio/calibrate/v1` record.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use converters::Model;
use reports::schema::calibrate::{CalibrateBody, Stage};
use reports::schema::{FileRef, Record};

use super::args::{DataArgs, OutputArgs, RuntimeArgs};
use super::richness::record_provenance;
use crate::calibrate::samples::{CalibData, SampleSpec};
use crate::calibrate::{CalibrateOptions, Calibrated, Method, calibrate, record_metadata};
use crate::runtime::RuntimeConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct CalibrateArgs {
    /// The converted model to calibrate (never modified).
    pub model: PathBuf,
    /// Calibration data and its preprocessing; the training split is used, the test split measures.
    #[command(flatten)]
    pub input: DataArgs,
    /// Calibration samples (the first N of the training split).
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// The model it was converted from (default: the source recorded in its metadata, found beside it).
    #[arg(long, value_name = "SOURCE.onnx")]
    pub reference: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Method::Auto)]
    pub method: Method,
    /// Output path (default: NAME.calibrated.onnx beside the input).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub record: OutputArgs,
    /// Held-out samples measured before and after (default: the whole test split).
    #[arg(long)]
    pub eval_samples: Option<usize>,
    #[arg(long, default_value_t = 250)]
    pub batch: usize,
    /// Least-squares ridge, relative to trace(XᵀX)/d, toward the layer's weights.
    #[arg(long, default_value_t = 1e-2)]
    pub ridge: f64,
    /// Conv output positions sampled per sample for least squares.
    #[arg(long, default_value_t = 16)]
    pub positions: usize,
    /// Seed of the sampled positions.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The model and its reference run side by side, one thread each unless --threads says otherwise.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl CalibrateArgs {
    fn options(&self) -> CalibrateOptions {
        CalibrateOptions {
            method: self.method,
            ridge: self.ridge,
            positions: self.positions.max(1),
            seed: self.seed,
            runtime: RuntimeConfig {
                intra_threads: Some(self.runtime.threads.unwrap_or(1).max(1)),
                ..self.runtime.config()
            },
            ..CalibrateOptions::default()
        }
    }
}

/// NAME.calibrated.onnx beside the input.
pub fn default_output(input: &Path) -> PathBuf {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    input.with_file_name(format!("{stem}.calibrated.onnx"))
}

/// `--reference`, or the source recorded in the model's metadata when it sits beside the model with the recorded
/// sha256. `None` when neither exists (AdaBN needs no reference).
fn resolve_reference(path: &Path, model: &Model, given: Option<&Path>, method: Method) -> Result<Option<Model>> {
    if let Some(r) = given {
        return Ok(Some(Model::load(r)?));
    }
    let Some(src) = model.metadata("ratio.source").filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let candidate = path.parent().unwrap_or(Path::new(".")).join(src);
    if !candidate.is_file() {
        if method == Method::Adabn {
            return Ok(None);
        }
        bail!(
            "{}: records its source as '{src}', but {} does not exist; pass --reference SOURCE.onnx",
            path.display(),
            candidate.display()
        );
    }
    let r = Model::load(&candidate)?;
    if let Some(want) = model.metadata("ratio.source_sha256")
        && r.source_sha256.as_deref() != Some(want)
    {
        bail!(
            "{}: its recorded source {} has sha256 {}, not the recorded {want}; pass --reference SOURCE.onnx",
            path.display(),
            candidate.display(),
            r.source_sha256.as_deref().unwrap_or("?")
        );
    }
    Ok(Some(r))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

pub fn run(args: CalibrateArgs) -> Result<ExitCode> {
    let model = Model::load(&args.model)?;
    let output = args.output.clone().unwrap_or_else(|| default_output(&args.model));
    let reference = resolve_reference(&args.model, &model, args.reference.as_deref(), args.method)?;
    for input in std::iter::once(args.model.as_path()).chain(args.reference.as_deref()) {
        if same_file(&output, input) {
            bail!(
                "{}: output path is an input model; refusing to overwrite it (give -o)",
                output.display()
            );
        }
    }
    if output.exists() && !args.force {
        bail!("{}: output exists; pass --force to overwrite", output.display());
    }
    let spec = SampleSpec {
        data: args.input.data.clone(),
        preset: args.input.preset.clone(),
        samples: args.samples,
        eval_samples: args.eval_samples,
        batch: args.batch,
    };
    let mut data = CalibData::open(&spec)?;
    let opts = args.options();
    let mut done = calibrate(&model, reference.as_ref(), &mut data, &opts)?;
    let ref_sha = reference.as_ref().and_then(|r| r.source_sha256.clone());
    record_metadata(&mut done.model, &data, args.method, ref_sha.as_deref());
    let output_sha256 = done
        .model
        .save(&output, false)
        .with_context(|| format!("writing {}", output.display()))?;
    let body = CalibrateBody {
        source: args.model.display().to_string(),
        source_sha256: model.source_sha256.clone().unwrap_or_default(),
        output: output.display().to_string(),
        output_sha256: output_sha256.clone(),
        reference: reference.as_ref().map(Model::display_name),
        reference_sha256: ref_sha.clone(),
        method: args.method.as_str().into(),
        samples: data.samples() as u64,
        batch: data.batch,
        data: data.data.clone(),
        eval_data: data.eval_data.clone(),
        held_out: data.held_out.clone(),
        ridge: opts.ridge,
        positions: opts.positions,
        seed: opts.seed,
        removed: done.removed.clone(),
        reference_stage: done.reference_stage.clone(),
        before: done.before.clone(),
        after: done.after.clone(),
        layers: done.layers.clone(),
        seconds: done.seconds,
    };
    let provenance = record_provenance(
        args.runtime.device,
        &crate::runtime::ensure_ort()?,
        [
            ("seed", serde_json::json!(opts.seed)),
            ("data_sha256", serde_json::json!(data.data.sha256)),
            ("preset_fingerprint", serde_json::json!(data.data.preset_fingerprint)),
        ],
    );
    let mut record = Record::new(
        &body,
        std::env::args().collect(),
        provenance,
        reports::schema::now_rfc3339(),
    )?;
    record.inputs = std::iter::once((body.source.clone(), body.source_sha256.clone()))
        .chain(body.reference.clone().zip(ref_sha))
        .map(|(path, sha256)| FileRef { path, sha256 })
        .collect();
    record.outputs = vec![FileRef {
        path: body.output.clone(),
        sha256: output_sha256,
    }];
    if !args.record.to_stdout() {
        super::emit(&render(&body))?;
    }
    args.record.write(&record)?;
    Ok(ExitCode::SUCCESS)
}

/// `ratio convert --calibrate-data`: calibrate the model just converted (in memory, to be written to `output`)
/// against its source; without the flag the model passes through unchanged.
pub fn after_convert(
    args: &super::convert::ConvertArgs,
    source: &Model,
    converted: Model,
    output: &Path,
) -> Result<Model> {
    let Some(data) = &args.calibrate_data else {
        return Ok(converted);
    };
    let Some(preset) = args.calibrate_preset.as_deref().or(args.preset.as_deref()) else {
        bail!("--calibrate-data needs --calibrate-preset P or --preset P (a preprocessing preset such as mnist)");
    };
    let spec = SampleSpec {
        data: data.clone(),
        preset: preset.to_string(),
        samples: args.calibrate_samples,
        eval_samples: None,
        batch: 250,
    };
    let mut converted = converted;
    converted.path = Some(output.to_path_buf());
    let mut data = CalibData::open(&spec)?;
    let opts = CalibrateOptions::default();
    let mut done = calibrate(&converted, Some(source), &mut data, &opts)?;
    record_metadata(&mut done.model, &data, opts.method, source.source_sha256.as_deref());
    crate::printer::status_text(&render_stages(&done, &data));
    done.model.path = None;
    Ok(done.model)
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{:.2}%", 100.0 * x))
}

fn stage_line(s: &mut String, what: &str, st: &Stage) {
    let _ = writeln!(
        s,
        "{what:<10} {:>9} {:>10} {:>14} {:>11.3}",
        pct(st.top1),
        pct(st.agreement),
        st.mean_rel_logit_error.map_or("-".into(), |e| format!("{e:.4}")),
        st.max_abs_logit
    );
}

fn render_stages(done: &Calibrated, data: &CalibData) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "calibrated on {} samples of {} in {:.1}s; measured on {}:",
        data.samples(),
        data.data.path,
        done.seconds,
        data.held_out
    );
    let _ = writeln!(
        s,
        "{:<10} {:>9} {:>10} {:>14} {:>11}",
        "stage", "top-1", "agreement", "rel logit err", "max |logit|"
    );
    if let Some(r) = &done.reference_stage {
        stage_line(&mut s, "reference", r);
    }
    stage_line(&mut s, "before", &done.before);
    stage_line(&mut s, "after", &done.after);
    s
}

fn render(b: &CalibrateBody) -> String {
    let mut s = String::new();
    let short = |h: &str| h[..h.len().min(12)].to_string();
    let _ = writeln!(s, "{} → {}  (sha256 {})", b.source, b.output, short(&b.output_sha256));
    let _ = writeln!(
        s,
        "method {}, {} samples of {} ({}, sha256 {}), preset {} [{}], batch {}",
        b.method,
        b.samples,
        b.data.path,
        b.data.split.as_deref().unwrap_or("-"),
        short(&b.data.sha256),
        b.data.preset,
        short(&b.data.preset_fingerprint),
        b.batch
    );
    match (&b.reference, &b.reference_sha256) {
        (Some(r), Some(sha)) => {
            let _ = writeln!(
                s,
                "reference {r} (sha256 {}); removed: {}",
                short(sha),
                b.removed.join(", ")
            );
        }
        _ => {
            let _ = writeln!(s, "no reference (AdaBN only)");
        }
    }
    let _ = writeln!(
        s,
        "\n{:<40} {:<18} {:<7} {:>8} {:>8} {:>10}  rel error before → after",
        "layer", "op", "fit", "rows", "features", "λ"
    );
    for l in &b.layers {
        let errs = match (l.rel_error_before, l.rel_error_after) {
            (Some(x), Some(y)) => format!("{x:.4} → {y:.4}"),
            _ => match (l.mean_shift, l.var_ratio) {
                (Some(m), Some(v)) => format!("mean shift {m:.3} σ, var ×{v:.3}"),
                _ => "-".into(),
            },
        };
        let _ = writeln!(
            s,
            "{:<40} {:<18} {:<7} {:>8} {:>8} {:>10}  {errs}",
            l.node,
            l.op,
            l.method,
            l.rows,
            l.features.map_or("-".into(), |f| f.to_string()),
            l.lambda.map_or("-".into(), |x| format!("{x:.3e}")),
        );
    }
    let _ = writeln!(s, "\nmeasured on {} ({}):", b.held_out, b.eval_data.path);
    let _ = writeln!(
        s,
        "{:<10} {:>9} {:>10} {:>14} {:>11}",
        "stage", "top-1", "agreement", "rel logit err", "max |logit|"
    );
    if let Some(r) = &b.reference_stage {
        stage_line(&mut s, "reference", r);
    }
    stage_line(&mut s, "before", &b.before);
    stage_line(&mut s, "after", &b.after);
    let _ = writeln!(s, "{:.1}s", b.seconds);
    s
}

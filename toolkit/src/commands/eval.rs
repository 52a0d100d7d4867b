//! `ratio eval`: accuracy of one or more models on the same samples in one pass over the data, with paired
//! statistics against the first model. [`evaluate`] is the library entry point (tests and benches call it).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use ndarray::{ArrayViewD, IxDyn};
use reports::schema::eval as schema;

use crate::analysis::accuracy::{AccuracyAccumulator, AccuracySummary};
use crate::analysis::stats;
use crate::data::loader::{self, Batch, LoaderConfig, OnCorrupt};
use crate::data::preprocess::{ChannelOrder, DType, Layout, Preset};
use crate::data::{self, Dataset, Format, OpenOptions, Split};
use crate::provenance::Provenance;
use crate::runtime::{Device, ElemType, Feed, Runner, RuntimeConfig};

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// ONNX models; the first is the baseline the others are compared with.
    #[arg(required = true)]
    pub models: Vec<PathBuf>,
    /// Dataset path, or a name fetched by `ratio data fetch` (mnist, fashion-mnist, digits).
    #[arg(long)]
    pub data: String,
    /// Preprocessing preset name (mnist, fashion-mnist, digits, cifar10, cifar100, imagenet-torchvision,
    /// imagenet-tf) or a JSON preset file.
    #[arg(long)]
    pub preset: String,
    /// Dataset format (guessed from the path when absent).
    #[arg(long)]
    pub format: Option<Format>,
    #[arg(long, value_enum, default_value_t = Split::Test)]
    pub split: Split,
    /// Evaluate only the first N samples.
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// ONNX Runtime intra-op threads (default: ONNX Runtime's choice).
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// What to do with an image that cannot be decoded.
    #[arg(long, value_enum, default_value_t = OnCorrupt::Fail)]
    pub on_corrupt: OnCorrupt,
    /// Model output holding the class scores (default: the first output).
    #[arg(long)]
    pub output: Option<String>,
    /// Override the preset: convert RGB to one gray channel first.
    #[arg(long)]
    pub grayscale: bool,
    #[arg(long, value_enum)]
    pub layout: Option<Layout>,
    #[arg(long, value_enum)]
    pub dtype: Option<DType>,
    #[arg(long, value_enum)]
    pub channel_order: Option<ChannelOrder>,
    /// Bootstrap resamples for the accuracy-difference interval.
    #[arg(long, default_value_t = 2000)]
    pub bootstrap: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the JSON record (reports schema `ratio.eval/1`) instead of the table.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print per-class accuracy as CSV instead of the table.
    #[arg(long)]
    pub csv: bool,
    /// Also write the JSON record to this file (atomically).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the confusion matrix of every model.
    #[arg(long)]
    pub confusion: bool,
    /// Exit with status 1 when the first model's top-1 is below this fraction.
    #[arg(long)]
    pub min_top1: Option<f64>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

/// Everything [`evaluate`] needs besides the models and the data.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    pub loader: LoaderConfig,
    pub output: Option<String>,
    pub bootstrap: usize,
    pub seed: u64,
    pub progress: bool,
}

/// One model under evaluation: its runner and the resolved input/output names.
struct Subject {
    runner: Runner,
    input: String,
    output: String,
    classes: usize,
    acc: AccuracyAccumulator,
    run_time: Duration,
}

pub fn run(args: EvalArgs) -> Result<ExitCode> {
    let mut preset = Preset::load(&args.preset)?;
    let p = &mut preset.pipeline;
    p.grayscale |= args.grayscale;
    p.layout = args.layout.unwrap_or(p.layout);
    p.dtype = args.dtype.unwrap_or(p.dtype);
    p.channel_order = args.channel_order.unwrap_or(p.channel_order);
    preset.validate()?;
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let ds: Arc<dyn Dataset> = Arc::from(
        data::open(
            &args.data,
            &OpenOptions {
                format: args.format,
                split: args.split,
            },
        )
        .with_context(|| format!("opening dataset '{}'", args.data))?,
    );
    let config = RuntimeConfig {
        device: args.device,
        intra_threads: args.threads,
        ..RuntimeConfig::default()
    };
    let runners = args
        .models
        .iter()
        .map(|m| Runner::from_path(m, &config).with_context(|| format!("loading model {}", m.display())))
        .collect::<Result<Vec<_>>>()?;
    let cfg = EvalConfig {
        loader: LoaderConfig {
            batch: args.batch,
            limit: args.limit,
            prefetch: 2,
            on_corrupt: args.on_corrupt,
        },
        output: args.output.clone(),
        bootstrap: args.bootstrap,
        seed: args.seed,
        progress: !args.no_progress,
    };
    let record = evaluate(runners, ds, &preset, &cfg, args.threads)?;
    if let Some(out) = &args.out {
        let json = serde_json::to_vec_pretty(&record)?;
        converters::ir::model::write_atomic(out, &json).with_context(|| format!("writing {}", out.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut stdout, &record)?;
        writeln!(stdout)?;
    } else if args.csv {
        write_csv(&mut stdout, &record)?;
    } else {
        write_table(&mut stdout, &record, args.confusion)?;
    }
    let below = args.min_top1.is_some_and(|min| record.models[0].top1 < min);
    Ok(if below { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The single image input of a model and its element type, or why the model cannot be evaluated.
fn resolve_input(r: &Runner, preset: &Preset) -> Result<(String, Vec<i64>)> {
    let [input] = r.inputs() else {
        let names: Vec<String> = r.inputs().iter().map(|i| i.to_string()).collect();
        bail!(
            "{}: eval feeds one image input, the model has {}: {}",
            r.name(),
            names.len(),
            names.join(", ")
        );
    };
    let want = match preset.pipeline.dtype {
        DType::F32 => ElemType::F32,
        DType::F16 => ElemType::F16,
    };
    if input.elem != want {
        bail!(
            "{}: input '{}' is {}, the preset produces {} (use --dtype {})",
            r.name(),
            input.name,
            input.elem,
            want,
            if input.elem == ElemType::F16 { "f16" } else { "f32" }
        );
    }
    Ok((input.name.clone(), input.dims.iter().map(|d| d.unwrap_or(-1)).collect()))
}

fn resolve_output(r: &Runner, wanted: Option<&str>) -> Result<(String, Option<usize>)> {
    let spec = match wanted {
        Some(w) => r.outputs().iter().find(|o| o.name == w).with_context(|| {
            let names: Vec<&str> = r.outputs().iter().map(|o| o.name.as_str()).collect();
            format!("{}: no output named '{w}' (outputs: {})", r.name(), names.join(", "))
        })?,
        None => r
            .outputs()
            .first()
            .with_context(|| format!("{}: the model has no outputs", r.name()))?,
    };
    // Class count from the static dims after the batch axis, when known.
    let rest: Option<Vec<i64>> = spec.dims.iter().skip(1).copied().collect();
    let classes = rest.map(|d| d.iter().product::<i64>() as usize).filter(|&c| c > 0);
    Ok((spec.name.clone(), classes))
}

/// Run every model on the same batches and build the record.
pub fn evaluate(
    runners: Vec<Runner>,
    ds: Arc<dyn Dataset>,
    preset: &Preset,
    cfg: &EvalConfig,
    threads: Option<usize>,
) -> Result<schema::EvalRecord> {
    let n = cfg.loader.samples(ds.as_ref());
    if n == 0 {
        bail!(
            "{}: no samples to evaluate (the set holds {}, --limit {:?})",
            ds.identity().path,
            ds.len(),
            cfg.loader.limit
        );
    }
    // Decode the first sample to learn the image size the preset receives.
    let first = ds
        .sample(0)
        .with_context(|| format!("reading the first sample of {}", ds.identity().path))?;
    let hwc = [first.image.height, first.image.width, first.image.channels];
    let mut subjects = Vec::with_capacity(runners.len());
    for r in runners {
        let (input, dims) = resolve_input(&r, preset)?;
        preset
            .check_fits(&input, &dims, hwc)
            .with_context(|| format!("model {}", r.name()))?;
        let (output, classes) = resolve_output(&r, cfg.output.as_deref())?;
        let classes = match classes {
            Some(c) => c,
            None => bail!(
                "{}: output '{output}' has a dynamic class dimension; cannot tell the class count",
                r.name()
            ),
        };
        // Every label must name one of the model's classes, checked before any run.
        if let Some(i) = (0..n).find(|&i| !(0..classes as i64).contains(&ds.label(i))) {
            bail!(
                "{}: sample {i} has label {}, outside the {classes} classes of model {} (output '{output}')",
                ds.identity().path,
                ds.label(i),
                r.name()
            );
        }
        subjects.push(Subject {
            acc: AccuracyAccumulator::new(classes),
            runner: r,
            input,
            output,
            classes,
            run_time: Duration::ZERO,
        });
    }
    let ort_version = subjects[0].runner.ort_version().to_string();
    let device = subjects[0].runner.config().device;

    let bar = progress_bar(n as u64, cfg.progress);
    let start = Instant::now();
    let (rx, handle) = loader::spawn(ds.clone(), Arc::new(preset.clone()), cfg.loader);
    let mut skipped: Vec<String> = Vec::new();
    let mut skipped_count = 0usize;
    for batch in rx {
        let batch = batch?;
        skipped_count += batch.skipped.len();
        for (_, msg) in &batch.skipped {
            if skipped.len() < 10 {
                skipped.push(msg.clone());
            }
            bar.println(format!("skipped: {msg}"));
        }
        if !batch.labels.is_empty() {
            for s in &mut subjects {
                run_batch(s, &batch, preset)?;
            }
        }
        bar.inc((batch.labels.len() + batch.skipped.len()) as u64);
    }
    // The loader only ends early after sending an error, which the loop above returned; joining surfaces panics.
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("the data loading thread panicked"))?;
    bar.finish_and_clear();
    let elapsed = start.elapsed().as_secs_f64();
    let evaluated = subjects[0].acc.samples();
    if evaluated == 0 {
        bail!("no sample could be evaluated ({skipped_count} corrupt images skipped)");
    }

    let names = ds.class_names();
    let summaries: Vec<AccuracySummary> = subjects.iter().map(|s| s.acc.summary(names)).collect();
    let models = subjects
        .iter()
        .zip(&summaries)
        .map(|(s, m)| schema::ModelResult {
            path: s.runner.name().to_string(),
            sha256: s.runner.sha256().map(str::to_string),
            input: s.input.clone(),
            output: s.output.clone(),
            samples: m.samples,
            top1: m.top1,
            top5: m.top5,
            top_k: m.top_k,
            mean_loss: m.mean_loss,
            run_seconds: s.run_time.as_secs_f64(),
            per_class: m
                .per_class
                .iter()
                .map(|c| schema::ClassResult {
                    class: c.class,
                    name: c.name.clone(),
                    count: c.count,
                    correct: c.correct,
                    accuracy: c.accuracy,
                })
                .collect(),
            confusion: m.confusion.clone(),
        })
        .collect();
    let base = &subjects[0];
    let comparisons = subjects[1..]
        .iter()
        .map(|s| {
            let m = stats::mcnemar(&base.acc.correct, &s.acc.correct);
            let ci = stats::bootstrap_diff(&base.acc.correct, &s.acc.correct, cfg.bootstrap, 0.95, cfg.seed);
            schema::Comparison {
                baseline: base.runner.name().to_string(),
                model: s.runner.name().to_string(),
                agreement: stats::agreement(&base.acc.predictions, &s.acc.predictions),
                baseline_only_correct: m.only_first,
                model_only_correct: m.only_second,
                mcnemar_p: m.p_value,
                top1_diff: ci.diff,
                ci_low: ci.low,
                ci_high: ci.high,
                ci_level: ci.level,
                bootstrap_resamples: ci.resamples,
                bootstrap_seed: ci.seed,
            }
        })
        .collect();
    let id = ds.identity();
    Ok(schema::EvalRecord {
        schema: schema::EVAL_SCHEMA.into(),
        provenance: to_schema_provenance(Provenance::with_ort_version(device, ort_version))?,
        data: schema::DataInfo {
            path: id.path.clone(),
            format: id.format.clone(),
            split: id.split.clone(),
            count: id.count,
            sha256: id.sha256.clone(),
            hashed: id.hashed.clone(),
            limit: cfg.loader.limit,
            evaluated,
            skipped_corrupt: skipped_count,
            skipped_examples: skipped,
        },
        preset: schema::PresetInfo {
            name: preset.name.clone(),
            fingerprint: preset.fingerprint(),
            pipeline: serde_json::to_value(&preset.pipeline)?,
        },
        run: schema::RunInfo {
            batch: cfg.loader.batch,
            intra_threads: threads,
            seconds: elapsed,
            samples_per_second: evaluated as f64 / elapsed,
        },
        models,
        comparisons,
    })
}

fn to_schema_provenance(p: Provenance) -> Result<schema::Provenance> {
    Ok(serde_json::from_value(serde_json::to_value(p)?)?)
}

/// Feed one batch to one model and score its output.
fn run_batch(s: &mut Subject, batch: &Batch, preset: &Preset) -> Result<()> {
    let b = batch.labels.len();
    let [h, w, c] = batch.dims;
    let shape = match preset.pipeline.layout {
        Layout::Nchw => vec![b, c, h, w],
        Layout::Nhwc => vec![b, h, w, c],
    };
    let t = Instant::now();
    let half_buf: Vec<half::f16>;
    let feed = match preset.pipeline.dtype {
        DType::F32 => Feed::F32(ArrayViewD::from_shape(IxDyn(&shape), &batch.data)?),
        DType::F16 => {
            half_buf = batch.data.iter().map(|&x| half::f16::from_f32(x)).collect();
            Feed::F16(ArrayViewD::from_shape(IxDyn(&shape), &half_buf)?)
        }
    };
    let out = s
        .runner
        .run_select(&[(s.input.as_str(), feed)], &[s.output.as_str()])
        .with_context(|| format!("running {} on samples {}..", s.runner.name(), batch.indices[0]))?;
    s.run_time += t.elapsed();
    let scores = out.get(&s.output)?;
    if scores.len() != b * s.classes {
        bail!(
            "{}: output '{}' has shape {:?} for a batch of {b}; expected {b} × {} class scores",
            s.runner.name(),
            s.output,
            scores.shape(),
            s.classes
        );
    }
    match scores.as_slice() {
        Some(v) => s.acc.add_batch(v, &batch.labels),
        None => s
            .acc
            .add_batch(&scores.iter().copied().collect::<Vec<_>>(), &batch.labels),
    }
    Ok(())
}

fn progress_bar(n: u64, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(Some(n), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} samples  {per_sec}  eta {eta}") {
        bar.set_style(style);
    }
    bar
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

fn write_table(w: &mut impl Write, r: &schema::EvalRecord, confusion: bool) -> std::io::Result<()> {
    let d = &r.data;
    writeln!(
        w,
        "data     {} ({}{}, {} of {} samples, sha256 {} of {})",
        d.path,
        d.format,
        d.split.as_deref().map(|s| format!(" {s}")).unwrap_or_default(),
        d.evaluated,
        d.count,
        &d.sha256[..12],
        d.hashed
    )?;
    if d.skipped_corrupt > 0 {
        writeln!(w, "skipped  {} corrupt images", d.skipped_corrupt)?;
    }
    writeln!(
        w,
        "preset   {} (fingerprint {})",
        r.preset.name,
        &r.preset.fingerprint[..12]
    )?;
    let p = &r.provenance;
    writeln!(
        w,
        "run      ORT {} {} on {} ({} cores), batch {}, {:.2} s, {:.0} samples/s",
        p.ort_version,
        p.execution_provider,
        p.machine.cpu_model,
        p.machine.cores,
        r.run.batch,
        r.run.seconds,
        r.run.samples_per_second
    )?;
    writeln!(w)?;
    writeln!(
        w,
        "{:<40} {:>8} {:>8} {:>8} {:>9}  sha256",
        "model", "top-1", "top-k", "loss", "run s"
    )?;
    for m in &r.models {
        writeln!(
            w,
            "{:<40} {:>8} {:>8} {:>8.4} {:>9.3}  {}",
            m.path,
            pct(m.top1),
            format!("{}@{}", pct(m.top5), m.top_k),
            m.mean_loss,
            m.run_seconds,
            m.sha256.as_deref().map_or("-", |s| &s[..12])
        )?;
    }
    if !r.comparisons.is_empty() {
        writeln!(w)?;
        let c0 = &r.comparisons[0];
        writeln!(
            w,
            "vs {} (paired bootstrap: {} resamples, seed {}):",
            c0.baseline, c0.bootstrap_resamples, c0.bootstrap_seed
        )?;
        writeln!(
            w,
            "{:<40} {:>9} {:>10} {:>10} {:>22}",
            "model", "agree", "McNemar p", "Δ top-1", "95% CI (bootstrap)"
        )?;
        for c in &r.comparisons {
            writeln!(
                w,
                "{:<40} {:>9} {:>10.4} {:>+10.4} {:>22}",
                c.model,
                pct(c.agreement),
                c.mcnemar_p,
                c.top1_diff,
                format!("[{:+.4}, {:+.4}]", c.ci_low, c.ci_high)
            )?;
        }
    }
    for m in &r.models {
        writeln!(w)?;
        writeln!(w, "per class, {}:", m.path)?;
        for c in &m.per_class {
            let acc = c.accuracy.map_or("-".into(), pct);
            writeln!(
                w,
                "  {:>4} {:<20} {:>6}/{:<6} {:>8}",
                c.class, c.name, c.correct, c.count, acc
            )?;
        }
        if confusion {
            writeln!(w, "confusion (row = true, column = predicted):")?;
            for row in &m.confusion {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:>5}")).collect();
                writeln!(w, "  {}", cells.join(""))?;
            }
        }
    }
    Ok(())
}

fn write_csv(w: &mut impl Write, r: &schema::EvalRecord) -> std::io::Result<()> {
    let esc = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    writeln!(
        w,
        "model,model_sha256,data_sha256,preset_fingerprint,class,name,count,correct,accuracy"
    )?;
    for m in &r.models {
        let sha = m.sha256.as_deref().unwrap_or("");
        let head = format!("{},{sha},{},{}", esc(&m.path), r.data.sha256, r.preset.fingerprint);
        writeln!(
            w,
            "{head},all,all,{},{},{}",
            m.samples,
            (m.top1 * m.samples as f64).round() as u64,
            m.top1
        )?;
        for c in &m.per_class {
            let acc = c.accuracy.map(|a| a.to_string()).unwrap_or_default();
            writeln!(w, "{head},{},{},{},{},{acc}", c.class, esc(&c.name), c.count, c.correct)?;
        }
    }
    Ok(())
}

//! Batch accuracy of one or more models on one dataset: every model sees the same decoded batches, and the
//! record holds top-1/top-5, loss, per-class accuracy, the confusion matrix and, against the first model, the
//! paired per-sample tests (McNemar, bootstrap interval of the difference, agreement).
//!
//! The engine behind `ratio eval`, the eval benchmark and the sweep's eval step; the command only parses flags and
//! renders.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ndarray::{ArrayViewD, IxDyn};
use reports::schema::eval as schema;

use crate::analysis::accuracy::{AccuracyAccumulator, AccuracySummary};
use crate::analysis::stats;
use crate::data::loader::{self, Batch, LoaderConfig, OnCorrupt};
use crate::data::preprocess::{DType, Layout, Preset};
use crate::data::{self, Dataset};
use crate::provenance::{Collect, Provenance};
use crate::runtime::{ElemType, Feed, Runner};

/// Everything [`evaluate`] needs besides the models and the data.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    pub loader: LoaderConfig,
    pub output: Option<String>,
    pub bootstrap: usize,
    pub seed: u64,
    pub progress: bool,
    /// Keep every sample's index, label and predictions in the record.
    pub per_sample: bool,
}

/// What [`evaluate`] measured, and where.
#[derive(Debug, Clone)]
pub struct Evaluated {
    pub body: schema::EvalBody,
    pub provenance: Provenance,
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
) -> Result<Evaluated> {
    let n = cfg.loader.samples(ds.as_ref());
    if n == 0 {
        bail!(
            "{}: no samples to evaluate (the set holds {}, --limit {:?})",
            ds.identity().path,
            ds.len(),
            cfg.loader.limit
        );
    }
    // Decode the first readable sample to learn the image size the preset receives (under `--on-corrupt skip`
    // leading corrupt images are passed over here as they will be in the run).
    let first = first_sample(ds.as_ref(), n, cfg.loader.on_corrupt)?;
    let hwc = [first.image.height, first.image.width, first.image.channels];
    let mut subjects = subjects(runners, ds.as_ref(), n, preset, cfg, hwc)?;
    let ort_version = subjects[0].runner.ort_version().to_string();
    let device = subjects[0].runner.config().device;
    let scored = score(&mut subjects, &ds, n, preset, cfg)?;
    let body = body(&subjects, ds.as_ref(), preset, cfg, threads, scored)?;
    Ok(Evaluated {
        body,
        provenance: Provenance::with_ort_version(device, ort_version),
    })
}

/// What the batch loop saw besides the accumulated scores.
struct Scored {
    seconds: f64,
    evaluated: usize,
    skipped_count: usize,
    skipped: Vec<String>,
    indices: Vec<usize>,
    labels: Vec<u32>,
}

/// Each model with its resolved input and output, after checking that the preset's images fit it and that every
/// label names one of its classes, all before any run.
fn subjects(
    runners: Vec<Runner>,
    ds: &dyn Dataset,
    n: usize,
    preset: &Preset,
    cfg: &EvalConfig,
    hwc: [usize; 3],
) -> Result<Vec<Subject>> {
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
    Ok(subjects)
}

/// Stream the data once through the loader and score every model on every batch.
fn score(
    subjects: &mut [Subject],
    ds: &Arc<dyn Dataset>,
    n: usize,
    preset: &Preset,
    cfg: &EvalConfig,
) -> Result<Scored> {
    let bar = crate::printer::progress_bar(
        n as u64,
        "{bar:40} {pos}/{len} samples  {per_sec}  eta {eta}",
        cfg.progress,
    );
    let start = Instant::now();
    let (rx, handle) = loader::spawn(ds.clone(), Arc::new(preset.clone()), cfg.loader);
    let mut skipped: Vec<String> = Vec::new();
    let mut skipped_count = 0usize;
    let (mut indices, mut labels) = (Vec::new(), Vec::new());
    for batch in rx {
        let batch = batch?;
        if cfg.per_sample {
            indices.extend_from_slice(&batch.indices);
            labels.extend(batch.labels.iter().map(|&l| l as u32));
        }
        skipped_count += batch.skipped.len();
        for (_, msg) in &batch.skipped {
            if skipped.len() < 10 {
                skipped.push(msg.clone());
            }
            bar.println(format!("skipped: {msg}"));
        }
        if !batch.labels.is_empty() {
            for s in subjects.iter_mut() {
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

    Ok(Scored {
        seconds: elapsed,
        evaluated,
        skipped_count,
        skipped,
        indices,
        labels,
    })
}

/// The record: per-model results, comparisons with the first model, data, preset and run settings.
fn body(
    subjects: &[Subject],
    ds: &dyn Dataset,
    preset: &Preset,
    cfg: &EvalConfig,
    threads: Option<usize>,
    scored: Scored,
) -> Result<schema::EvalRecord> {
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
            predictions: cfg.per_sample.then(|| schema::Classes(s.acc.predictions.clone())),
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
                ci_low: (ci.resamples > 0).then_some(ci.low),
                ci_high: (ci.resamples > 0).then_some(ci.high),
                ci_level: ci.level,
                bootstrap_resamples: ci.resamples,
                bootstrap_seed: ci.seed,
            }
        })
        .collect();
    let id = ds.identity();
    Ok(schema::EvalRecord {
        data: schema::DataInfo {
            path: id.path.clone(),
            format: id.format.clone(),
            split: id.split.clone(),
            count: id.count,
            sha256: id.sha256.clone(),
            hashed: id.hashed.clone(),
            limit: cfg.loader.limit,
            evaluated: scored.evaluated,
            skipped_corrupt: scored.skipped_count,
            skipped_examples: scored.skipped,
        },
        preset: schema::PresetInfo {
            name: preset.name.clone(),
            fingerprint: preset.fingerprint(),
            pipeline: serde_json::to_value(&preset.pipeline)?,
        },
        run: schema::RunInfo {
            batch: cfg.loader.batch,
            intra_threads: threads,
            seconds: scored.seconds,
            samples_per_second: scored.evaluated as f64 / scored.seconds,
        },
        models,
        comparisons,
        samples: cfg.per_sample.then_some(schema::SampleSet {
            indices: schema::Indices(scored.indices),
            labels: schema::Classes(scored.labels),
        }),
    })
}

fn first_sample(ds: &dyn Dataset, n: usize, on_corrupt: OnCorrupt) -> Result<data::Sample> {
    let context = || format!("reading the first sample of {}", ds.identity().path);
    for i in 0..n {
        match ds.sample(i) {
            Ok(s) => return Ok(s),
            Err(data::DataError::Corrupt { .. }) if on_corrupt == OnCorrupt::Skip => continue,
            Err(e) => return Err(e).with_context(context),
        }
    }
    bail!("{}: every selected image is corrupt", ds.identity().path)
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

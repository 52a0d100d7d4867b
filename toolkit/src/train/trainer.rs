//! The one loop behind `ratio finetune` and `ratio train`, in phases: setup and resume ([`Plan::new`]), the epoch
//! loop (`epoch.rs`), validation and checkpoints, and export (`artifacts.rs`). Shuffle and augmentation streams
//! are derived from (seed, epoch), not carried, so `--resume` is exact.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use converters::Model;
use converters::autodiff::{BnMode, Optimizer, TrainStep, TrainStepConfig, build_train_step};
use ndarray::ArrayD;
use regex::Regex;
use serde::Serialize;

use crate::provenance::{Collect, Provenance};
use crate::runtime::RuntimeConfig;
use crate::train::artifacts::RunFiles;
use crate::train::augment::Augment;
use crate::train::checkpoint::{self, Header, SlotMeta};
use crate::train::data::{DataInfo, SampleSet};
use crate::train::epoch::{self, EpochStats};
use crate::train::schedule::{Schedule, ScheduleKind};
use crate::train::session::{self, Residency, Stepper};

/// A rewrite applied to every inference model the loop produces: the one validated each epoch and the ones
/// written (`best.onnx`, `model.onnx`). `ratio finetune --bn reinsert` folds its inserted BatchNormalization
/// back into the convolutions with it.
pub type ExportHook = Arc<dyn Fn(&Model) -> Result<Model> + Send + Sync>;

#[derive(Clone)]
pub struct TrainOptions {
    pub epochs: u64,
    pub batch: usize,
    pub lr: f32,
    pub schedule: ScheduleKind,
    pub warmup_steps: u64,
    pub step_every_epochs: u64,
    pub gamma: f32,
    pub optimizer: Optimizer,
    pub bn: BnMode,
    pub freeze: Option<Regex>,
    pub train_only: Option<Regex>,
    pub label_smoothing: f32,
    pub seed: u64,
    pub augment: Augment,
    /// Use only the first N training samples (quick runs, CI-size tests).
    pub train_limit: Option<usize>,
    /// Stop after this many epochs of the planned `epochs` (the schedule still spans all of them), e.g. to
    /// split a run across jobs and `--resume`.
    pub stop_after: Option<u64>,
    pub runtime: RuntimeConfig,
    /// Where parameters and optimizer state live between steps.
    pub residency: Residency,
    /// Read the logits back (for the train accuracy) on every k-th step of an epoch only.
    pub train_acc_every: u64,
    /// Training batches decoded ahead of the step.
    pub prefetch: usize,
    pub out_dir: PathBuf,
    pub resume: Option<PathBuf>,
    pub emit_graph: Option<PathBuf>,
    pub progress: bool,
    pub export: Option<ExportHook>,
}

impl TrainOptions {
    pub fn new(out_dir: PathBuf) -> Self {
        TrainOptions {
            epochs: 1,
            batch: 64,
            lr: 0.05,
            schedule: ScheduleKind::Constant,
            warmup_steps: 0,
            step_every_epochs: 30,
            gamma: 0.1,
            optimizer: Optimizer::default(),
            bn: BnMode::Train,
            freeze: None,
            train_only: None,
            label_smoothing: 0.0,
            seed: 0,
            augment: Augment::default(),
            train_limit: None,
            stop_after: None,
            runtime: RuntimeConfig::cpu(),
            residency: Residency::default(),
            train_acc_every: 10,
            prefetch: 2,
            out_dir,
            resume: None,
            emit_graph: None,
            progress: true,
            export: None,
        }
    }
}

/// Where every number below came from.
#[derive(Debug, Clone, Serialize)]
pub struct RunIdentity {
    pub model: String,
    pub model_sha256: String,
    pub data: DataInfo,
    pub val_data: DataInfo,
    pub seed: u64,
    pub batch: usize,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub bn: String,
    pub augment: Augment,
    pub residency: Residency,
    pub train_acc_every: u64,
    pub trainable_params: usize,
    /// What the train-step builder changed so the export trains (static batch rewritten, exporter-tied tensors
    /// untied), one line per kind; empty when the model trains as it is.
    pub adaptations: Vec<String>,
    /// The NCHWc block the step's eligible convolutions run on ([`crate::runtime::nchwc`]); `None`: ORT's plain
    /// kernels. It changes float summation order, so a bit-exact rerun needs the same value.
    pub nchwc_block: Option<i64>,
    pub threads: Option<usize>,
    pub provenance: Provenance,
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    pub epoch: u64,
    pub steps: u64,
    pub train_loss: f64,
    /// Top-1 on the batches whose logits were read back (every `train_acc_every`-th step).
    pub train_acc: f64,
    pub train_acc_samples: usize,
    pub val_acc: f64,
    pub lr: f32,
    pub seconds: f64,
    pub images_per_s: f64,
    /// Time the step loop stood waiting for the next decoded batch, and its share of the loop's wall time.
    pub data_wait_s: f64,
    pub data_wait_fraction: f64,
    /// Time inside the train step itself (upload, run, read-back).
    pub step_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainOutcome {
    pub identity: RunIdentity,
    pub epochs: Vec<EpochRecord>,
    pub initial_val_acc: Option<f64>,
    pub best_val_acc: f64,
    pub final_val_acc: f64,
    pub model_path: PathBuf,
    pub best_model_path: PathBuf,
    pub last_checkpoint: PathBuf,
    pub seconds: f64,
}

fn model_sha(model: &Model) -> Result<String> {
    Ok(match &model.source_sha256 {
        Some(s) => s.clone(),
        None => converters::ir::model::sha256_hex(&model.to_inline_bytes()?),
    })
}

fn check_options(opts: &TrainOptions, n_train: usize, data: &SampleSet) -> Result<()> {
    if opts.lr.is_nan() || opts.lr <= 0.0 || opts.lr.is_infinite() {
        bail!("learning rate must be a positive number, got {}", opts.lr);
    }
    if opts.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if opts.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if opts.train_acc_every == 0 {
        bail!("--train-acc-every must be at least 1");
    }
    if opts.batch > n_train {
        bail!(
            "batch size {} is larger than the {} training samples of {}",
            opts.batch,
            n_train,
            data.info.path
        );
    }
    opts.augment.check().map_err(anyhow::Error::msg)
}

/// Phase 1: everything decided before a session or a file exists. Any bad input fails here, with nothing
/// written.
struct Plan {
    step: TrainStep,
    data: SampleSet,
    sha: String,
    slots: Vec<SlotMeta>,
    schedule: Schedule,
    identity: RunIdentity,
    resumed: Option<(Header, Vec<ArrayD<f32>>)>,
}

impl Plan {
    fn new(model: &Model, data: &SampleSet, val: &SampleSet, opts: &TrainOptions) -> Result<Self> {
        let n_train = opts.train_limit.map_or(data.len(), |l| l.min(data.len()));
        check_options(opts, n_train, data)?;
        let step = build_step(model, opts)?;
        check_shapes(model, &step, data, val, &opts.augment)?;
        let sha = model_sha(model)?;
        let slots: Vec<SlotMeta> = step
            .state
            .iter()
            .map(|s| SlotMeta {
                name: s.name.clone(),
                input: s.input.clone(),
                dims: s.dims.clone(),
            })
            .collect();
        let resumed = match &opts.resume {
            Some(p) => Some(load_resume(p, &sha, &slots)?),
            None => None,
        };
        let steps_per_epoch = (n_train / opts.batch) as u64;
        let schedule = Schedule {
            kind: opts.schedule,
            base_lr: opts.lr,
            warmup_steps: opts.warmup_steps,
            total_steps: steps_per_epoch * opts.epochs,
            steps_per_epoch,
            step_every_epochs: opts.step_every_epochs,
            gamma: opts.gamma,
        };
        let identity = RunIdentity {
            model: model.display_name(),
            model_sha256: sha.clone(),
            data: data.info.clone(),
            val_data: val.info.clone(),
            seed: opts.seed,
            batch: opts.batch,
            optimizer: opts.optimizer,
            schedule,
            bn: format!("{:?}", opts.bn).to_lowercase(),
            augment: opts.augment,
            residency: opts.residency,
            train_acc_every: opts.train_acc_every,
            trainable_params: step.num_params(),
            adaptations: converters::autodiff::summarize(&step.adaptations),
            nchwc_block: crate::runtime::nchwc::block(&opts.runtime),
            threads: opts.runtime.intra_threads,
            provenance: Provenance::collect(opts.runtime.device)?,
        };
        Ok(Plan {
            step,
            data: data.truncated(n_train),
            sha,
            slots,
            schedule,
            identity,
            resumed,
        })
    }
}

fn build_step(model: &Model, opts: &TrainOptions) -> Result<TrainStep> {
    let cfg = TrainStepConfig {
        batch_size: opts.batch as i64,
        label_smoothing: opts.label_smoothing,
        optimizer: opts.optimizer,
        bn: opts.bn,
        freeze: opts.freeze.clone(),
        train_only: opts.train_only.clone(),
        ..Default::default()
    };
    build_train_step(model, &cfg).with_context(|| format!("building the train step of {}", model.display_name()))
}

/// The model's per-sample input against the training view (after augmentation) and the validation view (the
/// preset), and every label against its classes.
fn check_shapes(model: &Model, step: &TrainStep, data: &SampleSet, val: &SampleSet, augment: &Augment) -> Result<()> {
    let want = &step.input_shape[1..];
    let as_i64 = |s: [usize; 3]| s.iter().map(|&d| d as i64).collect::<Vec<_>>();
    let train_shape = as_i64(augment.train_shape(data.sample_shape));
    if want != train_shape.as_slice() {
        let how = if augment.random_resized_crop.is_some() {
            " after --random-resized-crop"
        } else {
            ""
        };
        bail!(
            "{} expects inputs {:?} per sample; {} provides {:?}{how}",
            model.display_name(),
            want,
            data.info.path,
            train_shape
        );
    }
    if want != as_i64(val.sample_shape).as_slice() {
        bail!(
            "{} expects inputs {:?} per sample; validation ({}, preset '{}') provides {:?}",
            model.display_name(),
            want,
            val.info.split,
            val.info.preprocess,
            val.sample_shape
        );
    }
    let k = step.num_classes as usize;
    for set in [data, val] {
        if let Some((i, l)) = set.bad_label(k) {
            bail!(
                "{} ({}): label {l} of sample {i} is outside the model's {k} classes",
                set.info.path,
                set.info.split
            );
        }
    }
    Ok(())
}

fn load_resume(p: &std::path::Path, sha: &str, slots: &[SlotMeta]) -> Result<(Header, Vec<ArrayD<f32>>)> {
    let (h, state) = checkpoint::load(p)?;
    if h.model_sha256 != sha {
        bail!(
            "{}: checkpoint belongs to a different model (sha256 {}…, this run's model {}…)",
            p.display(),
            &h.model_sha256[..12.min(h.model_sha256.len())],
            &sha[..12]
        );
    }
    if h.slots != slots {
        bail!(
            "{}: checkpoint state layout differs from this run's train step (other optimizer, --bn, --freeze or --train-only?)",
            p.display()
        );
    }
    Ok((h, state))
}

/// Phase 3: validate the epoch's weights, write the checkpoints (and `best.onnx` on a new best) and the metrics
/// line, and report.
#[allow(clippy::too_many_arguments)]
fn finish_epoch(
    files: &mut RunFiles,
    sess: &dyn Stepper,
    val: &SampleSet,
    opts: &TrainOptions,
    stamp: &Header,
    identity: &RunIdentity,
    e: u64,
    stats: &EpochStats,
    best: &mut Option<f64>,
) -> Result<EpochRecord> {
    let (inference, val_acc) = files.validate(sess, val, opts)?;
    files.log_steps(&stats.curve)?;
    let rec = stats.record(e + 1, sess.steps_taken(), val_acc);
    let improved = best.is_none_or(|b| val_acc > b);
    if improved {
        *best = Some(val_acc);
    }
    let header = Header {
        epoch: e + 1,
        steps_taken: sess.steps_taken(),
        best_val_acc: *best,
        ..stamp.clone()
    };
    files.checkpoint(sess, &header, improved.then_some(&inference), identity, &rec)?;
    if opts.progress {
        crate::status!(
            "epoch {}/{}: loss {:.4}, train acc {:.4}, val acc {:.4}, {:.1}s ({:.0} img/s, {:.1}% waiting on data)",
            rec.epoch,
            opts.epochs,
            rec.train_loss,
            rec.train_acc,
            rec.val_acc,
            rec.seconds,
            rec.images_per_s,
            rec.data_wait_fraction * 100.0
        );
    }
    Ok(rec)
}

/// Run the loop. Nothing is written before every input has been checked.
pub fn train(model: &Model, data: &SampleSet, val: &SampleSet, opts: &TrainOptions) -> Result<TrainOutcome> {
    let plan = Plan::new(model, data, val, opts)?;
    // Said even without progress output: these change what is trained, and the user should know.
    for line in &plan.identity.adaptations {
        crate::status!("adapted for training: {line}");
    }
    let t0 = Instant::now();
    // The session is created before any output exists, so a bad device or graph leaves nothing behind.
    let graph = opts.emit_graph.as_ref().map(|_| plan.step.model.clone());
    let mut sess = session::open(plan.step, &opts.runtime, opts.residency)?;
    let (start_epoch, mut best) = match plan.resumed {
        Some((h, state)) => {
            sess.load_state(state, h.steps_taken)?;
            (h.epoch, h.best_val_acc)
        }
        None => (0, None),
    };
    let mut files = RunFiles::create(&opts.out_dir, &plan.identity, graph, opts)?;
    let initial_val_acc = if start_epoch == 0 {
        Some(files.validate(sess.as_ref(), val, opts)?.1)
    } else {
        None
    };
    let mut records = Vec::new();
    let mut final_acc = initial_val_acc.unwrap_or(0.0);
    let end_epoch = opts.stop_after.map_or(opts.epochs, |s| s.min(opts.epochs));
    // Every checkpoint of this run: epoch, step count and best accuracy filled in per epoch.
    let stamp = Header {
        model_sha256: plan.sha,
        slots: plan.slots,
        epoch: 0,
        steps_taken: 0,
        best_val_acc: None,
        seed: opts.seed,
    };
    for e in start_epoch..end_epoch {
        let stats = epoch::run(sess.as_mut(), &plan.data, &plan.schedule, e, opts, files.last_ckpt())?;
        let rec = finish_epoch(
            &mut files,
            sess.as_ref(),
            val,
            opts,
            &stamp,
            &plan.identity,
            e,
            &stats,
            &mut best,
        )?;
        final_acc = rec.val_acc;
        records.push(rec);
    }
    files.export(
        sess.as_ref(),
        opts,
        &plan.identity,
        final_acc,
        end_epoch.max(start_epoch),
    )?;
    Ok(TrainOutcome {
        identity: plan.identity,
        epochs: records,
        initial_val_acc,
        best_val_acc: best.unwrap_or(final_acc),
        final_val_acc: final_acc,
        model_path: files.model_path(),
        best_model_path: files.best_model_path(),
        last_checkpoint: files.last_ckpt().to_path_buf(),
        seconds: t0.elapsed().as_secs_f64(),
    })
}

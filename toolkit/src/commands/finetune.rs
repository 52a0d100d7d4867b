//! `ratio finetune MODEL.onnx --data … --preset … --epochs E --batch B --lr …`: fine-tune an ONNX checkpoint
//! with a generated train-step graph on ONNX Runtime, writing the fine-tuned inference model, checkpoints and
//! metrics into `--out`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use converters::Model;
use converters::autodiff::{BnMode, Optimizer};
use regex::Regex;
use reports::schema::train::{
    AugmentSettings, EpochRecord, OptimizerSettings, RandomResizedCropSettings, ScheduleSettings, TrainBody,
};
use reports::schema::{FileRef, Record};

use super::args::{DataArgs, OutputArgs, RuntimeArgs};
use crate::data::{Format, Split};
use crate::train::Residency;
use crate::train::augment::{Augment, ColorJitter, RandomResizedCrop};
use crate::train::data::{DataSpec, SampleSet, load};
use crate::train::schedule::ScheduleKind;
use crate::train::{TrainOptions, TrainOutcome, train};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OptKind {
    Sgd,
    Adamw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BnArg {
    /// Batch statistics, running statistics updated (PyTorch train mode).
    Train,
    /// Stored statistics; γ/β still train.
    Frozen,
    /// For BN-folded models: BatchNormalization inserted after every convolution (identity on the conv outputs'
    /// statistics over the first 512 training samples), trained with batch statistics, folded back on export.
    Reinsert,
}

/// `LO,HI` as two numbers.
fn pair(s: &str) -> Result<[f64; 2], String> {
    let bad = || format!("expected LO,HI (two numbers), got '{s}'");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    Ok([
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    ])
}

fn regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| format!("invalid regex '{s}': {e}"))
}

/// Arguments shared by `finetune` and `train`: data, optimisation, and where results go.
#[derive(Debug, Clone, clap::Args)]
pub struct LoopArgs {
    #[command(flatten)]
    pub input: DataArgs,
    /// Dataset format (guessed from the path when absent).
    #[arg(long)]
    pub format: Option<Format>,
    /// Split to train on. With `train` on a set that has splits, the test split validates; otherwise every
    /// fifth sample is held out for validation.
    #[arg(long, value_enum, default_value_t = Split::Train)]
    pub split: Split,
    #[arg(long, default_value_t = 1)]
    pub epochs: u64,
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    #[arg(long, allow_negative_numbers = true)]
    pub lr: f32,
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptKind,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    #[arg(long)]
    pub nesterov: bool,
    /// Applied to weights (rank ≥ 2) only.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    #[arg(long, value_enum, default_value = "constant")]
    pub schedule: ScheduleKind,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 0)]
    pub warmup_steps: u64,
    /// `--schedule step`: decay every this many epochs.
    #[arg(long, default_value_t = 30)]
    pub step_every: u64,
    #[arg(long, default_value_t = 0.1)]
    pub gamma: f32,
    #[arg(long, default_value_t = 0.0)]
    pub label_smoothing: f32,
    #[arg(long, value_enum, default_value = "train")]
    pub bn: BnArg,
    /// Keep initializers whose name matches frozen.
    #[arg(long, value_parser = regex)]
    pub freeze: Option<Regex>,
    /// Train only initializers whose name matches.
    #[arg(long, value_parser = regex)]
    pub train_only: Option<Regex>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Random crop after padding by this many pixels (0 = off).
    #[arg(long, default_value_t = 0)]
    pub crop_pad: usize,
    /// Random horizontal flips.
    #[arg(long)]
    pub hflip: bool,
    /// Train on torchvision's RandomResizedCrop to SIZE×SIZE (replaces the preset's resize and centre crop for
    /// training; validation keeps the preset).
    #[arg(long, value_name = "SIZE")]
    pub random_resized_crop: Option<usize>,
    /// RandomResizedCrop's range of the crop's area fraction.
    #[arg(long, value_parser = pair, default_value = "0.08,1", value_name = "LO,HI")]
    pub rrc_scale: [f64; 2],
    /// RandomResizedCrop's range of the crop's aspect ratio (width / height).
    #[arg(long, value_parser = pair, default_value = "0.75,1.3333333333333333", value_name = "LO,HI")]
    pub rrc_ratio: [f64; 2],
    /// Colour jitter: brightness factor drawn from [max(0, 1−B), 1+B] (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub brightness: f32,
    /// Colour jitter: contrast factor drawn from [max(0, 1−C), 1+C] (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub contrast: f32,
    /// Colour jitter: saturation factor drawn from [max(0, 1−S), 1+S] (0 = off).
    #[arg(long, default_value_t = 0.0)]
    pub saturation: f32,
    /// Training batches decoded ahead of the step.
    #[arg(long, default_value_t = 2)]
    pub prefetch: usize,
    /// Where parameters and optimizer state live between steps: device (session memory, IoBinding; only the
    /// batch, labels and lr go in, the loss comes out) or host (copied every step).
    #[arg(long, value_enum, default_value = "device")]
    pub state: Residency,
    /// Read the logits back for the train accuracy on every K-th step only.
    #[arg(long, default_value_t = 10, value_name = "K")]
    pub train_acc_every: u64,
    /// Train on the first N samples only.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Stop after this many of the planned epochs (continue later with --resume).
    #[arg(long)]
    pub stop_after: Option<u64>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Output folder: model.onnx, best.onnx, last.ckpt, best.ckpt, metrics.jsonl.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Continue from a checkpoint written by an earlier run with the same model and options.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Also write the generated train-step graph here.
    #[arg(long)]
    pub emit_graph: Option<PathBuf>,
    #[command(flatten)]
    pub record: OutputArgs,
}

impl LoopArgs {
    pub fn options(&self) -> TrainOptions {
        let mut o = TrainOptions::new(self.out.clone());
        o.epochs = self.epochs;
        o.batch = self.batch;
        o.lr = self.lr;
        o.schedule = self.schedule;
        o.warmup_steps = self.warmup_steps;
        o.step_every_epochs = self.step_every;
        o.gamma = self.gamma;
        o.optimizer = match self.optimizer {
            OptKind::Sgd => Optimizer::Sgd {
                momentum: self.momentum,
                nesterov: self.nesterov,
                weight_decay: self.weight_decay,
            },
            OptKind::Adamw => Optimizer::Adamw {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: self.weight_decay,
            },
        };
        o.bn = match self.bn {
            BnArg::Train => BnMode::Train,
            BnArg::Frozen => BnMode::Frozen,
            BnArg::Reinsert => BnMode::Train,
        };
        o.freeze = self.freeze.clone();
        o.train_only = self.train_only.clone();
        o.label_smoothing = self.label_smoothing;
        o.seed = self.seed;
        o.augment = Augment {
            crop_pad: self.crop_pad,
            hflip: self.hflip,
            random_resized_crop: self.random_resized_crop.map(|size| RandomResizedCrop {
                size,
                scale: self.rrc_scale,
                ratio: self.rrc_ratio,
            }),
            jitter: ColorJitter {
                brightness: self.brightness,
                contrast: self.contrast,
                saturation: self.saturation,
            },
        };
        o.prefetch = self.prefetch;
        o.residency = self.state;
        o.train_acc_every = self.train_acc_every;
        o.train_limit = self.train_limit;
        o.stop_after = self.stop_after;
        o.runtime = self.runtime.config();
        o.resume = self.resume.clone();
        o.emit_graph = self.emit_graph.clone();
        o.progress = crate::printer::progress_enabled();
        o
    }

    pub fn load_data(&self) -> Result<(SampleSet, SampleSet)> {
        let mut spec = DataSpec::new(&self.input.data, &self.input.preset)?;
        spec.format = self.format;
        spec.split = self.split;
        load(&spec).with_context(|| format!("loading {} with preset {}", self.input.data, self.input.preset))
    }
}

#[derive(Debug, clap::Args)]
pub struct FinetuneArgs {
    /// The ONNX model to fine-tune (its logits output must be [N, classes]).
    pub model: PathBuf,
    #[command(flatten)]
    pub run: LoopArgs,
}

pub fn run(args: FinetuneArgs) -> Result<ExitCode> {
    let mut model = Model::load(&args.model)?;
    let mut opts = args.run.options();
    if args.run.bn == BnArg::Reinsert {
        model = reinsert_bn(&model, &args.run)?;
        opts.export = Some(crate::calibrate::reinsert::fold_back_hook());
    }
    let (tr, te) = args.run.load_data()?;
    let has_bn = model
        .graph()
        .node
        .iter()
        .any(|n| n.op_type.as_deref() == Some("BatchNormalization"));
    let outcome = train(&model, &tr, &te, &opts).map_err(|e| {
        // A BN-folded export loses its normalisation with the removed activations; that is the usual cause.
        if !has_bn && e.to_string().contains("non-finite loss") {
            e.context(format!(
                "{} has no BatchNormalization (BN folded at export?): calibrate it first (`ratio calibrate`), \
                 or train with `--bn reinsert`, or lower --lr",
                args.model.display()
            ))
        } else {
            e
        }
    })?;
    report(&outcome, Some(&args.model), &args.run.record)?;
    Ok(ExitCode::SUCCESS)
}

/// `--bn reinsert`: the model with identity BatchNormalization after each convolution, on the statistics of the
/// first 512 training samples.
fn reinsert_bn(model: &Model, run: &LoopArgs) -> Result<Model> {
    use crate::calibrate::reinsert;
    use crate::calibrate::samples::{CalibData, SampleSpec};
    reinsert::check_folded(model)?;
    let mut data = CalibData::open(&SampleSpec {
        data: run.input.data.clone(),
        preset: run.input.preset.clone(),
        samples: 512,
        eval_samples: Some(1),
        batch: 64,
    })?;
    Ok(reinsert::reinsert(model, &mut data, &run.runtime.config())?.0)
}

/// The `ratio/train/v1` record of a finished run: the outcome typed by the record schema, the run's provenance,
/// the model trained from (when a file) and the files written, by sha256.
pub fn record(o: &TrainOutcome, source: Option<&std::path::Path>) -> Result<Record> {
    let id = &o.identity;
    let sch = &id.schedule;
    let body = TrainBody {
        model: id.model.clone(),
        model_sha256: id.model_sha256.clone(),
        data: id.data.clone(),
        val_data: id.val_data.clone(),
        seed: id.seed,
        batch: id.batch,
        optimizer: match id.optimizer {
            Optimizer::Sgd {
                momentum,
                nesterov,
                weight_decay,
            } => OptimizerSettings::Sgd {
                momentum,
                nesterov,
                weight_decay,
            },
            Optimizer::Adamw {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => OptimizerSettings::Adamw {
                beta1,
                beta2,
                eps,
                weight_decay,
            },
        },
        schedule: schedule_settings(sch),
        bn: id.bn.clone(),
        augment: AugmentSettings {
            crop_pad: id.augment.crop_pad,
            hflip: id.augment.hflip,
            random_resized_crop: id.augment.random_resized_crop.map(|r| RandomResizedCropSettings {
                size: r.size,
                scale: r.scale,
                ratio: r.ratio,
            }),
            brightness: id.augment.jitter.brightness,
            contrast: id.augment.jitter.contrast,
            saturation: id.augment.jitter.saturation,
        },
        residency: format!("{:?}", id.residency).to_lowercase(),
        train_acc_every: id.train_acc_every,
        adaptations: id.adaptations.clone(),
        nchwc_block: id.nchwc_block,
        trainable_params: id.trainable_params,
        threads: id.threads,
        epochs: o
            .epochs
            .iter()
            .map(|e| EpochRecord {
                epoch: e.epoch,
                steps: e.steps,
                train_loss: e.train_loss,
                train_acc: e.train_acc,
                train_acc_samples: e.train_acc_samples,
                val_acc: e.val_acc,
                lr: e.lr,
                seconds: e.seconds,
                images_per_s: e.images_per_s,
                data_wait_s: e.data_wait_s,
                data_wait_fraction: e.data_wait_fraction,
            })
            .collect(),
        initial_val_acc: o.initial_val_acc,
        best_val_acc: o.best_val_acc,
        final_val_acc: o.final_val_acc,
        model_path: o.model_path.display().to_string(),
        best_model_path: o.best_model_path.display().to_string(),
        last_checkpoint: o.last_checkpoint.display().to_string(),
        metrics_path: o.model_path.with_file_name("metrics.jsonl").display().to_string(),
        seconds: o.seconds,
    };
    let provenance = id
        .provenance
        .clone()
        .with_extra("seed", id.seed)
        .with_extra("data_sha256", id.data.sha256.clone())
        .with_extra("preset_fingerprint", id.data.preset_fingerprint.clone());
    let mut rec = crate::commands::record(&body, provenance)?;
    if let Some(src) = source {
        rec.inputs.push(FileRef {
            path: src.display().to_string(),
            sha256: id.model_sha256.clone(),
        });
    }
    for p in [&o.model_path, &o.best_model_path] {
        if p.is_file() {
            rec.outputs.push(FileRef {
                path: p.display().to_string(),
                sha256: converters::ir::model::sha256_file(p)?,
            });
        }
    }
    Ok(rec)
}

/// One line per result on stdout (or the `ratio/train/v1` record), each number with where it came from.
pub fn report(o: &TrainOutcome, source: Option<&std::path::Path>, json: &OutputArgs) -> Result<()> {
    use std::io::Write;
    if json.json.is_some() {
        json.write(&record(o, source)?)?;
        if json.to_stdout() {
            return Ok(());
        }
    }
    let mut out = std::io::stdout().lock();
    let id = &o.identity;
    writeln!(
        out,
        "model {} (sha256 {}), data {} (sha256 {}) [{}; preset {} {}], seed {}, batch {}, {} trainable params, ORT {} on {} ({} threads), {}",
        id.model,
        &id.model_sha256[..12.min(id.model_sha256.len())],
        id.data.path,
        &id.data.sha256[..12.min(id.data.sha256.len())],
        id.data.split,
        id.data.preprocess,
        &id.data.preset_fingerprint[..12.min(id.data.preset_fingerprint.len())],
        id.seed,
        id.batch,
        id.trainable_params,
        id.provenance.ort_version.as_deref().unwrap_or("?"),
        id.provenance.device_label(),
        id.threads.map_or("default".into(), |t| t.to_string()),
        id.provenance.machine.describe(),
    )?;
    if let Some(a) = o.initial_val_acc {
        writeln!(out, "val acc before: {a:.4} ({})", id.val_data.split)?;
    }
    for e in &o.epochs {
        writeln!(
            out,
            "epoch {}: train loss {:.4}, train acc {:.4}, val acc {:.4}, {:.1}s, {:.0} img/s, {:.1}% of the step loop waiting on data",
            e.epoch,
            e.train_loss,
            e.train_acc,
            e.val_acc,
            e.seconds,
            e.images_per_s,
            e.data_wait_fraction * 100.0
        )?;
    }
    writeln!(
        out,
        "final val acc {:.4}, best {:.4}, {:.1}s total; wrote {} and {}",
        o.final_val_acc,
        o.best_val_acc,
        o.seconds,
        o.model_path.display(),
        o.last_checkpoint.display()
    )?;
    Ok(())
}

/// The record's copy of a schedule. Destructured whole, so a field added to [`Schedule`] without a place in the
/// record breaks the build instead of going unrecorded.
fn schedule_settings(sch: &crate::train::schedule::Schedule) -> ScheduleSettings {
    let crate::train::schedule::Schedule {
        kind,
        base_lr,
        warmup_steps,
        total_steps,
        steps_per_epoch,
        step_every_epochs,
        gamma,
    } = *sch;
    ScheduleSettings {
        kind: format!("{kind:?}").to_lowercase(),
        base_lr,
        warmup_steps,
        total_steps,
        steps_per_epoch,
        step_every_epochs,
        gamma,
    }
}

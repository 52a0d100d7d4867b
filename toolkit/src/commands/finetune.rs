//! `ratio finetune MODEL.onnx --data … --preset … --epochs E --batch B --lr …`: fine-tune an ONNX checkpoint
//! with a generated train-step graph on ONNX Runtime, writing the fine-tuned inference model, checkpoints and
//! metrics into `--out`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use converters::Model;
use converters::autodiff::{BnMode, Optimizer};
use regex::Regex;

use crate::data::{Format, Split};
use crate::runtime::{Device, RuntimeConfig};
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
    /// Dataset path, or a name fetched by `ratio data fetch` (mnist, fashion-mnist, digits).
    #[arg(long)]
    pub data: String,
    /// Dataset format (guessed from the path when absent).
    #[arg(long)]
    pub format: Option<Format>,
    /// Split to train on. With `train` on a set that has splits, the test split validates; otherwise every
    /// fifth sample is held out for validation.
    #[arg(long, value_enum, default_value_t = Split::Train)]
    pub split: Split,
    /// Preprocessing preset name (mnist, fashion-mnist, digits, cifar10, cifar100, …) or a JSON preset file.
    #[arg(long)]
    pub preset: String,
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
    /// cpu, cuda or cuda:N (cuda needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: Device,
    /// Intra-op threads (default: ONNX Runtime's choice; 1 makes CPU runs bit-reproducible).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output folder: model.onnx, best.onnx, last.ckpt, best.ckpt, metrics.jsonl.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Continue from a checkpoint written by an earlier run with the same model and options.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Also write the generated train-step graph here.
    #[arg(long)]
    pub emit_graph: Option<PathBuf>,
    #[arg(long)]
    pub no_progress: bool,
    /// Print the full outcome (identity, per-epoch records) as JSON on stdout.
    #[arg(long)]
    pub json: bool,
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
        o.runtime = RuntimeConfig {
            device: self.device,
            intra_threads: self.threads,
            ..RuntimeConfig::default()
        };
        o.resume = self.resume.clone();
        o.emit_graph = self.emit_graph.clone();
        o.progress = !self.no_progress;
        o
    }

    pub fn load_data(&self) -> Result<(SampleSet, SampleSet)> {
        let mut spec = DataSpec::new(&self.data, &self.preset)?;
        spec.format = self.format;
        spec.split = self.split;
        load(&spec).with_context(|| format!("loading {} with preset {}", self.data, self.preset))
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
    let outcome = train(&model, &tr, &te, &opts)?;
    report(&outcome, args.run.json)?;
    Ok(ExitCode::SUCCESS)
}

/// `--bn reinsert`: the model with identity BatchNormalization after each convolution, on the statistics of the
/// first 512 training samples.
fn reinsert_bn(model: &Model, run: &LoopArgs) -> Result<Model> {
    use crate::calibrate::reinsert;
    use crate::calibrate::samples::{CalibData, SampleSpec};
    reinsert::check_folded(model)?;
    let mut data = CalibData::open(&SampleSpec {
        data: run.data.clone(),
        preset: run.preset.clone(),
        samples: 512,
        eval_samples: Some(1),
        batch: 64,
    })?;
    let cfg = RuntimeConfig {
        device: run.device,
        intra_threads: run.threads,
        ..RuntimeConfig::default()
    };
    Ok(reinsert::reinsert(model, &mut data, &cfg)?.0)
}

/// One line per result on stdout (or the full JSON), each number with where it came from.
pub fn report(o: &TrainOutcome, json: bool) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, o)?;
        writeln!(out)?;
        return Ok(());
    }
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
        id.provenance.ort_version,
        id.provenance.device,
        id.threads.map_or("default".into(), |t| t.to_string()),
        id.provenance.machine.cpu_model,
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

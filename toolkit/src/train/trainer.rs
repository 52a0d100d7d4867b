//! The one loop behind `ratio finetune` and `ratio train`: seeded shuffling and augmentation, a schedule fed to
//! the step's `lr`, validation each epoch, JSON-lines metrics, best/last checkpoints and inference models, and
//! exact `--resume` (shuffle and augmentation streams are derived from (seed, epoch), not carried).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use converters::Model;
use converters::autodiff::{BnMode, Optimizer, TrainStepConfig, build_train_step};
use ndarray::{ArrayViewD, IxDyn};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use regex::Regex;
use serde::Serialize;

use crate::provenance::Provenance;
use crate::runtime::RuntimeConfig;
use crate::train::augment::Augment;
use crate::train::checkpoint::{self, Header, SlotMeta};
use crate::train::data::TensorSet;
use crate::train::eval::{accuracy, argmax_rows};
use crate::train::schedule::{Schedule, ScheduleKind};
use crate::train::session::StepSession;

/// A rewrite applied to every inference model the loop writes (`best.onnx`, `model.onnx`). `ratio finetune --bn
/// reinsert` folds its inserted BatchNormalization back into the convolutions with it.
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
    pub data: crate::train::data::DataInfo,
    pub val_data: crate::train::data::DataInfo,
    pub seed: u64,
    pub batch: usize,
    pub optimizer: Optimizer,
    pub schedule: Schedule,
    pub bn: String,
    pub augment: Augment,
    pub trainable_params: usize,
    pub threads: Option<usize>,
    pub provenance: Provenance,
}

#[derive(Debug, Clone, Serialize)]
pub struct EpochRecord {
    pub epoch: u64,
    pub steps: u64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub val_acc: f64,
    pub lr: f32,
    pub seconds: f64,
    pub images_per_s: f64,
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
        None => {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(model.to_inline_bytes()?))
        }
    })
}

fn epoch_rng(seed: u64, epoch: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.set_stream(stream);
    r
}

fn check_options(opts: &TrainOptions, n_train: usize, data: &TensorSet) -> Result<()> {
    if opts.lr.is_nan() || opts.lr <= 0.0 || opts.lr.is_infinite() {
        bail!("learning rate must be a positive number, got {}", opts.lr);
    }
    if opts.epochs == 0 {
        bail!("--epochs must be at least 1");
    }
    if opts.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if opts.batch > n_train {
        bail!(
            "batch size {} is larger than the {} training samples of {}",
            opts.batch,
            n_train,
            data.info.path
        );
    }
    Ok(())
}

/// Run the loop. Nothing is written before every input has been checked.
pub fn train(model: &Model, data: &TensorSet, val: &TensorSet, opts: &TrainOptions) -> Result<TrainOutcome> {
    let n_train = opts.train_limit.map_or(data.len(), |l| l.min(data.len()));
    check_options(opts, n_train, data)?;
    let cfg = TrainStepConfig {
        batch_size: opts.batch as i64,
        label_smoothing: opts.label_smoothing,
        optimizer: opts.optimizer,
        bn: opts.bn,
        freeze: opts.freeze.clone(),
        train_only: opts.train_only.clone(),
        ..Default::default()
    };
    let step = build_train_step(model, &cfg)
        .with_context(|| format!("building the train step of {}", model.display_name()))?;
    let want: Vec<i64> = data.sample_shape.iter().map(|&d| d as i64).collect();
    if step.input_shape[1..] != want[..] {
        bail!(
            "{} expects inputs {:?} per sample; {} provides {:?}",
            model.display_name(),
            &step.input_shape[1..],
            data.info.path,
            want
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
        Some(p) => {
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
            Some((h, state))
        }
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
        trainable_params: step.num_params(),
        threads: opts.runtime.intra_threads,
        provenance: Provenance::collect(opts.runtime.device)?,
    };

    // The session is created before any output exists, so a bad device or graph leaves nothing behind.
    let graph = opts.emit_graph.as_ref().map(|_| step.model.clone());
    let mut sess = StepSession::new(step, &opts.runtime)?;
    std::fs::create_dir_all(&opts.out_dir).with_context(|| format!("creating {}", opts.out_dir.display()))?;
    if let (Some(g), Some(graph)) = (&opts.emit_graph, graph) {
        Model::new(graph)
            .save(g, false)
            .with_context(|| format!("writing the train-step graph to {}", g.display()))?;
    }
    let (start_epoch, mut best) = match resumed {
        Some((h, state)) => {
            sess.state = state;
            sess.steps_taken = h.steps_taken;
            (h.epoch, h.best_val_acc)
        }
        None => (0, None),
    };
    let last_ckpt = opts.out_dir.join("last.ckpt");
    let best_ckpt = opts.out_dir.join("best.ckpt");
    let model_path = opts.out_dir.join("model.onnx");
    let best_model_path = opts.out_dir.join("best.onnx");
    let metrics_path = opts.out_dir.join("metrics.jsonl");
    let mut metrics = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&metrics_path)
        .with_context(|| format!("opening {}", metrics_path.display()))?;
    writeln!(metrics, "{}", serde_json::json!({"kind": "run", "identity": identity}))?;

    let initial_val_acc = if start_epoch == 0 {
        Some(accuracy(&sess.inference_model()?, val, &opts.runtime, 256)?)
    } else {
        None
    };
    let t0 = Instant::now();
    let per = data.sample_len();
    let shape = [
        opts.batch,
        data.sample_shape[0],
        data.sample_shape[1],
        data.sample_shape[2],
    ];
    let mut xb = vec![0f32; opts.batch * per];
    let mut yb = vec![0i64; opts.batch];
    let mut records = Vec::new();
    let mut final_acc = initial_val_acc.unwrap_or(0.0);
    let end_epoch = opts.stop_after.map_or(opts.epochs, |s| s.min(opts.epochs));
    for epoch in start_epoch..end_epoch {
        let te = Instant::now();
        let mut order: Vec<usize> = (0..n_train).collect();
        order.shuffle(&mut epoch_rng(opts.seed, epoch, 0));
        let mut aug_rng = epoch_rng(opts.seed, epoch, 1);
        let pb = if opts.progress {
            indicatif::ProgressBar::new(steps_per_epoch)
        } else {
            indicatif::ProgressBar::hidden()
        };
        pb.set_style(
            indicatif::ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb.set_prefix(format!("{}/{}", epoch + 1, opts.epochs));
        let (mut loss_sum, mut correct, mut lr) = (0f64, 0usize, opts.lr);
        for s in 0..steps_per_epoch as usize {
            for (j, &i) in order[s * opts.batch..(s + 1) * opts.batch].iter().enumerate() {
                let dst = &mut xb[j * per..(j + 1) * per];
                if opts.augment.is_off() {
                    dst.copy_from_slice(data.sample(i));
                } else {
                    opts.augment.apply(data.sample(i), dst, data.sample_shape, &mut aug_rng);
                }
                yb[j] = data.y[i];
            }
            lr = schedule.lr_at(sess.steps_taken);
            let x = ArrayViewD::from_shape(IxDyn(&shape), &xb)?;
            let y = ArrayViewD::from_shape(IxDyn(&[opts.batch]), &yb)?;
            let out = sess.train_step(x, y, lr)?;
            if !out.loss.is_finite() {
                pb.abandon();
                let keep = if last_ckpt.exists() {
                    format!("the last good checkpoint {} is kept", last_ckpt.display())
                } else {
                    "no checkpoint was written yet".to_string()
                };
                bail!(
                    "non-finite loss ({}) at epoch {}, step {} (global step {}, lr {lr}); training stopped and {keep}",
                    out.loss,
                    epoch + 1,
                    s + 1,
                    sess.steps_taken + 1
                );
            }
            loss_sum += out.loss as f64;
            let flat: Vec<f32> = out.logits.iter().copied().collect();
            correct += argmax_rows(&flat, k)
                .iter()
                .zip(&yb)
                .filter(|(p, y)| **p as i64 == **y)
                .count();
            pb.inc(1);
            pb.set_message(format!("loss {:.4}", loss_sum / (s + 1) as f64));
        }
        pb.finish_and_clear();
        let train_secs = te.elapsed().as_secs_f64();
        let inference = sess.inference_model()?;
        let val_acc = accuracy(&inference, val, &opts.runtime, 256)?;
        final_acc = val_acc;
        let seen = (steps_per_epoch as usize * opts.batch) as f64;
        let rec = EpochRecord {
            epoch: epoch + 1,
            steps: sess.steps_taken,
            train_loss: loss_sum / steps_per_epoch.max(1) as f64,
            train_acc: correct as f64 / seen.max(1.0),
            val_acc,
            lr,
            seconds: te.elapsed().as_secs_f64(),
            images_per_s: seen / train_secs.max(1e-9),
        };
        let improved = best.is_none_or(|b| val_acc > b);
        if improved {
            best = Some(val_acc);
        }
        let header = Header {
            model_sha256: sha.clone(),
            slots: slots.clone(),
            epoch: epoch + 1,
            steps_taken: sess.steps_taken,
            best_val_acc: best,
            seed: opts.seed,
        };
        checkpoint::save(&last_ckpt, &header, &sess.state)?;
        if improved {
            checkpoint::save(&best_ckpt, &header, &sess.state)?;
            save_model(&inference, &best_model_path, &identity, val_acc, epoch + 1, opts)?;
        }
        writeln!(
            metrics,
            "{}",
            serde_json::json!({"kind": "epoch", "model_sha256": sha, "data_sha256": data.info.sha256,
                "preprocess": data.info.preprocess, "preset_fingerprint": data.info.preset_fingerprint,
                "seed": opts.seed,
                "ort_version": identity.provenance.ort_version, "device": identity.provenance.device,
                "record": rec})
        )?;
        if opts.progress {
            eprintln!(
                "epoch {}/{}: loss {:.4}, train acc {:.4}, val acc {:.4}, {:.1}s ({:.0} img/s)",
                rec.epoch, opts.epochs, rec.train_loss, rec.train_acc, rec.val_acc, rec.seconds, rec.images_per_s
            );
        }
        records.push(rec);
    }
    let final_model = sess.inference_model()?;
    save_model(
        &final_model,
        &model_path,
        &identity,
        final_acc,
        end_epoch.max(start_epoch),
        opts,
    )?;
    Ok(TrainOutcome {
        identity,
        epochs: records,
        initial_val_acc,
        best_val_acc: best.unwrap_or(final_acc),
        final_val_acc: final_acc,
        model_path,
        best_model_path,
        last_checkpoint: last_ckpt,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

fn save_model(m: &Model, path: &Path, id: &RunIdentity, val_acc: f64, epochs: u64, opts: &TrainOptions) -> Result<()> {
    let mut m = match &opts.export {
        Some(export) => export(m)?,
        None => m.clone(),
    };
    m.set_metadata("ratio.finetune.source_sha256", id.model_sha256.clone());
    m.set_metadata("ratio.finetune.data_sha256", id.data.sha256.clone());
    m.set_metadata("ratio.finetune.preprocess", id.data.preprocess.clone());
    m.set_metadata("ratio.finetune.preset_fingerprint", id.data.preset_fingerprint.clone());
    m.set_metadata("ratio.finetune.epochs", epochs.to_string());
    m.set_metadata("ratio.finetune.seed", id.seed.to_string());
    m.set_metadata("ratio.finetune.val_acc", format!("{val_acc:.6}"));
    m.save(path, false)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

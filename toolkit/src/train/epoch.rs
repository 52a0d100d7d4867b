//! One epoch of steps: the epoch's shuffled order, its batches decoded and augmented on a prefetch thread
//! (bounded, `--prefetch` ahead), the schedule's learning rate fed each step, and the time the step stood waiting
//! on data. A non-finite loss stops the run with the step named; the state was not advanced and no checkpoint is
//! touched, so the last good one stays.

use std::path::Path;
use std::time::{Duration, Instant};

use reports::schema::train::StepRecord;

use anyhow::{Context, Result, bail};
use ndarray::{ArrayD, IxDyn};
use rand::seq::SliceRandom;

use crate::data::loader::Prefetch;
use crate::train::data::{SampleSet, epoch_rng};
use crate::train::eval::count_correct;
use crate::train::schedule::Schedule;
use crate::train::session::Stepper;
use crate::train::trainer::{EpochRecord, TrainOptions};

/// About this many `{"kind":"step"}` lines per epoch go to metrics.jsonl (the report's per-step curves).
const STEP_LOG_POINTS: u64 = 50;

/// What one epoch's steps measured; [`EpochStats::record`] adds the validation result.
pub(crate) struct EpochStats {
    started: Instant,
    steps: usize,
    batch: usize,
    loss_sum: f64,
    correct: usize,
    acc_samples: usize,
    lr: f32,
    /// Wall time of the step loop (waiting included, validation not).
    loop_time: Duration,
    waited: Duration,
    step_time: Duration,
    /// Per-step curve: one record per window of about steps/[`STEP_LOG_POINTS`] steps.
    pub(crate) curve: Vec<StepRecord>,
}

/// The window of steps since the last curve point: loss sum, steps, and hits over the samples whose logits were
/// read back.
#[derive(Default)]
struct Window {
    loss: f64,
    steps: usize,
    hits: usize,
    scored: usize,
}

impl EpochStats {
    pub(crate) fn record(&self, epoch: u64, steps_taken: u64, val_acc: f64) -> EpochRecord {
        let seen = (self.steps * self.batch) as f64;
        let loop_s = self.loop_time.as_secs_f64();
        EpochRecord {
            epoch,
            steps: steps_taken,
            train_loss: self.loss_sum / self.steps.max(1) as f64,
            train_acc: self.correct as f64 / self.acc_samples.max(1) as f64,
            train_acc_samples: self.acc_samples,
            val_acc,
            lr: self.lr,
            seconds: self.started.elapsed().as_secs_f64(),
            images_per_s: seen / loop_s.max(1e-9),
            data_wait_s: self.waited.as_secs_f64(),
            data_wait_fraction: self.waited.as_secs_f64() / loop_s.max(1e-9),
            step_s: self.step_time.as_secs_f64(),
        }
    }
}

fn progress_bar(steps: u64, epoch: u64, opts: &TrainOptions) -> indicatif::ProgressBar {
    let pb = crate::printer::progress_bar(
        steps,
        "epoch {prefix} {bar:30} {pos}/{len} {msg} [{elapsed}<{eta}]",
        opts.progress,
    );
    pb.set_prefix(format!("{}/{}", epoch + 1, opts.epochs));
    pb
}

/// The training batches of `epoch`, decoded on a background thread in the epoch's order.
fn batches(data: &SampleSet, steps: usize, epoch: u64, opts: &TrainOptions) -> Prefetch<(Vec<f32>, Vec<i64>)> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.shuffle(&mut epoch_rng(opts.seed, epoch, 0));
    let (set, augment, seed, batch) = (data.clone(), opts.augment, opts.seed, opts.batch);
    Prefetch::start(steps, opts.prefetch, move |s| {
        let positions = &order[s * batch..(s + 1) * batch];
        set.train_batch(positions, &augment, seed, epoch, (s * batch) as u64)
    })
}

pub(crate) fn run(
    sess: &mut dyn Stepper,
    data: &SampleSet,
    schedule: &Schedule,
    epoch: u64,
    opts: &TrainOptions,
    last_ckpt: &Path,
) -> Result<EpochStats> {
    let started = Instant::now();
    let steps = schedule.steps_per_epoch as usize;
    let [c, h, w] = opts.augment.train_shape(data.sample_shape);
    let shape = [opts.batch, c, h, w];
    let mut stream = batches(data, steps, epoch, opts);
    let pb = progress_bar(steps as u64, epoch, opts);
    let mut st = EpochStats {
        started,
        steps,
        batch: opts.batch,
        loss_sum: 0.0,
        correct: 0,
        acc_samples: 0,
        lr: opts.lr,
        loop_time: Duration::ZERO,
        waited: Duration::ZERO,
        step_time: Duration::ZERO,
        curve: Vec::new(),
    };
    let every = (steps as u64 / STEP_LOG_POINTS).max(1) as usize;
    let mut win = Window::default();
    for s in 0..steps {
        let (x, y) = stream
            .next_item()
            .context("the batch loader stopped early")?
            .with_context(|| format!("preparing training batch {} of {}", s + 1, data.info.path))?;
        st.lr = schedule.lr_at(sess.steps_taken());
        let want_logits = (s as u64).is_multiple_of(opts.train_acc_every);
        let x = ArrayD::from_shape_vec(IxDyn(&shape), x)?;
        let labels = ArrayD::from_shape_vec(IxDyn(&[opts.batch]), y.clone())?;
        if s + 1 == steps {
            sess.release_after_next();
        }
        let t = Instant::now();
        let out = sess.advance(x, labels, st.lr, want_logits)?;
        st.step_time += t.elapsed();
        if !out.loss.is_finite() {
            pb.abandon();
            let keep = if last_ckpt.exists() {
                format!("the last good checkpoint {} is kept", last_ckpt.display())
            } else {
                "no checkpoint was written yet".to_string()
            };
            bail!(
                "non-finite loss ({}) at epoch {}, step {} (global step {}, lr {}); training stopped and {keep}",
                out.loss,
                epoch + 1,
                s + 1,
                sess.steps_taken() + 1,
                st.lr
            );
        }
        st.loss_sum += out.loss as f64;
        win.loss += out.loss as f64;
        win.steps += 1;
        if let Some(logits) = out.logits {
            let flat: Vec<f32> = logits.iter().copied().collect();
            let hits = count_correct(&flat, &y);
            st.correct += hits;
            st.acc_samples += y.len();
            win.hits += hits;
            win.scored += y.len();
        }
        if win.steps >= every || s + 1 == steps {
            st.curve.push(StepRecord {
                step: sess.steps_taken(),
                epoch: Some(epoch + 1),
                loss: win.loss / win.steps as f64,
                lr: f64::from(st.lr),
                // Only the steps whose logits were read back (`--train-acc-every`) are scored.
                train_acc: win.hits as f64 / win.scored.max(1) as f64,
            });
            win = Window::default();
        }
        pb.inc(1);
        pb.set_message(format!("loss {:.4}", st.loss_sum / (s + 1) as f64));
    }
    pb.finish_and_clear();
    st.loop_time = started.elapsed();
    st.waited = stream.waited();
    Ok(st)
}

//! Train-step speed: median wall time of a full step on the host-copying path (feeds, ORT run, state read-back)
//! and on the device-resident path (batch in, loss out), run alternately A,B,A,B so drift on a shared machine
//! cancels, against the inference run of the same network on the same batch, and the process's peak RSS. Used by
//! `ratio bench-train` and `benches/benches/train_step.rs`.

use std::time::{Duration, Instant};

use anyhow::Result;
use converters::Model;
use converters::autodiff::{DwStrategy, Optimizer, TrainStepConfig, build_train_step};
use ndarray::{ArrayD, IxDyn};
use serde::Serialize;

use crate::analysis::latency::median;
use crate::provenance::{Collect, Provenance};
use crate::runtime::{Feed, Runner, RuntimeConfig};
use crate::train::{ResidentSession, StepSession, Stepper};

#[derive(Debug, Clone, Serialize)]
pub struct TrainBench {
    pub model: String,
    pub model_sha256: String,
    pub batch: usize,
    pub threads: Option<usize>,
    pub iters: usize,
    /// The host-copying step (state fed and read back every step).
    pub step_ms_median: f64,
    pub step_ms_min: f64,
    /// The device-resident step (state in session memory, two alternating IoBinding buffer sets).
    pub resident_step_ms_median: f64,
    pub resident_step_ms_min: f64,
    /// Median over iterations of resident / host step time, each pair measured back to back.
    pub resident_over_host: f64,
    pub inference_ms_median: f64,
    pub inference_ms_min: f64,
    /// Of the resident step.
    pub images_per_s: f64,
    /// Median host-copying step time over median inference time.
    pub step_over_inference: f64,
    pub train_graph_nodes: usize,
    pub peak_rss_mb: Option<f64>,
    pub provenance: Provenance,
}

fn ms(v: &[Duration]) -> Vec<f64> {
    v.iter().map(|d| d.as_secs_f64() * 1e3).collect()
}

fn median_ms(v: &[Duration]) -> f64 {
    median(&ms(v)).unwrap_or(f64::NAN)
}

fn min_ms(v: &[Duration]) -> f64 {
    v.iter().min().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

/// Peak resident set of this process (VmHWM), in MB, on Linux.
pub fn peak_rss_mb() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn bench_train_step(
    model: &Model,
    batch: usize,
    iters: usize,
    runtime: &RuntimeConfig,
    dw: DwStrategy,
    emit_graph: Option<&std::path::Path>,
) -> Result<TrainBench> {
    let iters = iters.max(1);
    let cfg = TrainStepConfig {
        batch_size: batch as i64,
        optimizer: Optimizer::Sgd {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
        },
        dw,
        ..Default::default()
    };
    let step = build_train_step(model, &cfg)?;
    if let Some(path) = emit_graph {
        converters::Model::new(step.model.clone()).save(path, false)?;
    }
    let shape: Vec<usize> = step.input_shape.iter().map(|&d| d as usize).collect();
    let k = step.num_classes;
    let nodes = step.model.graph.as_ref().map_or(0, |g| g.node.len());
    // Deterministic, non-constant inputs.
    let x = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
        ((i[0] * 131 + i[2] * 29 + i[3] * 7 + i[1]) % 97) as f32 / 97.0
    });
    let y = ArrayD::from_shape_fn(IxDyn(&[batch]), |i| (i[0] as i64 * 7) % k);

    let mut runner = Runner::from_model(model, runtime)?;
    let input = runner.inputs()[0].name.clone();
    let prepared = runner.prepare(&[(input.as_str(), Feed::F32(x.view()))])?;
    for _ in 0..2 {
        runner.time_prepared(&prepared)?;
    }
    let inf: Vec<Duration> = (0..iters)
        .map(|_| runner.time_prepared(&prepared))
        .collect::<Result<_, _>>()?;
    drop(runner);

    let mut host = StepSession::new(step.clone(), runtime)?;
    let mut resident = ResidentSession::new(step, runtime)?;
    let timed = |s: &mut dyn Stepper| -> Result<Duration> {
        let t = Instant::now();
        s.advance(x.clone(), y.clone(), 0.01, false)?;
        Ok(t.elapsed())
    };
    for _ in 0..2 {
        timed(&mut host)?;
        timed(&mut resident)?;
    }
    let (mut steps, mut res_steps) = (Vec::with_capacity(iters), Vec::with_capacity(iters));
    for _ in 0..iters {
        steps.push(timed(&mut host)?);
        res_steps.push(timed(&mut resident)?);
    }
    let ratios: Vec<f64> = steps
        .iter()
        .zip(&res_steps)
        .map(|(h, r)| r.as_secs_f64() / h.as_secs_f64())
        .collect();
    let step_med = median_ms(&steps);
    let res_med = median_ms(&res_steps);
    let inf_med = median_ms(&inf);
    Ok(TrainBench {
        model: model.display_name(),
        model_sha256: { converters::ir::model::sha256_hex(&model.to_inline_bytes()?) },
        batch,
        threads: runtime.intra_threads,
        iters,
        step_ms_median: step_med,
        step_ms_min: min_ms(&steps),
        resident_step_ms_median: res_med,
        resident_step_ms_min: min_ms(&res_steps),
        resident_over_host: median(&ratios).unwrap_or(f64::NAN),
        inference_ms_median: inf_med,
        inference_ms_min: min_ms(&inf),
        images_per_s: batch as f64 / (res_med / 1e3),
        step_over_inference: step_med / inf_med,
        train_graph_nodes: nodes,
        peak_rss_mb: peak_rss_mb(),
        provenance: Provenance::collect(runtime.device)?,
    })
}

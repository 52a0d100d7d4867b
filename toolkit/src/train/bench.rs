//! Train-step speed: median wall time of a full step (feeds, ORT run, state read-back) against the inference
//! run of the same network on the same batch, and the process's peak RSS. Used by `ratio bench-train` and
//! `benches/benches/train_step.rs`.

use std::time::{Duration, Instant};

use anyhow::Result;
use converters::Model;
use converters::autodiff::{DwStrategy, Optimizer, TrainStepConfig, build_train_step};
use ndarray::{ArrayD, IxDyn};
use serde::Serialize;

use crate::provenance::Provenance;
use crate::runtime::{Feed, Runner, RuntimeConfig};
use crate::train::StepSession;

#[derive(Debug, Clone, Serialize)]
pub struct TrainBench {
    pub model: String,
    pub model_sha256: String,
    pub batch: usize,
    pub threads: Option<usize>,
    pub iters: usize,
    pub step_ms_median: f64,
    pub step_ms_min: f64,
    pub inference_ms_median: f64,
    pub inference_ms_min: f64,
    pub images_per_s: f64,
    /// Median step time over median inference time.
    pub step_over_inference: f64,
    pub train_graph_nodes: usize,
    pub peak_rss_mb: Option<f64>,
    pub provenance: Provenance,
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
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

    let mut sess = StepSession::new(step, runtime)?;
    for _ in 0..2 {
        sess.train_step(x.view(), y.view(), 0.01)?;
    }
    let mut steps = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        sess.train_step(x.view(), y.view(), 0.01)?;
        steps.push(t.elapsed());
    }
    let step_med = median(steps.clone());
    let inf_med = median(inf.clone());
    Ok(TrainBench {
        model: model.display_name(),
        model_sha256: {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(model.to_inline_bytes()?))
        },
        batch,
        threads: runtime.intra_threads,
        iters,
        step_ms_median: step_med,
        step_ms_min: steps.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        inference_ms_median: inf_med,
        inference_ms_min: inf.iter().min().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        images_per_s: batch as f64 / (step_med / 1e3),
        step_over_inference: step_med / inf_med,
        train_graph_nodes: nodes,
        peak_rss_mb: peak_rss_mb(),
        provenance: Provenance::collect(runtime.device)?,
    })
}

//! Checks of a converted model that need ONNX Runtime: it loads and runs, and on samples where every removed
//! activation's input is ≥ 0 its outputs equal the original's (removing a ReLU is the identity there).

use anyhow::{Context, Result};
use converters::ir::Model;
use converters::ir::expose::expose_outputs;
use converters::plan::{Decision, Plan};
use ndarray::{ArrayD, Axis};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::runtime::{ElemType, Feed, Runner, RuntimeConfig};

#[derive(Debug, Clone, Serialize)]
pub struct RuntimeCheck {
    pub batch: usize,
    pub seed: u64,
    /// Samples whose removed-activation inputs were all ≥ 0 (where outputs must match).
    pub qualifying_samples: usize,
    /// Largest |converted − original| over the qualifying samples' outputs.
    pub max_abs_diff_qualifying: Option<f32>,
    /// Largest |converted − original| over all samples: how much the conversion changed the function.
    pub max_abs_diff_all: f32,
}

/// Tolerance for equality on qualifying samples: the graphs compute the same float ops in the same order, so
/// only ORT's fusion choices (e.g. Conv+Relu fused vs not) can differ — a few ulps of the activations' scale.
pub const EQUAL_TOL: f32 = 1e-4;

/// Random inputs in [0, 1) (image-like), one batch, seeded; symbolic dims set to `batch` (first) or 1.
pub fn random_feeds(runner: &Runner, batch: usize, seed: u64) -> Result<Vec<(String, ArrayD<f32>)>> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut feeds = Vec::new();
    for spec in runner.inputs() {
        anyhow::ensure!(
            matches!(spec.elem, ElemType::F32),
            "input '{}' has type {:?}; the conversion check feeds float32 only (use --no-check)",
            spec.name,
            spec.elem
        );
        let shape = spec.concrete_shape(batch);
        let n: usize = shape.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
        feeds.push((spec.name.clone(), ArrayD::from_shape_vec(shape, data)?));
    }
    Ok(feeds)
}

pub fn check_conversion(
    original: &Model,
    converted: &Model,
    plan: &Plan,
    config: &RuntimeConfig,
    batch: usize,
    seed: u64,
) -> Result<RuntimeCheck> {
    let removed: Vec<String> = plan
        .slots
        .iter()
        .filter(|s| s.decision != Decision::Keep)
        .map(|s| {
            let st = converters::slots::detect(original.graph(), &[s.kind]);
            st.slots
                .into_iter()
                .find(|x| x.name == s.name)
                .map(|x| x.input)
                .unwrap_or_default()
        })
        .collect();
    let mut probe = original.clone();
    expose_outputs(&mut probe, &removed).context("exposing the removed activations' inputs")?;
    let mut orig = Runner::from_model(&probe, config).context("loading the original model in ONNX Runtime")?;
    let mut conv = Runner::from_model(converted, config).context("loading the converted model in ONNX Runtime")?;
    let feeds = random_feeds(&conv, batch, seed)?;
    let feed_refs: Vec<(&str, Feed<'_>)> = feeds.iter().map(|(n, a)| (n.as_str(), Feed::F32(a.view()))).collect();
    let out_names: Vec<String> = conv.outputs().iter().map(|o| o.name.clone()).collect();
    let a = orig.run(&feed_refs).context("running the original model")?;
    let b = conv.run(&feed_refs).context("running the converted model")?;

    let mut qualifying = vec![true; batch];
    for r in &removed {
        let pre = a.get(r)?;
        for (i, sample) in pre.axis_iter(Axis(0)).enumerate() {
            if sample.iter().any(|&v| v < 0.0) {
                qualifying[i] = false;
            }
        }
    }
    let mut max_all = 0f32;
    let mut max_q: Option<f32> = None;
    for name in &out_names {
        let (x, y) = (a.get(name)?, b.get(name)?);
        anyhow::ensure!(
            x.shape() == y.shape(),
            "output '{name}' changed shape: {:?} → {:?}",
            x.shape(),
            y.shape()
        );
        for (i, (xs, ys)) in x.axis_iter(Axis(0)).zip(y.axis_iter(Axis(0))).enumerate() {
            let d = xs
                .iter()
                .zip(ys.iter())
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            anyhow::ensure!(d.is_finite(), "output '{name}' of the converted model is not finite");
            max_all = max_all.max(d);
            if qualifying.get(i).copied().unwrap_or(false) {
                max_q = Some(max_q.unwrap_or(0.0).max(d));
            }
        }
    }
    let check = RuntimeCheck {
        batch,
        seed,
        qualifying_samples: qualifying.iter().filter(|&&q| q).count(),
        max_abs_diff_qualifying: max_q,
        max_abs_diff_all: max_all,
    };
    if let Some(d) = check.max_abs_diff_qualifying {
        // Relative to the output scale, so large logits do not fail on rounding.
        let scale = out_names
            .iter()
            .filter_map(|n| a.get(n).ok())
            .flat_map(|x| x.iter().map(|v| v.abs()))
            .fold(1f32, f32::max);
        anyhow::ensure!(
            d <= EQUAL_TOL * scale,
            "on {} sample(s) where every removed activation's input is ≥ 0 the outputs differ by {d} (tolerance {})",
            check.qualifying_samples,
            EQUAL_TOL * scale
        );
    }
    Ok(check)
}

//! Top-1 accuracy of an inference model on a [`SampleSet`], in one ONNX Runtime session, with the batches
//! decoded by the preset on a prefetch thread while the previous one runs.

use anyhow::{Context, Result, bail};
use converters::Model;
use ndarray::{ArrayViewD, IxDyn};

use crate::data::loader::Prefetch;
use crate::runtime::{Feed, Runner, RuntimeConfig};
use crate::train::data::SampleSet;

/// Batches decoded ahead of the model run during evaluation.
const PREFETCH: usize = 2;

/// Index of the largest value in each row of a [rows, k] slice.
pub fn argmax_rows(logits: &[f32], k: usize) -> Vec<usize> {
    logits
        .chunks_exact(k)
        .map(|row| {
            let mut best = 0;
            for (j, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Samples of a batch whose top-1 prediction equals the label.
pub fn count_correct(logits: &[f32], labels: &[i64]) -> usize {
    let k = logits.len() / labels.len().max(1);
    if k == 0 {
        return 0;
    }
    argmax_rows(logits, k)
        .iter()
        .zip(labels)
        .filter(|(p, y)| **p as i64 == **y)
        .count()
}

pub fn accuracy(model: &Model, set: &SampleSet, runtime: &RuntimeConfig, batch: usize) -> Result<f64> {
    let mut runner = Runner::from_model(model, runtime).context("loading the model for evaluation")?;
    let input = runner
        .inputs()
        .first()
        .map(|s| (s.name.clone(), s.dims.first().copied().flatten()))
        .context("the model has no inputs")?;
    let output = runner
        .outputs()
        .first()
        .map(|s| s.name.clone())
        .context("the model has no outputs")?;
    let chunk = match input.1 {
        Some(fixed) if fixed > 0 => fixed as usize,
        _ => batch.max(1),
    };
    if input.1.is_some_and(|f| f > 0) && !set.len().is_multiple_of(chunk) {
        bail!(
            "model input '{}' has a fixed batch of {chunk}; {} samples do not divide",
            input.0,
            set.len()
        );
    }
    let [c, h, w] = set.sample_shape;
    let n = set.len();
    let src = set.clone();
    let mut batches = Prefetch::start(n.div_ceil(chunk), PREFETCH, move |b| {
        let positions: Vec<usize> = (b * chunk..((b + 1) * chunk).min(n)).collect();
        src.batch(&positions)
    });
    let mut correct = 0usize;
    while let Some(item) = batches.next_item() {
        let (x, y) = item.with_context(|| format!("preprocessing {} ({})", set.info.path, set.info.split))?;
        let view = ArrayViewD::from_shape(IxDyn(&[y.len(), c, h, w]), &x)?;
        let out = runner.run_select(&[(input.0.as_str(), Feed::F32(view))], &[output.as_str()])?;
        let flat: Vec<f32> = out.get(&output)?.iter().copied().collect();
        correct += count_correct(&flat, &y);
    }
    Ok(correct as f64 / n.max(1) as f64)
}

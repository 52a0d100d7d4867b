//! Top-1 accuracy of an inference model on a [`TensorSet`], batched, in one ONNX Runtime session.

use anyhow::{Context, Result, bail};
use converters::Model;
use ndarray::{ArrayViewD, IxDyn};

use crate::runtime::{Feed, Runner, RuntimeConfig};
use crate::train::data::TensorSet;

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

pub fn accuracy(model: &Model, set: &TensorSet, runtime: &RuntimeConfig, batch: usize) -> Result<f64> {
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
    let [c, h, w] = set.sample_shape;
    let per = set.sample_len();
    let mut correct = 0usize;
    let mut start = 0;
    while start < set.len() {
        let n = chunk.min(set.len() - start);
        if input.1.is_some_and(|f| f as usize != n) {
            bail!(
                "model input '{}' has a fixed batch of {chunk}; {} samples do not divide",
                input.0,
                set.len()
            );
        }
        let view = ArrayViewD::from_shape(IxDyn(&[n, c, h, w]), &set.x[start * per..(start + n) * per])?;
        let out = runner.run_select(&[(input.0.as_str(), Feed::F32(view))], &[output.as_str()])?;
        let logits = out.get(&output)?;
        let k = logits.len() / n;
        let flat: Vec<f32> = logits.iter().copied().collect();
        for (i, p) in argmax_rows(&flat, k).into_iter().enumerate() {
            if p as i64 == set.y[start + i] {
                correct += 1;
            }
        }
        start += n;
    }
    Ok(correct as f64 / set.len().max(1) as f64)
}

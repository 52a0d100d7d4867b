//! AdaBN: re-estimate every BatchNormalization's running statistics on data, γ and β unchanged.
//!
//! One pass of the batch-statistics graph (`converters::passes::batch_stats`) normalizes every BN with its batch's
//! own statistics, as PyTorch's train mode does, and returns each batch's mean and biased variance. The new
//! running statistics are their cumulative average over the batches (PyTorch with `momentum=None`), the variance
//! made unbiased per batch with m/(m − 1), m = N·L values per channel.

use anyhow::{Context, Result, bail};
use converters::Model;
use converters::ir::GraphIndex;
use converters::ir::tensor;
use converters::passes::batch_stats::batch_statistics;
use converters::passes::set_inputs::{InputUpdate, set_inputs};
use reports::schema::calibrate::LayerFit;

use super::samples::CalibData;
use crate::runtime::{Feed, Runner, RuntimeConfig};

/// The model with re-estimated BN statistics, and one fit record per BN.
pub fn adabn(model: &Model, data: &mut CalibData, input: &str, cfg: &RuntimeConfig) -> Result<(Model, Vec<LayerFit>)> {
    let mut stats_model = model.clone();
    let probes = batch_statistics(stats_model.graph_mut(), model.opset())
        .with_context(|| format!("{}: building the batch-statistics graph", model.display_name()))?;
    if probes.is_empty() {
        bail!(
            "{}: no BatchNormalization to re-estimate (use --method affine or lsq for a BN-folded model)",
            model.display_name()
        );
    }
    let mut runner = Runner::from_model(&stats_model, cfg)?;
    let fetch: Vec<&str> = probes
        .iter()
        .flat_map(|p| [p.mean.as_str(), p.var.as_str(), p.shape.as_str()])
        .collect();
    let mut sums: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); probes.len()];
    let (mut batches, mut rows) = (0u64, 0u64);
    data.for_each_calib(|x| {
        let out = runner.run_select(&[(input, Feed::F32(x.view()))], &fetch)?;
        let mut used = false;
        for (p, (sm, sv)) in probes.iter().zip(sums.iter_mut()) {
            let (mean, var) = (out.get(&p.mean)?, out.get(&p.var)?);
            let shape = out.get_i64(&p.shape)?;
            let m = shape.iter().step_by(2).product::<i64>() as f64;
            if m < 2.0 {
                continue;
            }
            used = true;
            if sm.is_empty() {
                *sm = vec![0.0; mean.len()];
                *sv = vec![0.0; var.len()];
            }
            sm.iter_mut().zip(mean.iter()).for_each(|(s, &v)| *s += v as f64);
            sv.iter_mut()
                .zip(var.iter())
                .for_each(|(s, &v)| *s += v as f64 * m / (m - 1.0));
        }
        if used {
            batches += 1;
            rows += x.shape()[0] as u64;
        }
        Ok(())
    })?;
    if batches == 0 {
        bail!("{}: no calibration batch had two values per channel", data.data.path);
    }
    let g = model.graph();
    let ix = GraphIndex::new(g);
    let mut updates = Vec::new();
    let mut fits = Vec::new();
    for (p, (sm, sv)) in probes.iter().zip(sums) {
        let n = &g.node[p.node];
        let mean: Vec<f32> = sm.iter().map(|s| (s / batches as f64) as f32).collect();
        let var: Vec<f32> = sv.iter().map(|s| (s / batches as f64) as f32).collect();
        let old = |slot: usize| -> Option<Vec<f32>> {
            let t = ix.constant(g, &n.input[slot])?;
            tensor::to_f32(t, model.tensor_bytes(t).ok()?.as_ref()).ok()
        };
        let eps = converters::ir::attr::NodeExt::get_f(n, "epsilon")
            .ok()
            .flatten()
            .unwrap_or(1e-5) as f64;
        let (mean_shift, var_ratio) = match (old(3), old(4)) {
            (Some(om), Some(ov)) if om.len() == mean.len() && ov.len() == var.len() => {
                let c = mean.len().max(1) as f64;
                let shift = (0..mean.len())
                    .map(|k| (mean[k] as f64 - om[k] as f64).abs() / (ov[k] as f64 + eps).sqrt())
                    .sum::<f64>()
                    / c;
                let ratio = (0..var.len())
                    .map(|k| var[k] as f64 / (ov[k] as f64).max(1e-12))
                    .sum::<f64>()
                    / c;
                (Some(shift), Some(ratio))
            }
            _ => (None, None),
        };
        let dims = [mean.len() as i64];
        for (slot, what, v) in [(3, "running_mean", mean), (4, "running_var", var)] {
            updates.push(InputUpdate {
                node: p.node,
                input: slot,
                tensor: tensor::from_f32(&format!("{}.{what}_calibrated", p.name), &dims, &v),
            });
        }
        fits.push(LayerFit {
            node: p.name.clone(),
            op: "BatchNormalization".into(),
            method: "adabn".into(),
            rows,
            features: None,
            lambda: None,
            rel_error_before: None,
            rel_error_after: None,
            mean_shift,
            var_ratio,
        });
    }
    let mut out = model.clone();
    set_inputs(out.graph_mut(), updates, vec![])
        .with_context(|| format!("{}: writing the re-estimated statistics", model.display_name()))?;
    Ok((out, fits))
}

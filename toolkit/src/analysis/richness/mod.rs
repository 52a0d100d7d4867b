//! Representation richness: streaming per-layer statistics over activations captured from ONNX Runtime.
//!
//! [`analyze`] runs every model on the same batches (so CKA compares the same samples), folds each batch into
//! per-layer accumulators and then turns them into [`LayerMetrics`]; memory is bounded by the channel count and
//! the CKA/probe caps, not by the number of samples.

pub mod activation;
pub mod capture;
pub mod covariance;
pub mod error;
pub mod layer_stats;
pub mod layers;
pub mod patterns;
pub mod source;

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

pub use capture::{Batch, ModelCapture, data_input};
pub use error::RichnessError;
pub use layer_stats::{LayerMetrics, RichnessOptions};
pub use layers::{Layer, LayerSelect, activation_layers, select_layers};
pub use reports::schema::richness::{CkaMatrix, ModelRichness};

use crate::analysis::cka::{Features, hsic_unbiased};

#[derive(Debug, Clone, Serialize)]
pub struct RichnessRun {
    pub samples: u64,
    pub models: Vec<ModelRichness>,
    pub cka: Vec<CkaMatrix>,
}

/// Stream `batches` through every model. All models must take the same input.
pub fn analyze(
    models: &mut [ModelCapture],
    batches: impl IntoIterator<Item = anyhow::Result<Batch>>,
    opts: &RichnessOptions,
) -> anyhow::Result<RichnessRun> {
    if let Some((first, rest)) = models.split_first() {
        for m in rest {
            if m.input_signature != first.input_signature {
                return Err(RichnessError::MismatchedInputs {
                    first: first.name.clone(),
                    first_input: first.input_signature.clone(),
                    other: m.name.clone(),
                    other_input: m.input_signature.clone(),
                }
                .into());
            }
        }
    }
    let mut seen: u64 = 0;
    let mut times = vec![(0.0f64, 0.0f64); models.len()];
    for batch in batches {
        if seen as usize >= opts.samples {
            break;
        }
        let batch = truncate(batch?, opts.samples - seen as usize);
        let take = batch.x.shape().first().copied().unwrap_or(0);
        if take == 0 {
            continue;
        }
        for (m, t) in models.iter_mut().zip(&mut times) {
            let start = Instant::now();
            let out = m.run(&batch)?;
            let mid = Instant::now();
            m.accumulate(&out, &batch, seen, opts)?;
            t.0 += (mid - start).as_secs_f64();
            t.1 += mid.elapsed().as_secs_f64();
        }
        seen += take as u64;
    }
    if seen == 0 {
        return Err(RichnessError::NoSamples.into());
    }
    let mut reports = Vec::with_capacity(models.len());
    for (m, t) in models.iter().zip(&times) {
        let start = Instant::now();
        let layers = m
            .accs
            .iter()
            .map(|a| a.finish(&m.name))
            .collect::<Result<Vec<_>, _>>()?;
        reports.push(ModelRichness {
            name: m.name.clone(),
            sha256: m.sha256.clone(),
            input: m.input_signature.clone(),
            layers,
            removed: m.removed.clone(),
            accuracy: (m.scored > 0).then(|| m.correct as f64 / m.scored as f64),
            run_seconds: t.0,
            stats_seconds: t.1 + start.elapsed().as_secs_f64(),
        });
    }
    let cka = if models.is_empty() {
        vec![]
    } else if models.len() == 1 {
        vec![cka_matrix(&models[0], &models[0])?]
    } else {
        models[1..]
            .iter()
            .map(|m| cka_matrix(&models[0], m))
            .collect::<Result<_, _>>()?
    };
    Ok(RichnessRun {
        samples: seen,
        models: reports,
        cka,
    })
}

/// The first `take` samples of `batch`.
fn truncate(mut batch: Batch, take: usize) -> Batch {
    let n = batch.x.shape().first().copied().unwrap_or(0);
    if take < n {
        batch.x = batch
            .x
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..take))
            .to_owned();
        if let Some(l) = &mut batch.labels {
            l.truncate(take);
        }
    }
    batch
}

fn cka_matrix(left: &ModelCapture, right: &ModelCapture) -> Result<CkaMatrix, RichnessError> {
    use rayon::prelude::*;
    let feats = |m: &ModelCapture| -> Vec<Features> {
        m.accs
            .iter()
            .map(|a| Features::from_rows(&a.cka_rows, a.channels()))
            .collect()
    };
    let (lf, rf) = (feats(left), feats(right));
    let n = lf.first().map(|f| f.n).unwrap_or(0);
    let cka_err = |source| RichnessError::Cka {
        left: left.name.clone(),
        right: right.name.clone(),
        source,
    };
    let self_hsic = |fs: &[Features]| -> Result<Vec<f64>, RichnessError> {
        fs.par_iter().map(|f| hsic_unbiased(f, f).map_err(cka_err)).collect()
    };
    let (lh, rh) = (self_hsic(&lf)?, self_hsic(&rf)?);
    let values = lf
        .par_iter()
        .zip(&lh)
        .map(|(x, &hx)| {
            rf.iter()
                .zip(&rh)
                .map(|(y, &hy)| {
                    let xy = hsic_unbiased(x, y).map_err(cka_err)?;
                    Ok((hx > 0.0 && hy > 0.0).then(|| xy / (hx * hy).sqrt()))
                })
                .collect::<Result<Vec<_>, RichnessError>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CkaMatrix {
        left: left.name.clone(),
        right: right.name.clone(),
        left_layers: left.accs.iter().map(|a| a.layer.name.clone()).collect(),
        right_layers: right.accs.iter().map(|a| a.layer.name.clone()).collect(),
        samples: n,
        values,
    })
}

/// Negative mass at the input of every rectifier of `model` (activation node name → share of pre-activation L1
/// mass below 0), over the samples `batches` yields, up to `samples`. The converter's `--keep by-negative-mass`
/// keeps the ReLUs with the highest scores.
pub fn negative_mass_scores_from_batches(
    model: &converters::Model,
    batches: impl IntoIterator<Item = anyhow::Result<Batch>>,
    samples: usize,
    config: &crate::runtime::RuntimeConfig,
) -> anyhow::Result<HashMap<String, f64>> {
    let acts = activation_layers(model, "negative-mass scoring")?;
    let names = LayerSelect::Names(acts.iter().map(|l| l.name.clone()).collect());
    let mut cap = ModelCapture::new(model, String::new(), &names, config)?;
    let mut seen = 0u64;
    for batch in batches {
        if seen as usize >= samples {
            break;
        }
        let batch = truncate(batch?, samples - seen as usize);
        if batch.x.shape().first().is_none_or(|&n| n == 0) {
            continue;
        }
        let out = cap.run(&batch)?;
        // Only the pre-activations matter here; skip the covariance work of the full accumulator.
        for i in 0..cap.accs.len() {
            if let Some((neg, total)) = cap.negative_sums(&out, i)? {
                cap.accs[i].push_negative_sums(neg, total);
            }
        }
        seen += batch.x.shape().first().copied().unwrap_or(0) as u64;
    }
    if seen == 0 {
        return Err(RichnessError::NoSamples.into());
    }
    Ok(cap
        .accs
        .iter()
        .map(|a| (a.layer.name.clone(), a.negative_mass()))
        .collect())
}

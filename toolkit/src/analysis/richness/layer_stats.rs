//! Everything accumulated for one layer of one model while batches stream through, and the metrics it yields.

use ndarray::ArrayViewD;
use serde::Serialize;

use super::activation::{ActivityStats, NegativeMass};
use super::covariance::StreamingCov;
use super::error::RichnessError;
use super::layers::Layer;
use super::patterns::{PatternCounter, split_hash};
use crate::analysis::probe::RidgeProbe;
use crate::analysis::spectrum::{effective_rank, participation_ratio, symmetric_eigenvalues};
pub use reports::schema::richness::LayerMetrics;

/// Knobs shared by every layer accumulator.
#[derive(Debug, Clone, Serialize)]
pub struct RichnessOptions {
    /// Stop after this many samples.
    pub samples: usize,
    /// Pooled feature rows kept per layer for CKA (debiased CKA needs all pairs of the kept samples).
    pub cka_samples: usize,
    /// Spatial positions drawn per sample (seeded) for the spatial covariance.
    pub positions: usize,
    pub seed: u64,
    /// Fit a linear probe per layer (needs labels).
    pub probe: bool,
    pub ridge: f64,
    /// Test rows kept for the probe.
    pub probe_max_test: usize,
    pub classes: usize,
}

impl Default for RichnessOptions {
    fn default() -> Self {
        RichnessOptions {
            samples: 10_000,
            cka_samples: 2000,
            positions: 4,
            seed: 0,
            probe: true,
            ridge: 1e-3,
            probe_max_test: 10_000,
            classes: 10,
        }
    }
}

/// Streaming state of one layer. Shapes are fixed by the first batch.
#[derive(Debug)]
pub struct LayerAccum {
    pub layer: Layer,
    channels: usize,
    spatial: usize,
    samples: u64,
    pooled: Option<StreamingCov>,
    spatial_cov: Option<StreamingCov>,
    activity: Option<ActivityStats>,
    patterns: PatternCounter,
    position_patterns: PatternCounter,
    negative: NegativeMass,
    probe: Option<RidgeProbe>,
    /// Pooled rows of the first `cka_samples` samples, `channels` wide.
    pub cka_rows: Vec<f32>,
}

/// `[N, C, …]` → (N, C, spatial).
fn nc_spatial(model: &str, layer: &str, shape: &[usize]) -> Result<(usize, usize, usize), RichnessError> {
    match shape {
        [n, c, rest @ ..] => Ok((*n, *c, rest.iter().product::<usize>().max(1))),
        _ => Err(RichnessError::LayerShape {
            model: model.to_string(),
            layer: layer.to_string(),
            shape: format!("{shape:?}"),
        }),
    }
}

impl LayerAccum {
    pub fn new(layer: Layer) -> Self {
        LayerAccum {
            layer,
            channels: 0,
            spatial: 0,
            samples: 0,
            pooled: None,
            spatial_cov: None,
            activity: None,
            patterns: PatternCounter::default(),
            position_patterns: PatternCounter::default(),
            negative: NegativeMass::default(),
            probe: None,
            cka_rows: Vec::new(),
        }
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Add one batch: `out` is the layer's value, `pre` the rectifier input (if any), `first_index` the stream
    /// index of the batch's first sample.
    pub fn push(
        &mut self,
        model: &str,
        out: ArrayViewD<'_, f32>,
        neg_sums: Option<(f64, f64)>,
        labels: Option<&[u32]>,
        first_index: u64,
        opts: &RichnessOptions,
    ) -> Result<(), RichnessError> {
        let (n, c, s) = nc_spatial(model, &self.layer.name, out.shape())?;
        if self.pooled.is_none() {
            self.channels = c;
            self.spatial = s;
            self.pooled = Some(StreamingCov::new(c));
            if s > 1 {
                self.spatial_cov = Some(StreamingCov::new(c));
            }
            if self.layer.is_activation() {
                self.activity = Some(ActivityStats::new(c));
            }
            if opts.probe && labels.is_some() {
                self.probe = Some(RidgeProbe::new(
                    c,
                    opts.classes,
                    opts.ridge,
                    opts.seed,
                    opts.probe_max_test,
                ));
            }
        } else if (c, s) != (self.channels, self.spatial) {
            return Err(RichnessError::LayerShape {
                model: model.to_string(),
                layer: self.layer.name.clone(),
                shape: format!(
                    "{:?} (earlier batches had {} channels × {} positions)",
                    out.shape(),
                    self.channels,
                    self.spatial
                ),
            });
        }
        let out = out.as_standard_layout();
        let data = out.as_slice().unwrap_or(&[]);
        let mut pooled = vec![0.0f32; n * c];
        for (p, plane) in pooled.iter_mut().zip(data.chunks_exact(s)) {
            // f64 sum: a 56×56 plane summed in f32 loses ~3 digits.
            *p = (plane.iter().map(|&x| x as f64).sum::<f64>() / s as f64) as f32;
        }
        if let Some(cov) = &mut self.pooled {
            cov.push_rows(&pooled);
        }
        if let Some(cov) = &mut self.spatial_cov {
            let mut rows = Vec::with_capacity(n * opts.positions * c);
            for i in 0..n {
                let sample = &data[i * c * s..(i + 1) * c * s];
                for j in 0..opts.positions {
                    let pos = (split_hash(opts.seed ^ 0xa5a5, (first_index + i as u64) * 1024 + j as u64) % s as u64)
                        as usize;
                    rows.extend((0..c).map(|ch| sample[ch * s + pos]));
                }
            }
            cov.push_rows(&rows);
            if self.layer.is_activation() {
                self.position_patterns.push(&rows, n * opts.positions);
            }
        }
        if let Some(act) = &mut self.activity {
            act.push(data, n, s);
            self.patterns.push(data, n);
        }
        if let Some((neg, total)) = neg_sums {
            self.negative.add(neg, total);
        }
        if let (Some(probe), Some(labels)) = (&mut self.probe, labels) {
            probe
                .push(&pooled, labels, first_index)
                .map_err(|source| RichnessError::Probe {
                    model: model.to_string(),
                    layer: self.layer.name.clone(),
                    source,
                })?;
        }
        let keep = opts.cka_samples.saturating_sub(self.samples as usize).min(n);
        self.cka_rows.extend_from_slice(&pooled[..keep * c]);
        self.samples += n as u64;
        Ok(())
    }

    pub fn finish(&self, model: &str) -> Result<LayerMetrics, RichnessError> {
        let spectrum = |cov: &Option<StreamingCov>| {
            cov.as_ref().and_then(StreamingCov::covariance).map(|m| {
                let e = symmetric_eigenvalues(&m, self.channels);
                (effective_rank(&e), participation_ratio(&e))
            })
        };
        let pooled = spectrum(&self.pooled);
        let spatial = spectrum(&self.spatial_cov);
        let probe = match &self.probe {
            Some(p) => Some(p.finish().map_err(|source| RichnessError::Probe {
                model: model.to_string(),
                layer: self.layer.name.clone(),
                source,
            })?),
            None => None,
        };
        let act = self.activity.as_ref();
        Ok(LayerMetrics {
            name: self.layer.name.clone(),
            op: self.layer.op.clone(),
            output: self.layer.output.clone(),
            depth: self.layer.depth,
            kind: self.layer.kind,
            block: self.layer.block,
            stage: self.layer.stage,
            relative_depth: self.layer.relative_depth,
            channels: self.channels,
            spatial: self.spatial,
            samples: self.samples,
            dead_fraction: act.map(ActivityStats::dead_fraction),
            sparsity: act.map(ActivityStats::sparsity),
            negative_mass: self.layer.act_input.as_ref().map(|_| self.negative.value()),
            distinct_patterns: act.map(|_| self.patterns.distinct()),
            pattern_entropy_bits: act.map(|_| self.patterns.entropy_bits()),
            position_patterns: (act.is_some() && self.spatial_cov.is_some()).then(|| self.position_patterns.distinct()),
            position_pattern_entropy_bits: (act.is_some() && self.spatial_cov.is_some())
                .then(|| self.position_patterns.entropy_bits()),
            effective_rank: pooled.map(|p| p.0),
            participation_ratio: pooled.map(|p| p.1),
            spatial_effective_rank: spatial.map(|p| p.0),
            spatial_participation_ratio: spatial.map(|p| p.1),
            probe_accuracy: probe.map(|p| p.test_accuracy),
        })
    }
}

impl LayerAccum {
    /// Negative-mass only path (placement scoring): no covariance or pattern work.
    pub fn push_negative_sums(&mut self, neg: f64, total: f64) {
        self.negative.add(neg, total);
    }

    pub fn negative_mass(&self) -> f64 {
        self.negative.value()
    }
}

//! The Leaky-ReLU ensemble (DESIGN.md §6): with LReLU_a(z) = a·z + (1−a)·D(z)·z and the gate masks D_i frozen at
//! the values the leaky network itself produces, the network is affine in each activation operator, so its output
//! splits exactly into a binomial mixture over subnetworks:
//! y(x) = Σ_{S ⊆ layers} a^{L−|S|} (1−a)^{|S|} f_S(x), where f_S applies the frozen gate only at the layers in S
//! and is linear (×1) at the others. Grouping by k = |S| gives a mixture over conv:ReLU ratios.
//!
//! The decomposition is one ONNX graph run in ONNX Runtime: the original network (which computes the masks) plus
//! a gated copy whose LeakyRelu nodes become `z' · (s_i·D_i + 1 − s_i)` with a scalar selector input `s_i ∈ {0,1}`
//! per layer. Other non-affine choices are frozen the same way so the identity stays exact: plain Relu uses its own
//! recorded mask (always applied), MaxPool reuses the indices of the original's maxima. The graph is built by the
//! `converters::passes::leaky_ensemble` pass; this module runs it and gathers the statistics.

use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand::seq::index::sample;
use reports::schema::richness::{LeakyBody, LeakyGroup};
use serde::Serialize;

use crate::analysis::richness::Batch;
use crate::runtime::{Feed, Runner, RuntimeConfig};

pub use converters::passes::leaky_ensemble::{Decomposition, LeakyError, build_decomposition};

/// Options of [`decompose`].
#[derive(Debug, Clone, Serialize)]
pub struct LeakyOptions {
    pub samples: usize,
    /// Enumerate all 2^L subnetworks up to this many layers; sample above.
    pub max_exact: usize,
    /// Subsets evaluated per k when sampling.
    pub subsets_per_k: usize,
    pub seed: u64,
}

impl Default for LeakyOptions {
    fn default() -> Self {
        LeakyOptions {
            samples: 1000,
            max_exact: 12,
            subsets_per_k: 16,
            seed: 0,
        }
    }
}

fn binomial(n: usize, k: usize) -> u64 {
    (0..k).fold(1u64, |acc, i| acc * (n - i) as u64 / (i + 1) as u64)
}

/// All k-subsets of 0..l as bit masks (only called when C(l,k) is small).
fn k_subsets(l: usize, k: usize) -> Vec<u64> {
    let mut out = Vec::new();
    fn rec(start: usize, l: usize, k: usize, mask: u64, out: &mut Vec<u64>) {
        if k == 0 {
            out.push(mask);
            return;
        }
        for i in start..=(l - k) {
            rec(i + 1, l, k - 1, mask | (1 << i), out);
        }
    }
    rec(0, l, k, 0, &mut out);
    out
}

/// Which subsets to run per k, and the factor turning their plain sum into the group's estimate
/// (a^{L−k}(1−a)^k when all are run; scaled by C(L,k)/m when m of them are sampled).
fn plan_subsets(l: usize, a: f64, opts: &LeakyOptions) -> (bool, Vec<(Vec<u64>, f64)>) {
    let exact = l <= opts.max_exact;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(opts.seed);
    let plan = (0..=l)
        .map(|k| {
            let w = a.powi((l - k) as i32) * (1.0 - a).powi(k as i32);
            let count = binomial(l, k);
            if exact || count <= opts.subsets_per_k as u64 {
                (k_subsets(l, k), w)
            } else {
                let m = opts.subsets_per_k.max(1);
                let masks = (0..m)
                    .map(|_| sample(&mut rng, l, k).iter().fold(0u64, |acc, i| acc | (1 << i)))
                    .collect();
                (masks, w * count as f64 / m as f64)
            }
        })
        .collect();
    (exact, plan)
}

/// Run the decomposition over `batches` (labels optional) and report per-k statistics. `sha256` and `data` of
/// the returned body are left for the caller to fill.
pub fn decompose(
    dec: &Decomposition,
    batches: impl IntoIterator<Item = anyhow::Result<Batch>>,
    opts: &LeakyOptions,
    config: &RuntimeConfig,
) -> anyhow::Result<LeakyBody> {
    let mut runner = Runner::from_model(&dec.model, config)?;
    let l = dec.layers.len();
    let a = dec.alpha as f64;
    let (exact, plan) = plan_subsets(l, a, opts);
    let scalars: [ArrayD<f32>; 2] = [ArrayD::zeros(IxDyn(&[])), ArrayD::ones(IxDyn(&[]))];
    let mut seen = 0u64;
    let (mut err2, mut y2, mut max_abs) = (0.0f64, 0.0f64, 0.0f64);
    let mut leaky_correct = 0u64;
    let mut labelled = 0u64;
    let mut norm_sum = vec![0.0f64; l + 1];
    let mut group_correct = vec![0u64; l + 1];
    let mut partial_correct = vec![0u64; l + 1];
    let mut partial_err2 = vec![0.0f64; l + 1];
    for batch in batches {
        if seen as usize >= opts.samples {
            break;
        }
        let batch = batch?;
        let n = batch
            .x
            .shape()
            .first()
            .copied()
            .unwrap_or(0)
            .min(opts.samples - seen as usize);
        if n == 0 {
            continue;
        }
        let x = batch
            .x
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..n))
            .to_owned();
        let labels = batch.labels.as_ref().map(|v| &v[..n]);
        let mut y: Option<Vec<f32>> = None;
        let mut groups: Vec<Vec<f64>> = Vec::with_capacity(l + 1);
        for (masks, factor) in &plan {
            let mut acc: Vec<f64> = Vec::new();
            for &mask in masks {
                let mut feeds: Vec<(&str, Feed<'_>)> = vec![(dec.input.as_str(), Feed::F32(x.view()))];
                for (i, s) in dec.selectors.iter().enumerate() {
                    feeds.push((s.as_str(), Feed::F32(scalars[((mask >> i) & 1) as usize].view())));
                }
                let names: Vec<&str> = if y.is_none() {
                    vec![dec.output.as_str(), dec.gated_output.as_str()]
                } else {
                    vec![dec.gated_output.as_str()]
                };
                let out = runner.run_select(&feeds, &names)?;
                if y.is_none() {
                    let yo = out.get(&dec.output)?;
                    y = Some(yo.iter().copied().collect());
                }
                let f = out.get(&dec.gated_output)?;
                if acc.is_empty() {
                    acc = vec![0.0; f.len()];
                }
                acc.iter_mut().zip(f.iter()).for_each(|(s, &v)| *s += v as f64);
            }
            acc.iter_mut().for_each(|v| *v *= factor);
            groups.push(acc);
        }
        let y = y.unwrap_or_default();
        let width = y.len() / n;
        let argmax = |row: &[f64]| (0..row.len()).max_by(|&p, &q| row[p].total_cmp(&row[q])).unwrap_or(0);
        let mut partial = vec![0.0f64; y.len()];
        for (k, gk) in groups.iter().enumerate() {
            partial.iter_mut().zip(gk).for_each(|(p, g)| *p += g);
            for i in 0..n {
                let row = &gk[i * width..(i + 1) * width];
                norm_sum[k] += row.iter().map(|v| v * v).sum::<f64>().sqrt();
                let prow = &partial[i * width..(i + 1) * width];
                partial_err2[k] += prow
                    .iter()
                    .zip(&y[i * width..(i + 1) * width])
                    .map(|(p, &t)| (p - t as f64).powi(2))
                    .sum::<f64>();
                if let Some(lb) = labels {
                    group_correct[k] += u64::from(argmax(row) == lb[i] as usize);
                    partial_correct[k] += u64::from(argmax(prow) == lb[i] as usize);
                }
            }
        }
        for (p, &t) in partial.iter().zip(&y) {
            let d = p - t as f64;
            err2 += d * d;
            y2 += (t as f64).powi(2);
            max_abs = max_abs.max(d.abs());
        }
        if let Some(lb) = labels {
            let yf: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            for i in 0..n {
                leaky_correct += u64::from(argmax(&yf[i * width..(i + 1) * width]) == lb[i] as usize);
            }
            labelled += n as u64;
        }
        seen += n as u64;
    }
    if seen == 0 {
        anyhow::bail!("no samples were analysed (empty data set or --samples 0)");
    }
    let acc = |c: u64| (labelled > 0).then(|| c as f64 / labelled as f64);
    let y_norm = y2.sqrt().max(f64::MIN_POSITIVE);
    let groups = (0..=l)
        .map(|k| LeakyGroup {
            k,
            subsets: binomial(l, k),
            evaluated: plan[k].0.len(),
            weight: binomial(l, k) as f64 * a.powi((l - k) as i32) * (1.0 - a).powi(k as i32),
            mean_norm: norm_sum[k] / seen as f64,
            group_accuracy: acc(group_correct[k]),
            partial_accuracy: acc(partial_correct[k]),
            partial_rel_error: partial_err2[k].sqrt() / y_norm,
        })
        .collect();
    Ok(LeakyBody {
        model: dec.source.clone(),
        sha256: String::new(),
        data: None,
        layers: dec.layers.clone(),
        alpha: dec.alpha,
        exact,
        samples: seen,
        reconstruction_rel_error: err2.sqrt() / y_norm,
        max_abs_error: max_abs,
        leaky_accuracy: acc(leaky_correct),
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomials_and_subsets() {
        assert_eq!(binomial(12, 6), 924);
        assert_eq!(binomial(5, 0), 1);
        let s = k_subsets(5, 2);
        assert_eq!(s.len(), 10);
        assert!(s.iter().all(|m| m.count_ones() == 2));
        let weights: f64 = (0..=7)
            .map(|k| binomial(7, k) as f64 * 0.3f64.powi(7 - k as i32) * 0.7f64.powi(k as i32))
            .sum();
        assert!((weights - 1.0).abs() < 1e-12);
    }

    #[test]
    fn sampled_plan_scales_to_the_group_size() {
        let opts = LeakyOptions {
            max_exact: 12,
            subsets_per_k: 4,
            ..Default::default()
        };
        let (exact, plan) = plan_subsets(20, 0.1, &opts);
        assert!(!exact);
        // k = 0 and k = 20 have a single subset each: enumerated, unscaled.
        assert_eq!(plan[0].0, vec![0]);
        assert_eq!(plan[20].0, vec![(1u64 << 20) - 1]);
        assert_eq!(plan[3].0.len(), 4);
        assert!(plan[3].0.iter().all(|m| m.count_ones() == 3));
        let w3 = 0.1f64.powi(17) * 0.9f64.powi(3);
        assert!((plan[3].1 - w3 * binomial(20, 3) as f64 / 4.0).abs() < 1e-12 * plan[3].1);
    }
}

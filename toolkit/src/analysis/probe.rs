//! Linear probe on pooled features: closed-form ridge regression onto one-hot targets, streamed.
//!
//! Each sample goes to the train or the test side by a seeded hash of its index (fixed split, independent of
//! batching). Train samples only update the normal equations [X 1]ᵀ[X 1] and [X 1]ᵀY, so memory is O(dim²) plus
//! the test rows, which are capped. The penalty on weight j is `ridge · n · var_j` with an unpenalised bias:
//! exactly ridge on standardised features (the shift is absorbed by the bias), without a second pass.

use thiserror::Error;

use super::richness::patterns::split_hash;

#[derive(Debug, Error, PartialEq)]
pub enum ProbeError {
    #[error(
        "too few samples for a linear probe: {train} train / {test} test for {classes} classes (need at least \
         {min_train} train and {min_test} test; raise --samples)"
    )]
    TooFewSamples {
        train: u64,
        test: usize,
        classes: usize,
        min_train: u64,
        min_test: usize,
    },
    #[error("label {label} out of range for {classes} classes")]
    BadLabel { label: u32, classes: usize },
    #[error("ridge system is not positive definite (features contain NaN or Inf?)")]
    Singular,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeResult {
    pub test_accuracy: f64,
    pub n_train: u64,
    pub n_test: usize,
}

#[derive(Debug, Clone)]
pub struct RidgeProbe {
    dim: usize,
    classes: usize,
    ridge: f64,
    seed: u64,
    train_per_mille: u64,
    max_test: usize,
    gram: Vec<f64>,
    xty: Vec<f64>,
    n_train: u64,
    test_x: Vec<f32>,
    test_y: Vec<u32>,
}

impl RidgeProbe {
    /// 80 % train / 20 % test, at most `max_test` test rows kept.
    pub fn new(dim: usize, classes: usize, ridge: f64, seed: u64, max_test: usize) -> Self {
        let a = dim + 1;
        RidgeProbe {
            dim,
            classes,
            ridge,
            seed,
            train_per_mille: 800,
            max_test,
            gram: vec![0.0; a * a],
            xty: vec![0.0; a * classes],
            n_train: 0,
            test_x: Vec::new(),
            test_y: Vec::new(),
        }
    }

    /// `features` is `labels.len() × dim`; `first_index` is the stream index of the first row.
    pub fn push(&mut self, features: &[f32], labels: &[u32], first_index: u64) -> Result<(), ProbeError> {
        let (d, a, c) = (self.dim, self.dim + 1, self.classes);
        let mut train: Vec<f64> = Vec::new();
        let mut onehot: Vec<f64> = Vec::new();
        for (k, (x, &y)) in features.chunks_exact(d.max(1)).zip(labels).enumerate() {
            if y as usize >= c {
                return Err(ProbeError::BadLabel { label: y, classes: c });
            }
            if split_hash(self.seed, first_index + k as u64) % 1000 < self.train_per_mille {
                train.extend(x.iter().map(|&v| v as f64));
                train.push(1.0);
                onehot.extend((0..c).map(|j| f64::from(j == y as usize)));
            } else if self.test_y.len() < self.max_test {
                self.test_x.extend_from_slice(x);
                self.test_y.push(y);
            }
        }
        let nt = train.len() / a;
        if nt > 0 {
            // Normal equations of the batch as two GEMMs: [X 1]ᵀ[X 1] and [X 1]ᵀY.
            let r = ndarray::Array2::from_shape_vec((nt, a), train).map_err(|_| ProbeError::Singular)?;
            let t = ndarray::Array2::from_shape_vec((nt, c), onehot).map_err(|_| ProbeError::Singular)?;
            let g = r.t().dot(&r);
            let xy = r.t().dot(&t);
            self.gram.iter_mut().zip(g.iter()).for_each(|(s, v)| *s += v);
            self.xty.iter_mut().zip(xy.iter()).for_each(|(s, v)| *s += v);
            self.n_train += nt as u64;
        }
        Ok(())
    }

    pub fn finish(&self) -> Result<ProbeResult, ProbeError> {
        let (d, a, c) = (self.dim, self.dim + 1, self.classes);
        let (min_train, min_test) = (2 * c as u64, c);
        if self.n_train < min_train || self.test_y.len() < min_test {
            return Err(ProbeError::TooFewSamples {
                train: self.n_train,
                test: self.test_y.len(),
                classes: c,
                min_train,
                min_test,
            });
        }
        let n = self.n_train as f64;
        let mut m = vec![0.0; a * a];
        for i in 0..a {
            for j in i..a {
                m[i * a + j] = self.gram[i * a + j];
                m[j * a + i] = self.gram[i * a + j];
            }
        }
        for j in 0..d {
            let mean = self.gram[j * a + d] / n;
            let var = (self.gram[j * a + j] / n - mean * mean).max(0.0);
            // A constant feature duplicates the bias; any positive penalty makes the system solvable.
            m[j * a + j] += self.ridge * n * if var > 0.0 { var } else { 1.0 };
        }
        let l = cholesky(&m, a).ok_or(ProbeError::Singular)?;
        let mut w = vec![0.0; a * c];
        for k in 0..c {
            let b: Vec<f64> = (0..a).map(|i| self.xty[i * c + k]).collect();
            let sol = cholesky_solve(&l, a, &b);
            (0..a).for_each(|i| w[i * c + k] = sol[i]);
        }
        let mut correct = 0usize;
        for (x, &y) in self.test_x.chunks_exact(d.max(1)).zip(&self.test_y) {
            let scores: Vec<f64> = (0..c)
                .map(|k| w[d * c + k] + x.iter().enumerate().map(|(i, &v)| v as f64 * w[i * c + k]).sum::<f64>())
                .collect();
            let best = (0..c).max_by(|&p, &q| scores[p].total_cmp(&scores[q])).unwrap_or(0);
            correct += usize::from(best == y as usize);
        }
        Ok(ProbeResult {
            test_accuracy: correct as f64 / self.test_y.len() as f64,
            n_train: self.n_train,
            n_test: self.test_y.len(),
        })
    }
}

/// Lower-triangular L with LLᵀ = m, or `None` if m is not positive definite.
pub(crate) fn cholesky(m: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = m[i * n + j] - (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum::<f64>();
            if i == j {
                if s.is_nan() || s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

pub(crate) fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (b[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - ((i + 1)..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Three Gaussian blobs in 4-D: separable, so a linear probe must be near perfect; pure noise must be near
    /// chance.
    fn blobs(n: usize, separation: f32, seed: u64) -> (Vec<f32>, Vec<u32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let c = (i % 3) as u32;
            for j in 0..4 {
                let centre = if j == c as usize { separation } else { 0.0 };
                x.push(centre + rng.random_range(-1.0f32..1.0) + 100.0);
            }
            y.push(c);
        }
        (x, y)
    }

    #[test]
    fn separable_blobs_are_probed_perfectly_and_noise_is_not() {
        let (x, y) = blobs(600, 6.0, 1);
        let mut p = RidgeProbe::new(4, 3, 1e-3, 9, 10_000);
        // Streaming in uneven batches must not change the split or the result.
        p.push(&x[..40], &y[..10], 0).unwrap();
        p.push(&x[40..], &y[10..], 10).unwrap();
        let r = p.finish().unwrap();
        assert_eq!(r.n_train as usize + r.n_test, 600);
        assert!(r.n_test > 80 && r.n_test < 160, "{r:?}");
        assert_eq!(r.test_accuracy, 1.0);
        let mut one = RidgeProbe::new(4, 3, 1e-3, 9, 10_000);
        one.push(&x, &y, 0).unwrap();
        assert_eq!(one.finish().unwrap(), r);

        let (x, y) = blobs(600, 0.0, 2);
        let mut p = RidgeProbe::new(4, 3, 1e-3, 9, 10_000);
        p.push(&x, &y, 0).unwrap();
        let acc = p.finish().unwrap().test_accuracy;
        assert!(acc < 0.55, "noise probed at {acc}");
    }

    #[test]
    fn closed_form_matches_normal_equations_by_hand() {
        // 1-D feature, 2 classes, zero penalty: least squares of one-hot y on [x, 1]. With x = ±1 labels follow the
        // sign, so the fit is exact and test accuracy 1.
        let x: Vec<f32> = (0..200).map(|i| if i % 2 == 0 { -1.0 } else { 1.0 }).collect();
        let y: Vec<u32> = (0..200).map(|i| (i % 2) as u32).collect();
        let mut p = RidgeProbe::new(1, 2, 0.0, 3, 1000);
        p.push(&x, &y, 0).unwrap();
        assert_eq!(p.finish().unwrap().test_accuracy, 1.0);
    }

    #[test]
    fn too_few_samples_and_bad_labels_are_errors() {
        let (x, y) = blobs(6, 6.0, 1);
        let mut p = RidgeProbe::new(4, 3, 1e-3, 9, 100);
        p.push(&x, &y, 0).unwrap();
        let e = p.finish().unwrap_err();
        assert!(matches!(e, ProbeError::TooFewSamples { classes: 3, .. }), "{e}");
        assert!(e.to_string().contains("--samples"));
        let mut p = RidgeProbe::new(4, 3, 1e-3, 9, 100);
        assert_eq!(
            p.push(&x[..4], &[7], 0),
            Err(ProbeError::BadLabel { label: 7, classes: 3 })
        );
    }
}

//! Linear CKA with the debiased (unbiased) HSIC estimator of Song et al. (2012), as in Kornblith et al. (2019)
//! and Nguyen et al. (2021).
//!
//! With K = XXᵀ, L = YYᵀ and K̃, L̃ their copies with zeroed diagonals,
//! HSIC₁(K, L) = [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1] / (n(n−3)).
//! Every term is computed in feature space (‖XᵀY‖², X(Xᵀ1), row norms), so the cost is O(n·p·q) and no n×n Gram
//! matrix is formed; the tests pin this against the dense O(n²) formula.

use thiserror::Error;

#[derive(Debug, Error, PartialEq)]
pub enum CkaError {
    #[error("CKA needs the same samples on both sides: {left} vs {right} rows")]
    RowMismatch { left: usize, right: usize },
    #[error("debiased CKA needs at least 4 samples, got {0}")]
    TooFewSamples(usize),
    #[error("a representation is constant over the samples (HSIC(X,X) ≤ 0), CKA is undefined")]
    Degenerate,
}

/// Row-major `n × dim` features, centred in f64. Centring does not change the estimator (it only depends on
/// differences of rows) but keeps the sums below small.
#[derive(Debug, Clone)]
pub struct Features {
    pub n: usize,
    pub dim: usize,
    pub data: Vec<f64>,
}

impl Features {
    pub fn from_rows(rows: &[f32], dim: usize) -> Self {
        let n = rows.len().checked_div(dim).unwrap_or(0);
        let mut data: Vec<f64> = rows[..n * dim].iter().map(|&x| x as f64).collect();
        if n > 0 {
            let mut mean = vec![0.0; dim];
            for r in data.chunks_exact(dim) {
                mean.iter_mut().zip(r).for_each(|(m, x)| *m += x);
            }
            mean.iter_mut().for_each(|m| *m /= n as f64);
            for r in data.chunks_exact_mut(dim) {
                r.iter_mut().zip(&mean).for_each(|(x, m)| *x -= m);
            }
        }
        Features { n, dim, data }
    }

    fn row_sq_norms(&self) -> Vec<f64> {
        self.data
            .chunks_exact(self.dim.max(1))
            .map(|r| r.iter().map(|x| x * x).sum())
            .collect()
    }

    /// K̃1 = X(Xᵀ1) − diag(K).
    fn gram_row_sums_offdiag(&self, diag: &[f64]) -> Vec<f64> {
        let mut col_sum = vec![0.0; self.dim];
        for r in self.data.chunks_exact(self.dim.max(1)) {
            col_sum.iter_mut().zip(r).for_each(|(s, x)| *s += x);
        }
        self.data
            .chunks_exact(self.dim.max(1))
            .zip(diag)
            .map(|(r, d)| r.iter().zip(&col_sum).map(|(x, s)| x * s).sum::<f64>() - d)
            .collect()
    }
}

/// ‖XᵀY‖²_F = tr(KL).
fn cross_frobenius_sq(x: &Features, y: &Features) -> f64 {
    let xv = ndarray::ArrayView2::from_shape((x.n, x.dim), &x.data);
    let yv = ndarray::ArrayView2::from_shape((y.n, y.dim), &y.data);
    match (xv, yv) {
        (Ok(xv), Ok(yv)) => xv.t().dot(&yv).iter().map(|v| v * v).sum(),
        _ => 0.0,
    }
}

/// Unbiased HSIC of the linear kernels of `x` and `y`.
pub fn hsic_unbiased(x: &Features, y: &Features) -> Result<f64, CkaError> {
    if x.n != y.n {
        return Err(CkaError::RowMismatch { left: x.n, right: y.n });
    }
    let n = x.n;
    if n < 4 {
        return Err(CkaError::TooFewSamples(n));
    }
    let (kd, ld) = (x.row_sq_norms(), y.row_sq_norms());
    let tr_kl = cross_frobenius_sq(x, y) - kd.iter().zip(&ld).map(|(a, b)| a * b).sum::<f64>();
    let (k1, l1) = (x.gram_row_sums_offdiag(&kd), y.gram_row_sums_offdiag(&ld));
    let sum_k: f64 = k1.iter().sum();
    let sum_l: f64 = l1.iter().sum();
    let k1l1: f64 = k1.iter().zip(&l1).map(|(a, b)| a * b).sum();
    let nf = n as f64;
    Ok((tr_kl + sum_k * sum_l / ((nf - 1.0) * (nf - 2.0)) - 2.0 / (nf - 2.0) * k1l1) / (nf * (nf - 3.0)))
}

/// Debiased linear CKA. Equals 1 for a representation with itself and is invariant to orthogonal transforms and
/// isotropic scaling of either side; being debiased, it can dip slightly below 0 for unrelated representations.
pub fn linear_cka(x: &Features, y: &Features) -> Result<f64, CkaError> {
    let xy = hsic_unbiased(x, y)?;
    let xx = hsic_unbiased(x, x)?;
    let yy = hsic_unbiased(y, y)?;
    if xx <= 0.0 || yy <= 0.0 {
        return Err(CkaError::Degenerate);
    }
    Ok(xy / (xx * yy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(n: usize, d: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n * d).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// The textbook dense estimator: build both n×n Grams, zero the diagonals, apply the formula literally.
    fn dense_hsic(x: &[f32], p: usize, y: &[f32], q: usize) -> f64 {
        let n = x.len() / p;
        let gram = |a: &[f32], d: usize| -> Vec<f64> {
            let mut g = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    if i != j {
                        g[i * n + j] = (0..d).map(|k| a[i * d + k] as f64 * a[j * d + k] as f64).sum();
                    }
                }
            }
            g
        };
        let (k, l) = (gram(x, p), gram(y, q));
        let tr: f64 = (0..n * n).map(|i| k[i] * l[i]).sum();
        let sk: f64 = k.iter().sum();
        let sl: f64 = l.iter().sum();
        let k1: Vec<f64> = (0..n).map(|i| k[i * n..(i + 1) * n].iter().sum()).collect();
        let l1: Vec<f64> = (0..n).map(|i| l[i * n..(i + 1) * n].iter().sum()).collect();
        let k1l1: f64 = k1.iter().zip(&l1).map(|(a, b)| a * b).sum();
        let nf = n as f64;
        (tr + sk * sl / ((nf - 1.0) * (nf - 2.0)) - 2.0 / (nf - 2.0) * k1l1) / (nf * (nf - 3.0))
    }

    fn dense_cka(x: &[f32], p: usize, y: &[f32], q: usize) -> f64 {
        dense_hsic(x, p, y, q) / (dense_hsic(x, p, x, p) * dense_hsic(y, q, y, q)).sqrt()
    }

    #[test]
    fn matches_dense_estimator_on_random_data() {
        let (n, p, q) = (50, 6, 9);
        let x = random(n, p, 11);
        // y partly depends on x so that CKA is well away from 0.
        let mut y = random(n, q, 12);
        for i in 0..n {
            for j in 0..p.min(q) {
                y[i * q + j] += 2.0 * x[i * p + j] + 0.5;
            }
        }
        let fast = linear_cka(&Features::from_rows(&x, p), &Features::from_rows(&y, q)).unwrap();
        let dense = dense_cka(&x, p, &y, q);
        assert!((fast - dense).abs() < 1e-12, "{fast} vs {dense}");
        assert!(fast > 0.3 && fast < 1.0, "{fast}");
        // The raw HSIC values agree too (the dense one is fed uncentred data: the estimator is shift invariant).
        let h = hsic_unbiased(&Features::from_rows(&x, p), &Features::from_rows(&y, q)).unwrap();
        assert!((h - dense_hsic(&x, p, &y, q)).abs() < 1e-12 * h.abs().max(1.0));
    }

    #[test]
    fn self_similarity_and_invariances() {
        let (n, p) = (40, 5);
        let x = random(n, p, 21);
        let fx = Features::from_rows(&x, p);
        assert!((linear_cka(&fx, &fx).unwrap() - 1.0).abs() < 1e-12);
        // Rotation in the (0,1) and (2,3) planes plus isotropic scaling by 7.
        let (c, s) = (0.6f32, 0.8f32);
        let mut z = x.clone();
        for r in z.chunks_exact_mut(p) {
            let (a, b, d, e) = (r[0], r[1], r[2], r[3]);
            r[0] = 7.0 * (c * a - s * b);
            r[1] = 7.0 * (s * a + c * b);
            r[2] = 7.0 * (c * d + s * e);
            r[3] = 7.0 * (-s * d + c * e);
            r[4] *= 7.0;
        }
        let y = random(n, 3, 22);
        let fy = Features::from_rows(&y, 3);
        let fz = Features::from_rows(&z, p);
        assert!((linear_cka(&fx, &fz).unwrap() - 1.0).abs() < 1e-6);
        let (a, b) = (linear_cka(&fx, &fy).unwrap(), linear_cka(&fz, &fy).unwrap());
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }

    #[test]
    fn bad_shapes_are_errors() {
        let a = Features::from_rows(&random(5, 2, 1), 2);
        let b = Features::from_rows(&random(6, 2, 1), 2);
        assert_eq!(linear_cka(&a, &b), Err(CkaError::RowMismatch { left: 5, right: 6 }));
        let tiny = Features::from_rows(&random(3, 2, 1), 2);
        assert_eq!(linear_cka(&tiny, &tiny), Err(CkaError::TooFewSamples(3)));
        let flat = Features::from_rows(&[1.0; 20], 2);
        assert_eq!(linear_cka(&flat, &flat), Err(CkaError::Degenerate));
    }
}

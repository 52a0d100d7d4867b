//! Streaming channel covariance: each batch is reduced to (count, mean, scatter) in f64 and merged with the running
//! state by Chan et al.'s pairwise update, so the result does not depend on how samples were batched (up to
//! rounding) and large feature means do not cancel catastrophically as with Σx² − n·x̄².

/// Running mean and scatter matrix (Σ (x−x̄)(x−x̄)ᵀ, upper triangle used) of `dim`-dimensional rows.
#[derive(Debug, Clone)]
pub struct StreamingCov {
    dim: usize,
    n: u64,
    mean: Vec<f64>,
    scatter: Vec<f64>,
}

impl StreamingCov {
    pub fn new(dim: usize) -> Self {
        StreamingCov {
            dim,
            n: 0,
            mean: vec![0.0; dim],
            scatter: vec![0.0; dim * dim],
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn count(&self) -> u64 {
        self.n
    }

    /// Add `rows.len() / dim` rows given row-major.
    pub fn push_rows(&mut self, rows: &[f32]) {
        let d = self.dim;
        if d == 0 || rows.is_empty() {
            return;
        }
        assert_eq!(rows.len() % d, 0, "rows must be a multiple of dim");
        let nb = rows.len() / d;
        let mut bmean = vec![0.0f64; d];
        for r in rows.chunks_exact(d) {
            bmean.iter_mut().zip(r).for_each(|(m, &x)| *m += x as f64);
        }
        bmean.iter_mut().for_each(|m| *m /= nb as f64);
        // Batch scatter around the batch mean as one f64 GEMM (ndarray's blocked kernel): for 1000+ channels this
        // is the hot loop of the whole analysis.
        let centred = ndarray::Array2::from_shape_fn((nb, d), |(r, j)| rows[r * d + j] as f64 - bmean[j]);
        let bscatter = centred.t().dot(&centred);
        let bscatter = bscatter.as_slice().unwrap_or(&[]);
        self.merge_parts(nb as u64, &bmean, bscatter);
    }

    /// Merge another accumulator (e.g. from a parallel worker).
    pub fn merge(&mut self, other: &StreamingCov) {
        assert_eq!(self.dim, other.dim, "covariance dimensions differ");
        self.merge_parts(other.n, &other.mean, &other.scatter);
    }

    fn merge_parts(&mut self, nb: u64, bmean: &[f64], bscatter: &[f64]) {
        if nb == 0 {
            return;
        }
        let d = self.dim;
        let na = self.n as f64;
        let nbf = nb as f64;
        let n = na + nbf;
        let delta: Vec<f64> = bmean.iter().zip(&self.mean).map(|(b, a)| b - a).collect();
        let w = na * nbf / n;
        for i in 0..d {
            for j in i..d {
                self.scatter[i * d + j] += bscatter[i * d + j] + w * delta[i] * delta[j];
            }
        }
        self.mean.iter_mut().zip(&delta).for_each(|(m, dl)| *m += dl * nbf / n);
        self.n += nb;
    }

    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// Sample covariance (divides by n − 1), full symmetric matrix; `None` with fewer than two rows.
    pub fn covariance(&self) -> Option<Vec<f64>> {
        if self.n < 2 {
            return None;
        }
        let d = self.dim;
        let mut c = vec![0.0; d * d];
        let denom = (self.n - 1) as f64;
        for i in 0..d {
            for j in i..d {
                let v = self.scatter[i * d + j] / denom;
                c[i * d + j] = v;
                c[j * d + i] = v;
            }
        }
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Textbook two-pass covariance, the independent reference.
    fn two_pass(rows: &[f32], d: usize) -> Vec<f64> {
        let n = rows.len() / d;
        let mean: Vec<f64> = (0..d)
            .map(|j| rows.chunks_exact(d).map(|r| r[j] as f64).sum::<f64>() / n as f64)
            .collect();
        let mut c = vec![0.0; d * d];
        for i in 0..d {
            for j in 0..d {
                c[i * d + j] = rows
                    .chunks_exact(d)
                    .map(|r| (r[i] as f64 - mean[i]) * (r[j] as f64 - mean[j]))
                    .sum::<f64>()
                    / (n - 1) as f64;
            }
        }
        c
    }

    #[test]
    fn streaming_equals_one_shot_and_two_pass() {
        let d = 7;
        let n = 301;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        // A large common offset is the case where naive Σx² formulas lose all digits.
        let rows: Vec<f32> = (0..n * d)
            .map(|i| 1000.0 + (i % d) as f32 + rng.random_range(-1.0..1.0))
            .collect();
        let mut one = StreamingCov::new(d);
        one.push_rows(&rows);
        let mut streamed = StreamingCov::new(d);
        let mut at = 0;
        for size in [1usize, 5, 64, 17, 200, 14] {
            let end = (at + size * d).min(rows.len());
            streamed.push_rows(&rows[at..end]);
            at = end;
        }
        assert_eq!(at, rows.len());
        assert_eq!(streamed.count(), n as u64);
        let reference = two_pass(&rows, d);
        let (a, b) = (one.covariance().unwrap(), streamed.covariance().unwrap());
        for k in 0..d * d {
            assert!(
                (a[k] - reference[k]).abs() < 1e-9,
                "one-shot {k}: {} vs {}",
                a[k],
                reference[k]
            );
            assert!((b[k] - a[k]).abs() < 1e-9, "streamed {k}: {} vs {}", b[k], a[k]);
        }
        let mut merged = StreamingCov::new(d);
        let mut half = StreamingCov::new(d);
        merged.push_rows(&rows[..150 * d]);
        half.push_rows(&rows[150 * d..]);
        merged.merge(&half);
        let m = merged.covariance().unwrap();
        assert!(m.iter().zip(&a).all(|(x, y)| (x - y).abs() < 1e-9));
    }

    #[test]
    fn too_few_rows_has_no_covariance() {
        let mut c = StreamingCov::new(3);
        assert!(c.covariance().is_none());
        c.push_rows(&[1.0, 2.0, 3.0]);
        assert!(c.covariance().is_none());
        c.push_rows(&[3.0, 2.0, 1.0]);
        // Two rows: var = (x1−x2)²/2.
        let cov = c.covariance().unwrap();
        assert!((cov[0] - 2.0).abs() < 1e-12 && (cov[2] + 2.0).abs() < 1e-12 && cov[4].abs() < 1e-12);
    }
}

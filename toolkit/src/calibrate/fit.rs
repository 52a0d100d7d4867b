//! The two refits, as streaming accumulators and closed-form solves.
//!
//! - [`Moments`]: per-channel affine match. With the layer's output y and the reference's t at the same tensor,
//!   a_c = std(t_c)/std(y_c) and s_c = mean(t_c) − a_c·mean(y_c), so a_c·y_c + s_c has t_c's mean and std; the
//!   pair folds into the layer as w_c ← a_c·w_c, b_c ← a_c·b_c + s_c.
//! - [`Normal`]: ridge least squares of the reference's output on the layer's streamed input features. The
//!   normal equations FᵀF and FᵀT accumulate over batches (memory O(d²)); the solve is
//!   (FᵀF + λD)θ = FᵀT + λDθ₀, shrinking toward the weights θ₀ the layer had (D penalises weights, not the
//!   bias), with λ = ridge · trace(FᵀF)/d so the penalty is relative to the features' scale.
//!
//! Both report ‖y − t‖/‖t‖ on the calibration rows before and after, from the accumulated moments.

use anyhow::{Result, bail};
use ndarray::{ArrayD, ArrayView2, Axis};
use rayon::prelude::*;

use crate::analysis::probe::{cholesky, cholesky_solve};

/// Per-channel sums of y, y², t, t², y·t over every position of every sample.
#[derive(Debug, Clone)]
pub struct Moments {
    n: f64,
    sy: Vec<f64>,
    syy: Vec<f64>,
    st: Vec<f64>,
    stt: Vec<f64>,
    syt: Vec<f64>,
}

/// A solved affine match: per channel scale and shift, and the relative errors before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineFit {
    pub scale: Vec<f64>,
    pub shift: Vec<f64>,
    pub rel_before: f64,
    pub rel_after: f64,
    pub rows: u64,
}

impl Moments {
    pub fn new(channels: usize) -> Self {
        let z = vec![0.0; channels];
        Moments {
            n: 0.0,
            sy: z.clone(),
            syy: z.clone(),
            st: z.clone(),
            stt: z.clone(),
            syt: z,
        }
    }

    /// Add one batch; `y` and `t` have the same shape, channels on `axis`.
    pub fn push(&mut self, y: &ArrayD<f32>, t: &ArrayD<f32>, axis: usize) {
        self.add(y, Some(t), axis);
    }

    /// Add one batch of `y` alone (for [`Moments::mean_var`]).
    pub fn observe(&mut self, y: &ArrayD<f32>, axis: usize) {
        self.add(y, None, axis);
    }

    /// Per-channel mean and (biased) variance of y.
    pub fn mean_var(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.n.max(1.0);
        let mean: Vec<f64> = self.sy.iter().map(|s| s / n).collect();
        let var = self
            .syy
            .iter()
            .zip(&mean)
            .map(|(s, m)| (s / n - m * m).max(0.0))
            .collect();
        (mean, var)
    }

    fn add(&mut self, y: &ArrayD<f32>, t: Option<&ArrayD<f32>>, axis: usize) {
        let c = self.sy.len();
        let sums: Vec<[f64; 5]> = (0..c)
            .into_par_iter()
            .map(|k| {
                let yk = y.index_axis(Axis(axis), k);
                let mut s = [0.0f64; 5];
                match t {
                    Some(t) => {
                        for (&a, &b) in yk.iter().zip(t.index_axis(Axis(axis), k).iter()) {
                            let (a, b) = (a as f64, b as f64);
                            s[0] += a;
                            s[1] += a * a;
                            s[2] += b;
                            s[3] += b * b;
                            s[4] += a * b;
                        }
                    }
                    None => {
                        for &a in yk.iter() {
                            s[0] += a as f64;
                            s[1] += (a as f64) * (a as f64);
                        }
                    }
                }
                s
            })
            .collect();
        self.n += (y.len() / c.max(1)) as f64;
        for (k, s) in sums.into_iter().enumerate() {
            self.sy[k] += s[0];
            self.syy[k] += s[1];
            self.st[k] += s[2];
            self.stt[k] += s[3];
            self.syt[k] += s[4];
        }
    }

    /// Match mean and std per channel; without a bias only the second moment is matched (scale alone).
    pub fn solve(&self, bias: bool) -> AffineFit {
        let n = self.n.max(1.0);
        let mut fit = AffineFit {
            scale: Vec::with_capacity(self.sy.len()),
            shift: Vec::with_capacity(self.sy.len()),
            rel_before: 0.0,
            rel_after: 0.0,
            rows: self.n as u64,
        };
        let (mut before, mut after, mut total) = (0.0, 0.0, 0.0);
        for k in 0..self.sy.len() {
            let (my, mt) = (self.sy[k] / n, self.st[k] / n);
            let vy = (self.syy[k] / n - my * my).max(0.0);
            let vt = (self.stt[k] / n - mt * mt).max(0.0);
            let (a, s) = if bias {
                // A constant channel has no spread to match: keep its scale, move its mean.
                let a = if vy > 1e-12 * (vt + 1e-30) && vy > 0.0 {
                    (vt / vy).sqrt()
                } else {
                    1.0
                };
                (a, mt - a * my)
            } else if self.syy[k] > 0.0 {
                ((self.stt[k] / self.syy[k]).sqrt(), 0.0)
            } else {
                (1.0, 0.0)
            };
            let err = |a: f64, s: f64| {
                a * a * self.syy[k] + 2.0 * a * s * self.sy[k] + self.n * s * s
                    - 2.0 * a * self.syt[k]
                    - 2.0 * s * self.st[k]
                    + self.stt[k]
            };
            before += err(1.0, 0.0).max(0.0);
            after += err(a, s).max(0.0);
            total += self.stt[k];
            fit.scale.push(a);
            fit.shift.push(s);
        }
        let total = total.max(f64::MIN_POSITIVE);
        fit.rel_before = (before / total).sqrt();
        fit.rel_after = (after / total).sqrt();
        fit
    }
}

/// Normal equations of one least-squares problem: features F (rows × d) against targets T (rows × outs).
#[derive(Debug, Clone)]
pub struct Normal {
    pub d: usize,
    pub outs: usize,
    g: Vec<f64>,
    r: Vec<f64>,
    tt: f64,
    pub rows: u64,
}

/// A solved refit of one group: θ (outs × d, row-major) and the relative errors before and after.
#[derive(Debug, Clone)]
pub struct LsqFit {
    pub theta: Vec<f64>,
    pub lambda: f64,
    pub err_before: f64,
    pub err_after: f64,
    pub total: f64,
}

impl Normal {
    pub fn new(d: usize, outs: usize) -> Self {
        Normal {
            d,
            outs,
            g: vec![0.0; d * d],
            r: vec![0.0; d * outs],
            tt: 0.0,
            rows: 0,
        }
    }

    /// Add `f` (rows × d) and `t` (rows × outs). The products run as f32 GEMMs on row chunks in parallel and
    /// are summed in f64.
    pub fn push(&mut self, f: &[f32], t: &[f32]) {
        let (d, o) = (self.d, self.outs);
        let rows = f.len() / d.max(1);
        if rows == 0 {
            return;
        }
        let chunk = rows.div_ceil(rayon::current_num_threads().max(1)).max(256);
        let parts: Vec<(ndarray::Array2<f32>, ndarray::Array2<f32>, f64)> = (0..rows.div_ceil(chunk))
            .into_par_iter()
            .map(|i| {
                let (a, b) = (i * chunk, ((i + 1) * chunk).min(rows));
                let fv = ArrayView2::from_shape((b - a, d), &f[a * d..b * d]).expect("rows × d features");
                let tv = ArrayView2::from_shape((b - a, o), &t[a * o..b * o]).expect("rows × outs targets");
                let tt = tv.iter().map(|&x| (x as f64) * (x as f64)).sum();
                (fv.t().dot(&fv), fv.t().dot(&tv), tt)
            })
            .collect();
        for (g, r, tt) in parts {
            self.g.iter_mut().zip(g.iter()).for_each(|(s, &v)| *s += v as f64);
            self.r.iter_mut().zip(r.iter()).for_each(|(s, &v)| *s += v as f64);
            self.tt += tt;
        }
        self.rows += rows as u64;
    }

    /// Σ_o ‖t_o − Fθ_o‖² from the moments.
    fn sq_error(&self, theta: &[f64]) -> f64 {
        let d = self.d;
        let mut e = self.tt;
        for o in 0..self.outs {
            let th: Vec<f64> = (0..d).map(|k| theta[o * d + k]).collect();
            let mut quad = 0.0;
            for i in 0..d {
                let gi = &self.g[i * d..(i + 1) * d];
                quad += th[i] * gi.iter().zip(&th).map(|(a, b)| a * b).sum::<f64>();
            }
            let lin: f64 = (0..d).map(|k| th[k] * self.r[k * self.outs + o]).sum();
            e += quad - 2.0 * lin;
        }
        e.max(0.0)
    }

    /// Solve with `ridge` toward `theta0` (outs × d); the first `penalised` features carry the penalty (the
    /// rest — the bias — do not).
    pub fn solve(&self, theta0: &[f64], penalised: usize, ridge: f64) -> Result<LsqFit> {
        let d = self.d;
        let trace: f64 = (0..penalised).map(|k| self.g[k * d + k]).sum();
        let lambda = ridge * trace / penalised.max(1) as f64;
        let mut a = self.g.clone();
        for k in 0..penalised {
            a[k * d + k] += lambda;
        }
        // Symmetrise: f32 partial products are symmetric per chunk, but guard against drift.
        for i in 0..d {
            for j in 0..i {
                let m = 0.5 * (a[i * d + j] + a[j * d + i]);
                a[i * d + j] = m;
                a[j * d + i] = m;
            }
        }
        let Some(l) = cholesky(&a, d) else {
            bail!("the least-squares system is not positive definite (inputs constant, NaN or Inf?)");
        };
        let theta: Vec<f64> = (0..self.outs)
            .into_par_iter()
            .flat_map_iter(|o| {
                let rhs: Vec<f64> = (0..d)
                    .map(|k| self.r[k * self.outs + o] + if k < penalised { lambda * theta0[o * d + k] } else { 0.0 })
                    .collect();
                cholesky_solve(&l, d, &rhs)
            })
            .collect();
        if theta.iter().any(|v| !v.is_finite()) {
            bail!("the least-squares solution is not finite");
        }
        Ok(LsqFit {
            err_before: self.sq_error(theta0),
            err_after: self.sq_error(&theta),
            total: self.tt,
            theta,
            lambda,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::IxDyn;
    use rand::{Rng, SeedableRng};

    #[test]
    fn affine_recovers_a_known_scale_and_shift() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let y: Vec<f32> = (0..2 * 3 * 50).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y = ArrayD::from_shape_vec(IxDyn(&[2, 3, 50]), y).unwrap();
        let (a, s) = ([2.0f32, 0.5, 3.0], [1.0f32, -2.0, 0.0]);
        let mut t = y.clone();
        for c in 0..3 {
            t.index_axis_mut(Axis(1), c).mapv_inplace(|v| a[c] * v + s[c]);
        }
        let mut m = Moments::new(3);
        m.push(&y, &t, 1);
        let fit = m.solve(true);
        for c in 0..3 {
            assert!((fit.scale[c] - a[c] as f64).abs() < 1e-4, "{fit:?}");
            assert!((fit.shift[c] - s[c] as f64).abs() < 1e-4, "{fit:?}");
        }
        assert!(fit.rel_before > 0.3 && fit.rel_after < 1e-4, "{fit:?}");
        assert_eq!(fit.rows, 100);
    }

    #[test]
    fn least_squares_recovers_a_linear_map_and_ridge_shrinks_to_the_start() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let (rows, k, outs) = (2000, 5, 3);
        let w: Vec<f64> = (0..outs * (k + 1)).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut f = Vec::new();
        let mut t = Vec::new();
        for _ in 0..rows {
            let x: Vec<f64> = (0..k).map(|_| rng.random_range(-1.0..1.0)).chain([1.0]).collect();
            f.extend(x.iter().map(|&v| v as f32));
            for o in 0..outs {
                t.push((0..=k).map(|j| w[o * (k + 1) + j] * x[j]).sum::<f64>() as f32);
            }
        }
        let mut n = Normal::new(k + 1, outs);
        n.push(&f[..f.len() / 2], &t[..t.len() / 2]);
        n.push(&f[f.len() / 2..], &t[t.len() / 2..]);
        assert_eq!(n.rows, rows as u64);
        let zero = vec![0.0; outs * (k + 1)];
        let fit = n.solve(&zero, k, 1e-9).unwrap();
        for (got, want) in fit.theta.iter().zip(&w) {
            assert!((got - want).abs() < 1e-3, "{:?} vs {w:?}", fit.theta);
        }
        assert!(fit.err_after / fit.total < 1e-8 && fit.err_before > fit.err_after * 1e6);
        // A huge ridge keeps the weights at the start (zero) but still fits the unpenalised bias.
        let fit = n.solve(&zero, k, 1e9).unwrap();
        for o in 0..outs {
            assert!(fit.theta[o * (k + 1)..o * (k + 1) + k].iter().all(|v| v.abs() < 1e-6));
            assert!((fit.theta[o * (k + 1) + k] - w[o * (k + 1) + k]).abs() < 0.1);
        }
    }
}

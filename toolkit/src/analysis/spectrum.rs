//! Eigenvalues of symmetric matrices and the two rank measures built on them (effective rank, participation
//! ratio). Everything is f64: covariance spectra of ReLU features span many decades.

/// Eigenvalues of the symmetric `n × n` row-major matrix `a`, sorted descending.
///
/// Householder reduction to tridiagonal form, then implicit QL with Wilkinson-style shifts (the EISPACK
/// tred2/tql1 pair, eigenvalues only): ~4n³/3 flops, so a 1280-channel covariance takes about a second where
/// cyclic Jacobi needs several sweeps of 2n³. [`jacobi_eigenvalues`] is the slower, independent reference the
/// tests compare against. Only the lower triangle is read. Falls back to Jacobi if QL fails to converge.
pub fn symmetric_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    assert_eq!(a.len(), n * n, "matrix must be n×n");
    if n <= 2 {
        return jacobi_eigenvalues(a, n);
    }
    let mut m = a.to_vec();
    let (mut d, mut e) = tridiagonalize(&mut m, n);
    if !tql1(&mut d, &mut e) {
        return jacobi_eigenvalues(a, n);
    }
    d.sort_by(|x, y| y.total_cmp(x));
    d
}

/// Householder tridiagonalisation of the lower triangle of `a` (destroyed): diagonal `d`, sub-diagonal `e` with
/// `e[i]` coupling rows i−1 and i (`e[0] = 0`).
fn tridiagonalize(a: &mut [f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut d = vec![0.0; n];
    let mut e = vec![0.0; n];
    for i in (1..n).rev() {
        let l = i - 1;
        let mut h = 0.0;
        if l > 0 {
            let scale: f64 = (0..=l).map(|k| a[i * n + k].abs()).sum();
            if scale == 0.0 {
                e[i] = a[i * n + l];
            } else {
                for k in 0..=l {
                    a[i * n + k] /= scale;
                    h += a[i * n + k] * a[i * n + k];
                }
                let f = a[i * n + l];
                let g = if f >= 0.0 { -h.sqrt() } else { h.sqrt() };
                e[i] = scale * g;
                h -= f * g;
                a[i * n + l] = f - g;
                let mut f = 0.0;
                for j in 0..=l {
                    let mut g = 0.0;
                    for k in 0..=j {
                        g += a[j * n + k] * a[i * n + k];
                    }
                    for k in (j + 1)..=l {
                        g += a[k * n + j] * a[i * n + k];
                    }
                    e[j] = g / h;
                    f += e[j] * a[i * n + j];
                }
                let hh = f / (h + h);
                for j in 0..=l {
                    let f = a[i * n + j];
                    let g = e[j] - hh * f;
                    e[j] = g;
                    for k in 0..=j {
                        a[j * n + k] -= f * e[k] + g * a[i * n + k];
                    }
                }
            }
        } else {
            e[i] = a[i * n + l];
        }
        d[i] = h;
    }
    for i in 0..n {
        d[i] = a[i * n + i];
    }
    e[0] = 0.0;
    (d, e)
}

/// Implicit QL on the tridiagonal (d, e); eigenvalues land in `d`. `false` if an eigenvalue needs more than 60
/// iterations (does not happen for finite symmetric input).
fn tql1(d: &mut [f64], e: &mut [f64]) -> bool {
    let n = d.len();
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    for l in 0..n {
        let mut iter = 0;
        loop {
            let mut m = l;
            while m < n - 1 {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iter += 1;
            if iter > 60 {
                return false;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = g.hypot(1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut underflow = false;
            for i in (l..m).rev() {
                let f = s * e[i];
                let b = c * e[i];
                r = f.hypot(g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * b;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - b;
            }
            if underflow {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    true
}

/// Eigenvalues of the symmetric `n × n` row-major matrix `a`, sorted descending, by cyclic Jacobi: O(n³) per
/// sweep and ~6–10 sweeps, but unconditionally accurate. Only the upper triangle is read.
pub fn jacobi_eigenvalues(a: &[f64], n: usize) -> Vec<f64> {
    assert_eq!(a.len(), n * n, "matrix must be n×n");
    let mut m = a.to_vec();
    for i in 0..n {
        for j in 0..i {
            m[i * n + j] = m[j * n + i];
        }
    }
    let scale: f64 = m.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n <= 1 || scale == 0.0 {
        let mut d: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
        d.sort_by(|x, y| y.total_cmp(x));
        return d;
    }
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| ((i + 1)..n).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum();
        if off.sqrt() <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = m[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let app = m[p * n + p];
                let aqq = m[q * n + q];
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // Rotate rows/columns p and q; the matrix stays symmetric so both are updated together.
                for k in 0..n {
                    let akp = m[k * n + p];
                    let akq = m[k * n + q];
                    m[k * n + p] = c * akp - s * akq;
                    m[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = m[p * n + k];
                    let aqk = m[q * n + k];
                    m[p * n + k] = c * apk - s * aqk;
                    m[q * n + k] = s * apk + c * aqk;
                }
                m[p * n + q] = 0.0;
                m[q * n + p] = 0.0;
            }
        }
    }
    let mut d: Vec<f64> = (0..n).map(|i| m[i * n + i]).collect();
    d.sort_by(|x, y| y.total_cmp(x));
    d
}

/// Round-off can make eigenvalues of a PSD matrix slightly negative; they carry no variance.
fn clamp_psd(eigs: &[f64]) -> impl Iterator<Item = f64> + '_ {
    eigs.iter().map(|&l| if l.is_finite() && l > 0.0 { l } else { 0.0 })
}

/// Effective rank exp(H(p)) with p = σ/Σσ (Roy & Vetterli 2007). For a covariance matrix the singular values are
/// its eigenvalues. Returns 0 for an all-zero spectrum.
pub fn effective_rank(eigs: &[f64]) -> f64 {
    let total: f64 = clamp_psd(eigs).sum();
    if total <= 0.0 {
        return 0.0;
    }
    let h: f64 = clamp_psd(eigs)
        .filter(|&l| l > 0.0)
        .map(|l| {
            let p = l / total;
            -p * p.ln()
        })
        .sum();
    h.exp()
}

/// Participation ratio (Σλ)² / Σλ². Returns 0 for an all-zero spectrum.
pub fn participation_ratio(eigs: &[f64]) -> f64 {
    let s1: f64 = clamp_psd(eigs).sum();
    let s2: f64 = clamp_psd(eigs).map(|l| l * l).sum();
    if s2 <= 0.0 { 0.0 } else { s1 * s1 / s2 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Q diag(λ) Qᵀ with Q from Gram–Schmidt on random vectors, so the spectrum is known exactly.
    fn with_spectrum(eigs: &[f64], seed: u64) -> Vec<f64> {
        let n = eigs.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < n {
            let mut v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            for u in &q {
                let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-6 {
                q.push(v.into_iter().map(|a| a / norm).collect());
            }
        }
        let mut m = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                m[i * n + j] = (0..n).map(|k| q[k][i] * eigs[k] * q[k][j]).sum();
            }
        }
        m
    }

    #[test]
    fn jacobi_recovers_known_spectrum() {
        let eigs = [9.0, 5.5, 3.0, 1.0, 0.25, 1e-6, 0.0];
        let got = jacobi_eigenvalues(&with_spectrum(&eigs, 7), eigs.len());
        for (g, e) in got.iter().zip(eigs) {
            assert!((g - e).abs() < 1e-12, "{got:?} vs {eigs:?}");
        }
    }

    #[test]
    fn jacobi_on_diagonal_and_2x2() {
        assert_eq!(jacobi_eigenvalues(&[2.0, 0.0, 0.0, 5.0], 2), vec![5.0, 2.0]);
        // [[2,1],[1,2]] has eigenvalues 3 and 1.
        let e = jacobi_eigenvalues(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((e[0] - 3.0).abs() < 1e-14 && (e[1] - 1.0).abs() < 1e-14);
        // Trace is preserved on a larger random symmetric matrix.
        let n = 40;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut m = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let v = rng.random_range(-1.0..1.0);
                m[i * n + j] = v;
                m[j * n + i] = v;
            }
        }
        let tr: f64 = (0..n).map(|i| m[i * n + i]).sum();
        let fro: f64 = m.iter().map(|v| v * v).sum();
        let e = jacobi_eigenvalues(&m, n);
        assert!((e.iter().sum::<f64>() - tr).abs() < 1e-10);
        assert!((e.iter().map(|v| v * v).sum::<f64>() - fro).abs() < 1e-9);
    }

    fn random_symmetric(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut m = vec![0.0; n * n];
        for i in 0..n {
            for j in i..n {
                let v = rng.random_range(-1.0..1.0);
                m[i * n + j] = v;
                m[j * n + i] = v;
            }
        }
        m
    }

    #[test]
    fn ql_matches_jacobi() {
        for (n, seed) in [(3, 1), (17, 2), (64, 3)] {
            let m = random_symmetric(n, seed);
            let (ql, jac) = (symmetric_eigenvalues(&m, n), jacobi_eigenvalues(&m, n));
            for (a, b) in ql.iter().zip(&jac) {
                assert!((a - b).abs() < 1e-10, "n={n}: {a} vs {b}");
            }
        }
        // A covariance-like spectrum spanning 12 decades with exact zeros and repeated values.
        let eigs = [1e6, 1e6, 3.0, 1.0, 1e-6, 0.0, 0.0, 0.0];
        let got = symmetric_eigenvalues(&with_spectrum(&eigs, 5), eigs.len());
        for (g, e) in got.iter().zip(eigs) {
            assert!((g - e).abs() < 1e-8, "{got:?}");
        }
        assert_eq!(symmetric_eigenvalues(&[4.0], 1), vec![4.0]);
        assert_eq!(symmetric_eigenvalues(&[0.0; 9], 3), vec![0.0; 3]);
    }

    #[test]
    fn rank_measures_of_known_spectra() {
        // k equal eigenvalues: both measures equal k exactly.
        for k in [1usize, 3, 10] {
            let mut eigs = vec![2.5; k];
            eigs.extend([0.0; 5]);
            assert!((effective_rank(&eigs) - k as f64).abs() < 1e-12);
            assert!((participation_ratio(&eigs) - k as f64).abs() < 1e-12);
        }
        // [3,1]: p = (3/4, 1/4); H = -(.75 ln .75 + .25 ln .25); PR = 16/10.
        let h: f64 = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
        assert!((effective_rank(&[3.0, 1.0]) - h.exp()).abs() < 1e-14);
        assert!((participation_ratio(&[3.0, 1.0]) - 1.6).abs() < 1e-14);
        // Scale invariance and tiny negative round-off ignored.
        assert!((effective_rank(&[300.0, 100.0, -1e-18]) - h.exp()).abs() < 1e-12);
        assert_eq!(effective_rank(&[0.0, 0.0]), 0.0);
        assert_eq!(participation_ratio(&[]), 0.0);
    }
}

//! Small-sample statistics for comparing variants over seeds: mean ± sample std, the two-sided paired t-test
//! (Student's t CDF through the regularised incomplete beta function), and Holm's step-down correction.

/// Mean and sample (n−1) standard deviation; std is 0 for one value.
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, var.sqrt())
}

/// Two-sided paired t-test on differences `d`. `None` with fewer than two pairs or when every difference is
/// identical (no variance: the test is undefined, not "significant").
pub fn paired_t_test(d: &[f64]) -> Option<(f64, f64)> {
    let n = d.len();
    if n < 2 {
        return None;
    }
    let (m, s) = mean_std(d);
    // Rounding leaves ~1e-17 of spread in equal differences; that is no variance, not a huge t.
    if s.is_nan() || s <= 1e-12 * m.abs() || s == 0.0 {
        return None;
    }
    let t = m / (s / (n as f64).sqrt());
    let df = (n - 1) as f64;
    Some((t, t_two_sided_p(t, df)))
}

/// P(|T| ≥ |t|) for Student's t with `df` degrees of freedom = I_{df/(df+t²)}(df/2, 1/2).
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    reg_inc_beta(x, df / 2.0, 0.5).clamp(0.0, 1.0)
}

/// Holm–Bonferroni: adjusted p-values in the input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut adj = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in idx.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        adj[i] = running;
    }
    adj
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos (g = 7, n = 9), accurate to ~1e-15 for x > 0.
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        return (std::f64::consts::PI / (std::f64::consts::PI * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised incomplete beta I_x(a, b) by the continued fraction (Numerical Recipes `betacf`).
fn reg_inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(1.0 - x, b, a) / b
    }
}

fn beta_cf(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_p_values_match_tables() {
        // Two-sided critical values from standard t tables: t_{0.975, df} gives p = 0.05.
        for (t, df) in [(12.706, 1.0), (2.776, 4.0), (2.228, 10.0), (1.960, 1e6)] {
            let p = t_two_sided_p(t, df);
            assert!((p - 0.05).abs() < 2e-4, "t={t} df={df} p={p}");
        }
        // t = 0 is p = 1; df = 2 has the closed form p = 1 − |t|/√(t²+2).
        assert!((t_two_sided_p(0.0, 5.0) - 1.0).abs() < 1e-12);
        let t: f64 = 1.3;
        assert!((t_two_sided_p(t, 2.0) - (1.0 - t / (t * t + 2.0).sqrt())).abs() < 1e-10);
    }

    #[test]
    fn paired_test_is_undefined_without_variance_or_pairs() {
        assert!(paired_t_test(&[0.1]).is_none());
        assert!(paired_t_test(&[0.1, 0.1, 0.1]).is_none());
        let (t, p) = paired_t_test(&[1.0, 2.0, 3.0]).unwrap();
        // mean 2, sd 1, n 3 → t = 2√3.
        assert!((t - 2.0 * 3f64.sqrt()).abs() < 1e-12);
        assert!(p > 0.05 && p < 0.1, "{p}");
    }

    #[test]
    fn mean_std_and_holm() {
        let (m, s) = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m, 5.0);
        assert!((s - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        let adj = holm(&[0.01, 0.04, 0.03]);
        for (a, e) in adj.iter().zip([0.03, 0.06, 0.06]) {
            assert!((a - e).abs() < 1e-12, "{adj:?}");
        }
    }
}

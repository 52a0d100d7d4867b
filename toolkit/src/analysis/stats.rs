//! Statistics for comparing classifiers on the same samples: McNemar's exact test, a paired bootstrap CI of the
//! accuracy difference (of one pair of runs, or pooled over seeds), and agreement.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Linear-interpolation percentile of sorted data (numpy's default `method="linear"`); `q` in [0, 1]; NaN when
/// there is no data. The one quantile rule of the crate is the latency module's.
fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    super::latency::quantile_sorted(sorted, q.clamp(0.0, 1.0)).unwrap_or(f64::NAN)
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct McNemar {
    /// Samples the first model gets right and the second wrong.
    pub only_first: u64,
    /// Samples the second model gets right and the first wrong.
    pub only_second: u64,
    /// Two-sided exact p-value: 2·P(X ≤ min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1.
    pub p_value: f64,
}

/// McNemar's exact test on paired correctness vectors (same length, same samples).
pub fn mcnemar(first: &[bool], second: &[bool]) -> McNemar {
    let (mut b, mut c) = (0u64, 0u64);
    for (&x, &y) in first.iter().zip(second) {
        match (x, y) {
            (true, false) => b += 1,
            (false, true) => c += 1,
            _ => {}
        }
    }
    McNemar {
        only_first: b,
        only_second: c,
        p_value: mcnemar_exact_p(b, c),
    }
}

/// The exact two-sided p-value from the discordant counts. Terms are summed in log space so that n in the
/// millions neither underflows 0.5ⁿ nor overflows the binomial coefficients.
pub fn mcnemar_exact_p(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // ln of C(n, i)·2⁻ⁿ, built by the recurrence C(n, i+1) = C(n, i)·(n − i)/(i + 1).
    let mut ln_term = -(n as f64) * std::f64::consts::LN_2;
    let mut terms = Vec::with_capacity(k as usize + 1);
    for i in 0..=k {
        terms.push(ln_term);
        ln_term += ((n - i) as f64).ln() - ((i + 1) as f64).ln();
    }
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tail = max.exp() * terms.iter().map(|t| (t - max).exp()).sum::<f64>();
    (2.0 * tail).min(1.0)
}

/// Fraction of samples where two models predict the same class.
pub fn agreement(first: &[u32], second: &[u32]) -> f64 {
    if first.is_empty() {
        return f64::NAN;
    }
    let same = first.iter().zip(second).filter(|(a, b)| a == b).count();
    same as f64 / first.len() as f64
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapCi {
    /// Observed accuracy(second) − accuracy(first).
    pub diff: f64,
    pub low: f64,
    pub high: f64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
    pub resamples: usize,
    pub seed: u64,
}

/// Paired percentile bootstrap of accuracy(second) − accuracy(first): each resample draws sample indices with
/// replacement and scores both models on the same draw, so their correlation is kept.
pub fn bootstrap_diff(first: &[bool], second: &[bool], resamples: usize, level: f64, seed: u64) -> BootstrapCi {
    let n = first.len().min(second.len());
    // Only the per-sample difference matters: −1, 0 or +1.
    let d: Vec<i8> = first
        .iter()
        .zip(second)
        .map(|(&a, &b)| i8::from(b) - i8::from(a))
        .collect();
    let diff = if n == 0 {
        f64::NAN
    } else {
        d.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut reps: Vec<f64> = (0..resamples)
        .map(|_| {
            let s: i64 = (0..n).map(|_| i64::from(d[rng.random_range(0..n)])).sum();
            s as f64 / n as f64
        })
        .collect();
    reps.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    BootstrapCi {
        diff,
        low: percentile_sorted(&reps, alpha),
        high: percentile_sorted(&reps, 1.0 - alpha),
        level,
        resamples,
        seed,
    }
}

/// Paired comparison of two classifiers pooled over repeated runs (seeds) on the same test samples.
#[derive(Debug, Clone, PartialEq)]
pub struct PooledComparison {
    /// McNemar on the discordant counts summed over runs.
    pub mcnemar: McNemar,
    /// Mean over runs of accuracy(second) − accuracy(first), and its bootstrap interval over test samples.
    pub ci: BootstrapCi,
    pub runs: usize,
    pub samples: usize,
}

/// Pool `(first, second)` correctness vectors of several runs on the same samples (every vector the same length,
/// index i the same test sample in all of them). McNemar sums the discordant counts. The bootstrap resamples test
/// samples, each drawn sample bringing its outcome in every run: the test set is the finite sample the claim is
/// about, and a hard sample stays hard across seeds, so resampling (run, sample) pairs independently would
/// understate the interval. `None` without runs or with vectors of different lengths.
pub fn pooled_comparison(
    runs: &[(&[bool], &[bool])],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Option<PooledComparison> {
    let n = runs.first()?.0.len();
    if n == 0 || runs.iter().any(|(a, b)| a.len() != n || b.len() != n) {
        return None;
    }
    let (mut b, mut c) = (0u64, 0u64);
    // Per test sample: Σ over runs of (second − first) ∈ [−runs, runs].
    let mut d = vec![0i32; n];
    for (first, second) in runs {
        let m = mcnemar(first, second);
        b += m.only_first;
        c += m.only_second;
        for (i, (&x, &y)) in first.iter().zip(*second).enumerate() {
            d[i] += i32::from(y) - i32::from(x);
        }
    }
    let scale = (runs.len() * n) as f64;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut reps: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| i64::from(d[rng.random_range(0..n)])).sum::<i64>() as f64 / scale)
        .collect();
    reps.sort_by(f64::total_cmp);
    let alpha = (1.0 - level) / 2.0;
    Some(PooledComparison {
        mcnemar: McNemar {
            only_first: b,
            only_second: c,
            p_value: mcnemar_exact_p(b, c),
        },
        ci: BootstrapCi {
            diff: d.iter().map(|&x| f64::from(x)).sum::<f64>() / scale,
            low: percentile_sorted(&reps, alpha),
            high: percentile_sorted(&reps, 1.0 - alpha),
            level,
            resamples,
            seed,
        },
        runs: runs.len(),
        samples: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(both: usize, only_first: usize, only_second: usize, neither: usize) -> (Vec<bool>, Vec<bool>) {
        let mut a = Vec::new();
        let mut b = Vec::new();
        for (n, x, y) in [
            (both, true, true),
            (only_first, true, false),
            (only_second, false, true),
            (neither, false, false),
        ] {
            a.extend(std::iter::repeat_n(x, n));
            b.extend(std::iter::repeat_n(y, n));
        }
        (a, b)
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        let v = [1.0, 2.0, 3.0, 4.0];
        // np.percentile([1,2,3,4], [0, 50, 90, 100]) = 1, 2.5, 3.7, 4.
        assert_eq!(percentile_sorted(&v, 0.0), 1.0);
        assert_eq!(percentile_sorted(&v, 0.5), 2.5);
        assert!((percentile_sorted(&v, 0.9) - 3.7).abs() < 1e-12);
        assert_eq!(percentile_sorted(&v, 1.0), 4.0);
        assert!(percentile_sorted(&[], 0.5).is_nan());
    }

    #[test]
    fn mcnemar_exact_hand_values() {
        // b=1, c=4: n=5, 2·(C(5,0)+C(5,1))/2⁵ = 2·6/32 = 0.375.
        assert!((mcnemar_exact_p(1, 4) - 0.375).abs() < 1e-12);
        // b=0, c=6: 2/64 = 0.03125.
        assert!((mcnemar_exact_p(0, 6) - 0.03125).abs() < 1e-12);
        // b=10, c=0: 2/1024.
        assert!((mcnemar_exact_p(10, 0) - 0.001953125).abs() < 1e-15);
        // b=c=3: 2·42/64 > 1 → 1. No discordant pairs → 1.
        assert_eq!(mcnemar_exact_p(3, 3), 1.0);
        assert_eq!(mcnemar_exact_p(0, 0), 1.0);
        // b=2, c=8: 2·(1+10+45)/1024 = 0.109375.
        assert!((mcnemar_exact_p(2, 8) - 0.109375).abs() < 1e-12);
        // Large n stays finite: b=4900, c=5100 — p ≈ 0.0466 (normal approx. z = 200/√10000 = 2.0, continuity
        // corrected z = 1.99 → 0.0466).
        let p = mcnemar_exact_p(4900, 5100);
        assert!((p - 0.0466).abs() < 0.002, "{p}");
    }

    #[test]
    fn mcnemar_counts_discordant_pairs() {
        let (a, b) = pairs(50, 2, 8, 40);
        let m = mcnemar(&a, &b);
        assert_eq!((m.only_first, m.only_second), (2, 8));
        assert!((m.p_value - 0.109375).abs() < 1e-12);
    }

    #[test]
    fn agreement_counts_equal_predictions() {
        assert_eq!(agreement(&[1, 2, 3, 4], &[1, 2, 0, 4]), 0.75);
        assert!(agreement(&[], &[]).is_nan());
    }

    #[test]
    fn pooled_comparison_sums_discordance_and_matches_one_run() {
        let (a, b) = pairs(700, 60, 100, 140);
        // One run: the pooled statistics are the single pair's, and the interval the single-pair bootstrap's.
        let one = pooled_comparison(&[(&a, &b)], 4000, 0.95, 7).unwrap();
        let single = bootstrap_diff(&a, &b, 4000, 0.95, 7);
        assert_eq!(one.mcnemar, mcnemar(&a, &b));
        assert!((one.ci.diff - single.diff).abs() < 1e-12);
        assert!((one.ci.low - single.low).abs() < 0.003 && (one.ci.high - single.high).abs() < 0.003);
        // Two identical runs: discordant counts double (McNemar gets stronger), the mean difference is unchanged,
        // and so is the interval, because the same samples carry the same outcomes in both runs.
        let two = pooled_comparison(&[(&a, &b), (&a, &b)], 4000, 0.95, 7).unwrap();
        assert_eq!((two.mcnemar.only_first, two.mcnemar.only_second), (120, 200));
        assert!(two.mcnemar.p_value < one.mcnemar.p_value);
        assert!((two.ci.diff - 0.04).abs() < 1e-12);
        assert!((two.ci.low - one.ci.low).abs() < 0.003, "{:?} vs {:?}", two.ci, one.ci);
        // A second run that disagrees halves the mean difference.
        let (c, d) = pairs(760, 100, 60, 80);
        let mixed = pooled_comparison(&[(&a, &b), (&c, &d)], 2000, 0.95, 7).unwrap();
        assert!(mixed.ci.diff.abs() < 1e-12, "{:?}", mixed.ci);
        assert!(mixed.ci.low < 0.0 && mixed.ci.high > 0.0);
        assert_eq!(mixed.mcnemar.p_value, 1.0);
        assert!(pooled_comparison(&[(&a, &b[..10])], 10, 0.95, 0).is_none());
        assert!(pooled_comparison(&[], 10, 0.95, 0).is_none());
    }

    #[test]
    fn bootstrap_degenerate_cases_are_exact() {
        let (a, b) = pairs(30, 0, 0, 10);
        let ci = bootstrap_diff(&a, &b, 500, 0.95, 1);
        assert_eq!((ci.diff, ci.low, ci.high), (0.0, 0.0, 0.0));
        let (a, b) = pairs(0, 0, 20, 0);
        let ci = bootstrap_diff(&a, &b, 500, 0.95, 1);
        assert_eq!((ci.diff, ci.low, ci.high), (1.0, 1.0, 1.0));
    }

    #[test]
    fn bootstrap_is_seeded_and_close_to_the_normal_interval() {
        // n = 1000, 60 samples only the first gets right, 100 only the second: diff = 0.04; the paired standard
        // error is √((b+c)/n − diff²)/√n = √(0.16 − 0.0016)/√1000 = 0.012590, so the normal 95 % interval is
        // 0.04 ± 0.02468.
        let (a, b) = pairs(700, 60, 100, 140);
        let ci = bootstrap_diff(&a, &b, 4000, 0.95, 7);
        assert_eq!(ci, bootstrap_diff(&a, &b, 4000, 0.95, 7));
        assert_ne!(ci.low, bootstrap_diff(&a, &b, 4000, 0.95, 8).low);
        assert!((ci.diff - 0.04).abs() < 1e-12);
        // Tolerance: Monte-Carlo error of a 2.5 % quantile over 4000 resamples is ≈ 0.001; the discrete
        // bootstrap distribution moves in steps of 0.001.
        assert!((ci.low - (0.04 - 0.02468)).abs() < 0.003, "{ci:?}");
        assert!((ci.high - (0.04 + 0.02468)).abs() < 0.003, "{ci:?}");
    }
}

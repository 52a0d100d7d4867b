//! Latency statistics: numpy-style percentiles, summaries, and paired ratios with a bootstrap confidence interval.

use rand::{Rng, SeedableRng};

/// `q`-quantile (`q` in [0, 1]) of sorted data with linear interpolation between closest ranks, as numpy's
/// default `percentile(..., method="linear")`: position `q·(n−1)`. `None` for empty data or `q` outside [0, 1].
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64))
}

/// Sorted copy without NaNs (a NaN latency is a bug upstream, not a sample).
pub fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    v
}

pub fn median(xs: &[f64]) -> Option<f64> {
    quantile_sorted(&sorted(xs), 0.5)
}

pub fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// Sample standard deviation (divisor n−1, numpy `std(ddof=1)`); 0 for a single sample.
pub fn std_sample(xs: &[f64]) -> Option<f64> {
    let m = mean(xs)?;
    if xs.len() < 2 {
        return Some(0.0);
    }
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (xs.len() - 1) as f64).sqrt())
}

pub use reports::schema::bench::{LatencySummary as Summary, PairedRatio};

/// Summary of latencies (min, percentiles, max, mean, sample std), in the unit they were given in; `None` for no
/// samples.
pub fn summary(xs: &[f64]) -> Option<Summary> {
    let s = sorted(xs);
    let q = |p| quantile_sorted(&s, p);
    Some(Summary {
        n: s.len(),
        min: *s.first()?,
        p50: q(0.5)?,
        p90: q(0.9)?,
        p99: q(0.99)?,
        max: *s.last()?,
        mean: mean(&s)?,
        std: std_sample(&s)?,
    })
}

/// Per-iteration ratios `a[i] / b[i]`: pairing runs taken back to back cancels slow drift (thermal, other load)
/// that would bias a ratio of two separate medians. The CI resamples the ratios with replacement (`resamples`
/// times, seeded) and takes the `(1−level)/2` and `(1+level)/2` quantiles of the resampled medians.
pub fn paired_ratio(a: &[f64], b: &[f64], level: f64, resamples: usize, seed: u64) -> Option<PairedRatio> {
    if a.len() != b.len() || !(0.0..1.0).contains(&level) || resamples == 0 {
        return None;
    }
    let ratios: Vec<f64> = a.iter().zip(b).filter(|(_, y)| **y > 0.0).map(|(x, y)| x / y).collect();
    let med = median(&ratios)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut buf = vec![0.0; ratios.len()];
    let mut meds = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in buf.iter_mut() {
            *slot = ratios[rng.random_range(0..ratios.len())];
        }
        meds.push(median(&buf)?);
    }
    meds.sort_by(f64::total_cmp);
    Some(PairedRatio {
        n: ratios.len(),
        median: med,
        ci_low: quantile_sorted(&meds, (1.0 - level) / 2.0)?,
        ci_high: quantile_sorted(&meds, (1.0 + level) / 2.0)?,
        level,
        resamples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 90, 99, 100]) = [1, 1.75, 2.5, 3.7, 3.97, 4]
        let s = [1.0, 2.0, 3.0, 4.0];
        let want = [
            (0.0, 1.0),
            (0.25, 1.75),
            (0.5, 2.5),
            (0.9, 3.7),
            (0.99, 3.97),
            (1.0, 4.0),
        ];
        for (q, w) in want {
            let got = quantile_sorted(&s, q).unwrap();
            assert!(close(got, w), "q={q}: {got} vs {w}");
        }
        // Position 0.9·(5−1) = 3.6 → 7 + 0.6·(10−7) = 8.8 on [1, 2, 4, 7, 10].
        assert!(close(quantile_sorted(&[1.0, 2.0, 4.0, 7.0, 10.0], 0.9).unwrap(), 8.8));
        assert_eq!(quantile_sorted(&[5.0], 0.99), Some(5.0));
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&[1.0], 1.5), None);
    }

    #[test]
    fn summary_of_unsorted_samples() {
        // mean 5, squared deviations 16+9+1+0+25+1 = 52 → sample var 52/5 = 10.4.
        let s = summary(&[9.0, 1.0, 4.0, 5.0, 10.0, 6.0]).unwrap();
        assert_eq!((s.n, s.min, s.max), (6, 1.0, 10.0));
        assert!(close(s.mean, 35.0 / 6.0));
        let m = 35.0 / 6.0;
        let ss: f64 = [9.0, 1.0, 4.0, 5.0, 10.0, 6.0]
            .iter()
            .map(|x: &f64| (x - m).powi(2))
            .sum();
        assert!(close(s.std, (ss / 5.0).sqrt()));
        // Sorted [1, 4, 5, 6, 9, 10]: p50 at 2.5 → 5.5; p90 at 4.5 → 9.5; p99 at 4.95 → 9.95.
        assert!(close(s.p50, 5.5));
        assert!(close(s.p90, 9.5));
        assert!(close(s.p99, 9.95));
        assert!(summary(&[]).is_none());
        assert!(close(
            std_sample(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap(),
            (32.0f64 / 7.0).sqrt()
        ));
    }

    #[test]
    fn throughput_is_batch_over_mean() {
        let s = summary(&[2.0, 2.0]).unwrap();
        assert!(close(s.throughput_per_s(8), 4000.0));
    }

    #[test]
    fn paired_ratio_cancels_common_drift() {
        // A is always 2× B while both drift 10× over the run: the paired median is exactly 2 and so is every
        // bootstrap median.
        let b: Vec<f64> = (0..200).map(|i| 1.0 + i as f64 * 0.05).collect();
        let a: Vec<f64> = b.iter().map(|x| 2.0 * x).collect();
        let r = paired_ratio(&a, &b, 0.95, 500, 1).unwrap();
        assert_eq!((r.n, r.median, r.ci_low, r.ci_high), (200, 2.0, 2.0, 2.0));
    }

    #[test]
    fn paired_ratio_ci_brackets_the_median_and_is_seeded() {
        let b = vec![1.0; 101];
        let a: Vec<f64> = (0..101).map(|i| 0.5 + i as f64 / 100.0).collect(); // ratios 0.5..1.5, median 1.0
        let r = paired_ratio(&a, &b, 0.95, 1000, 7).unwrap();
        assert!(close(r.median, 1.0));
        assert!(
            r.ci_low < 1.0 && r.ci_high > 1.0 && r.ci_low > 0.8 && r.ci_high < 1.2,
            "{r:?}"
        );
        assert_eq!(Some(r), paired_ratio(&a, &b, 0.95, 1000, 7));
        assert!(paired_ratio(&a, &b[..3], 0.95, 10, 0).is_none());
    }
}

//! Streaming classification metrics: top-1/top-5, mean cross-entropy, per-class accuracy, confusion matrix, and
//! the per-sample predictions that the paired statistics need.

use serde::{Deserialize, Serialize};

/// Accumulates one model's results batch by batch.
#[derive(Debug, Clone)]
pub struct AccuracyAccumulator {
    classes: usize,
    top_k: usize,
    /// Row = true class, column = predicted class.
    confusion: Vec<u64>,
    top_k_hits: u64,
    loss_sum: f64,
    /// Predicted class of every sample seen, in order.
    pub predictions: Vec<u32>,
    /// Whether each sample's top-1 was right, in order.
    pub correct: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassAccuracy {
    pub class: usize,
    pub name: String,
    pub count: u64,
    pub correct: u64,
    /// `null` for a class with no samples.
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccuracySummary {
    pub samples: u64,
    pub top1: f64,
    /// Top-k with k = min(5, classes).
    pub top5: f64,
    pub top_k: usize,
    /// Mean cross-entropy, natural log, from log-softmax of the outputs (or −ln p when every output row is already a
    /// probability vector, as for a model that ends in Softmax).
    pub mean_loss: f64,
    pub per_class: Vec<ClassAccuracy>,
    pub confusion: Vec<Vec<u64>>,
}

/// Whether a row looks like probabilities rather than logits.
fn is_probability_row(row: &[f32]) -> bool {
    let sum: f32 = row.iter().sum();
    row.iter().all(|&p| (0.0..=1.0).contains(&p)) && (sum - 1.0).abs() < 1e-3
}

impl AccuracyAccumulator {
    pub fn new(classes: usize) -> Self {
        AccuracyAccumulator {
            classes,
            top_k: classes.min(5),
            confusion: vec![0; classes * classes],
            top_k_hits: 0,
            loss_sum: 0.0,
            predictions: Vec::new(),
            correct: Vec::new(),
        }
    }

    /// Add a batch of output rows (`labels.len() × classes`, row-major). Labels must be in `0..classes`; the caller
    /// checks that before running the model so the error names the data, not this accumulator.
    pub fn add_batch(&mut self, scores: &[f32], labels: &[i64]) {
        let c = self.classes;
        debug_assert_eq!(scores.len(), labels.len() * c);
        for (row, &label) in scores.chunks_exact(c).zip(labels) {
            let label = label as usize;
            // First index of the maximum, as numpy's argmax.
            let pred = row
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
                )
                .0;
            // Rank of the label in a stable descending sort: ties go to the lower index.
            let x = row[label];
            let rank = row
                .iter()
                .enumerate()
                .filter(|&(j, &v)| v > x || (v == x && j < label))
                .count();
            self.top_k_hits += u64::from(rank < self.top_k);
            self.loss_sum += if is_probability_row(row) {
                -f64::from(x.max(f32::MIN_POSITIVE)).ln()
            } else {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let lse = max + row.iter().map(|&v| (f64::from(v) - max).exp()).sum::<f64>().ln();
                lse - f64::from(x)
            };
            self.confusion[label * c + pred] += 1;
            self.predictions.push(pred as u32);
            self.correct.push(pred == label);
        }
    }

    pub fn samples(&self) -> usize {
        self.correct.len()
    }

    pub fn summary(&self, names: &[String]) -> AccuracySummary {
        let n = self.samples() as u64;
        let c = self.classes;
        let ratio = |a: u64, b: u64| if b == 0 { f64::NAN } else { a as f64 / b as f64 };
        let hits: u64 = (0..c).map(|i| self.confusion[i * c + i]).sum();
        let per_class = (0..c)
            .map(|i| {
                let row = &self.confusion[i * c..(i + 1) * c];
                let count: u64 = row.iter().sum();
                ClassAccuracy {
                    class: i,
                    name: names.get(i).cloned().unwrap_or_else(|| i.to_string()),
                    count,
                    correct: row[i],
                    accuracy: (count > 0).then(|| row[i] as f64 / count as f64),
                }
            })
            .collect();
        AccuracySummary {
            samples: n,
            top1: ratio(hits, n),
            top5: ratio(self.top_k_hits, n),
            top_k: self.top_k,
            mean_loss: if n == 0 { f64::NAN } else { self.loss_sum / n as f64 },
            per_class,
            confusion: self.confusion.chunks(c.max(1)).map(<[u64]>::to_vec).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_batch() {
        let mut acc = AccuracyAccumulator::new(3);
        // Row 0: label 0, argmax 0. Row 1: label 2, argmax 1 (label ranks 2nd). Row 2: label 1, tie 1 vs 2 → 1.
        acc.add_batch(&[2.0, 1.0, 0.0, 0.0, 3.0, 1.0, 0.0, 5.0, 5.0], &[0, 2, 1]);
        let s = acc.summary(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(acc.predictions, vec![0, 1, 1]);
        assert_eq!(acc.correct, vec![true, false, true]);
        assert_eq!(s.top1, 2.0 / 3.0);
        // k = 3 classes → every label is in the top 3.
        assert_eq!((s.top_k, s.top5), (3, 1.0));
        assert_eq!(s.confusion, vec![vec![1, 0, 0], vec![0, 1, 0], vec![0, 1, 0]]);
        assert_eq!(s.per_class[2].accuracy, Some(0.0));
        assert_eq!(s.per_class[1].name, "b");
        // Cross-entropy by hand: ln(e²+e¹+e⁰) − 2 = 0.407606; ln(e⁰+e³+e¹) − 1 = 2.169846; ln(1+2e⁵) − 5 = 0.696510.
        let want = (0.407_606 + 2.169_846 + 0.696_510) / 3.0;
        assert!((s.mean_loss - want).abs() < 1e-5, "{}", s.mean_loss);
    }

    #[test]
    fn probabilities_use_minus_log_p_and_top_k_counts_ranks() {
        let mut acc = AccuracyAccumulator::new(6);
        // Label 5 has the 6th largest probability: outside the top 5.
        acc.add_batch(&[0.3, 0.25, 0.2, 0.15, 0.06, 0.04], &[5]);
        acc.add_batch(&[0.04, 0.3, 0.25, 0.2, 0.15, 0.06], &[5]);
        let s = acc.summary(&[]);
        assert_eq!((s.top1, s.top5), (0.0, 0.5));
        let want = (-(0.04f64).ln() - (0.06f64).ln()) / 2.0;
        assert!((s.mean_loss - want).abs() < 1e-5);
        assert_eq!(s.per_class[0].accuracy, None);
    }
}

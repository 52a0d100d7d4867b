//! Before/after numbers on the held-out samples: top-1 against the labels, and against the reference model the
//! share of samples with the same top-1 class and the mean relative logit error ‖z − z_ref‖/‖z_ref‖.

use anyhow::{Result, bail};
use converters::Model;
use reports::schema::calibrate::Stage;

use super::samples::CalibData;
use crate::runtime::{Feed, Runner, RuntimeConfig};

/// Logits of every held-out sample (row-major, `classes` per sample) and the labels.
pub struct Logits {
    pub z: Vec<f32>,
    pub labels: Vec<i64>,
    pub classes: usize,
}

pub fn logits(model: &Model, data: &CalibData, input: &str, output: &str, cfg: &RuntimeConfig) -> Result<Logits> {
    let mut runner = Runner::from_model(model, cfg)?;
    let mut out = Logits {
        z: Vec::new(),
        labels: Vec::new(),
        classes: 0,
    };
    data.for_each_eval(|x, labels| {
        let o = runner.run_select(&[(input, Feed::F32(x.view()))], &[output])?;
        let z = o.get(output)?;
        let n = labels.len();
        if z.len() % n.max(1) != 0 || z.shape().first() != Some(&n) {
            bail!(
                "{}: output '{output}' has shape {:?} for a batch of {n}",
                model.display_name(),
                z.shape()
            );
        }
        out.classes = z.len() / n.max(1);
        out.z.extend(z.iter().copied());
        out.labels.extend_from_slice(labels);
        Ok(())
    })?;
    Ok(out)
}

fn argmax(row: &[f32]) -> usize {
    (0..row.len()).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0)
}

/// The stage numbers of `l`, compared with `reference` when given (same samples, same classes).
pub fn stage(l: &Logits, reference: Option<&Logits>) -> Stage {
    let k = l.classes.max(1);
    let n = l.labels.len();
    let rows = l.z.chunks_exact(k);
    let correct = rows
        .clone()
        .zip(&l.labels)
        .filter(|(z, y)| argmax(z) as i64 == **y)
        .count();
    let max_abs = l.z.iter().fold(0.0f64, |m, &v| m.max((v as f64).abs()));
    let (agreement, rel) = match reference.filter(|r| r.z.len() == l.z.len()) {
        Some(r) => {
            let mut agree = 0usize;
            let mut rel = 0.0f64;
            for (z, zr) in rows.zip(r.z.chunks_exact(k)) {
                agree += usize::from(argmax(z) == argmax(zr));
                let diff: f64 = z.iter().zip(zr).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
                let norm: f64 = zr.iter().map(|&b| (b as f64).powi(2)).sum();
                rel += (diff / norm.max(f64::MIN_POSITIVE)).sqrt();
            }
            (Some(agree as f64 / n.max(1) as f64), Some(rel / n.max(1) as f64))
        }
        None => (None, None),
    };
    Stage {
        samples: n as u64,
        top1: (n > 0).then(|| correct as f64 / n as f64),
        agreement,
        mean_rel_logit_error: rel,
        max_abs_logit: max_abs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_counts_accuracy_agreement_and_logit_error() {
        let r = Logits {
            z: vec![1.0, 0.0, 0.0, 2.0, 3.0, 0.0],
            labels: vec![0, 1, 1],
            classes: 2,
        };
        let m = Logits {
            z: vec![2.0, 0.0, 0.0, 2.0, 0.0, 3.0],
            ..Logits {
                z: vec![],
                labels: r.labels.clone(),
                classes: 2,
            }
        };
        let s = stage(&m, Some(&r));
        assert_eq!(s.top1, Some(1.0));
        assert_eq!(s.agreement, Some(2.0 / 3.0));
        // Per-sample relative errors 1, 0 and √18/3.
        let want = (1.0 + 0.0 + 18f64.sqrt() / 3.0) / 3.0;
        assert!((s.mean_rel_logit_error.unwrap() - want).abs() < 1e-12);
        assert_eq!(s.max_abs_logit, 3.0);
        let alone = stage(&r, None);
        assert_eq!(alone.top1, Some(2.0 / 3.0));
        assert_eq!(alone.agreement, None);
    }
}

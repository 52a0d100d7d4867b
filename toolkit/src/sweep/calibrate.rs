//! What the sweep reads from a `ratio calibrate` record: the accuracy of the model before and after calibration,
//! read as the typed `reports::schema::calibrate::CalibrateBody`, so a record that does not fit is reported as
//! unreadable, never guessed at.

use reports::schema::calibrate::{CalibrateBody, Stage};
use reports::schema::{Record, SchemaError};

/// Accuracy before and after calibration, and on which samples.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrateAccuracy {
    pub before_top1: f64,
    pub after_top1: f64,
    pub samples_on: String,
}

impl CalibrateAccuracy {
    pub fn read(rec: &Record) -> Result<Self, SchemaError> {
        let v: CalibrateBody = rec.body_as()?;
        let top1 = |s: &Stage, when: &str| {
            s.top1.ok_or_else(|| SchemaError::WrongKind {
                expected: format!("a calibrate record with top-1 {when} calibration"),
                found: "one without labels".into(),
            })
        };
        Ok(CalibrateAccuracy {
            before_top1: top1(&v.before, "before")?,
            after_top1: top1(&v.after, "after")?,
            samples_on: format!("{} held-out samples ({})", v.after.samples, v.held_out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(body: serde_json::Value) -> Record {
        Record {
            schema: "ratio/calibrate/v1".into(),
            kind: "calibrate".into(),
            created: "t".into(),
            command: vec![],
            provenance: Default::default(),
            inputs: vec![],
            outputs: vec![],
            body,
        }
    }

    /// A whole `CalibrateBody` with the given stages, as the command writes it.
    fn body(before: serde_json::Value, after: serde_json::Value) -> serde_json::Value {
        let data = serde_json::json!({"path": "d", "format": "idx", "split": "train", "sha256": "s",
            "preset": "mnist", "preset_fingerprint": "f"});
        serde_json::json!({"source": "m.onnx", "source_sha256": "a", "output": "o.onnx", "output_sha256": "b",
            "reference": "src.onnx", "reference_sha256": "c", "method": "auto", "samples": 2000, "batch": 250,
            "data": data, "eval_data": data, "held_out": "test split", "ridge": 0.01, "positions": 16, "seed": 0,
            "removed": ["relu1"], "reference_stage": null, "before": before, "after": after, "layers": [],
            "seconds": 1.0})
    }

    #[test]
    fn reads_before_and_after_and_refuses_what_does_not_fit() {
        let stage = |top1: Option<f64>| {
            serde_json::json!({"samples": 10000, "top1": top1, "agreement": 0.9,
            "mean_rel_logit_error": 0.1, "max_abs_logit": 7.0})
        };
        let a = CalibrateAccuracy::read(&record(body(stage(Some(0.81)), stage(Some(0.97))))).unwrap();
        assert_eq!((a.before_top1, a.after_top1), (0.81, 0.97));
        assert_eq!(a.samples_on, "10000 held-out samples (test split)");
        let unlabelled = body(stage(None), stage(Some(0.9)));
        assert!(CalibrateAccuracy::read(&record(unlabelled)).is_err());
        assert!(matches!(
            CalibrateAccuracy::read(&record(serde_json::json!({"top1_before": 0.8}))),
            Err(SchemaError::Body { .. })
        ));
        let mut wrong = record(serde_json::json!({}));
        wrong.kind = "eval".into();
        wrong.schema = "ratio/eval/v1".into();
        assert!(matches!(
            CalibrateAccuracy::read(&wrong),
            Err(SchemaError::WrongKind { .. })
        ));
    }
}

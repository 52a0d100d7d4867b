//! Body of `ratio finetune --json` and `ratio train --json` records (kind `train`): what was trained on what,
//! how, and the accuracy before, during and after; plus the lines of the run's `metrics.jsonl` (one JSON object
//! per line: the run's identity, then per-step and per-epoch records).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Body;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainBody {
    /// The model trained (a path, or `resnet20(width=…, init_seed=…)` for `ratio train`).
    pub model: String,
    pub model_sha256: String,
    pub data: TrainData,
    pub val_data: TrainData,
    pub seed: u64,
    pub batch: usize,
    pub optimizer: OptimizerSettings,
    pub schedule: ScheduleSettings,
    /// `train` (batch statistics, running statistics updated) or `frozen`.
    pub bn: String,
    pub augment: AugmentSettings,
    /// Where parameters and optimizer state lived between steps: `device` (session memory, IoBinding) or `host`.
    #[serde(default)]
    pub residency: String,
    /// Training accuracy was measured on every this-many-th step's logits.
    #[serde(default)]
    pub train_acc_every: u64,
    /// What the train-step builder changed so the export trains (static batch rewritten, tied tensors untied).
    #[serde(default)]
    pub adaptations: Vec<String>,
    /// ONNX Runtime's NCHWc block the train step's convolutions ran on; absent: its plain kernels. It changes
    /// float summation order, so a bit-exact rerun needs the same value.
    #[serde(default)]
    pub nchwc_block: Option<i64>,
    pub trainable_params: usize,
    pub threads: Option<usize>,
    pub epochs: Vec<EpochRecord>,
    /// Validation accuracy of the model as given, before any step (absent on `--resume`).
    pub initial_val_acc: Option<f64>,
    pub best_val_acc: f64,
    pub final_val_acc: f64,
    pub model_path: String,
    pub best_model_path: String,
    pub last_checkpoint: String,
    /// The run's JSON-lines log (see [`MetricsLine`]).
    pub metrics_path: String,
    pub seconds: f64,
}

impl Body for TrainBody {
    const KIND: &'static str = "train";
}

/// The data a run saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainData {
    pub path: String,
    pub format: String,
    /// sha256 of the data as `toolkit::data` identifies it (see `DataIdentity::hashed`).
    pub sha256: String,
    /// The set's own split, or the hold-out rule applied to a set without splits.
    pub split: String,
    /// Samples in this part (before `--train-limit`).
    pub count: usize,
    /// Preset name, e.g. `fashion-mnist`.
    pub preprocess: String,
    /// sha256 of the preset's canonical pipeline JSON (the same value `ratio eval` records).
    pub preset_fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerSettings {
    Sgd {
        momentum: f32,
        nesterov: bool,
        weight_decay: f32,
    },
    Adamw {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleSettings {
    /// `constant`, `step`, `cosine`, …
    pub kind: String,
    pub base_lr: f32,
    pub warmup_steps: u64,
    pub total_steps: u64,
    pub steps_per_epoch: u64,
    pub step_every_epochs: u64,
    pub gamma: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AugmentSettings {
    pub crop_pad: usize,
    pub hflip: bool,
    /// torchvision's RandomResizedCrop, when on.
    #[serde(default)]
    pub random_resized_crop: Option<RandomResizedCropSettings>,
    /// Colour jitter strengths (0 = off).
    #[serde(default)]
    pub brightness: f32,
    #[serde(default)]
    pub contrast: f32,
    #[serde(default)]
    pub saturation: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RandomResizedCropSettings {
    pub size: usize,
    pub scale: [f64; 2],
    pub ratio: [f64; 2],
}

/// One epoch's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u64,
    /// Optimizer steps taken so far (global).
    pub steps: u64,
    pub train_loss: f64,
    pub train_acc: f64,
    /// Samples `train_acc` was measured on (the batches whose logits were read back).
    #[serde(default)]
    pub train_acc_samples: usize,
    pub val_acc: f64,
    pub lr: f32,
    pub seconds: f64,
    pub images_per_s: f64,
    /// Time the step loop waited for decoded batches, and its share of the loop's wall time.
    #[serde(default)]
    pub data_wait_s: f64,
    #[serde(default)]
    pub data_wait_fraction: f64,
}

/// Training loss and accuracy over the optimizer steps since the previous step record, logged every few steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Global step count after the last step of the window (1-based).
    pub step: u64,
    /// 1-based epoch the window belongs to.
    #[serde(default)]
    pub epoch: Option<u64>,
    /// Mean batch loss over the window.
    pub loss: f64,
    /// Learning rate of the window's last step.
    pub lr: f64,
    /// Share of the window's training samples classified right (before the update they caused).
    pub train_acc: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricsLine {
    /// The run's identity (model, data, options, provenance), written when a run starts or resumes.
    Run {
        identity: Value,
    },
    Epoch {
        record: EpochRecord,
    },
    Step(StepRecord),
}

#[derive(Debug, thiserror::Error)]
#[error("metrics line {line}: {source}")]
pub struct MetricsError {
    pub line: usize,
    pub source: serde_json::Error,
}

/// Every line of a `metrics.jsonl` text, typed; the first line that is not a known record is an error naming it.
pub fn parse_metrics(text: &str) -> Result<Vec<MetricsLine>, MetricsError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|source| MetricsError { line: i + 1, source }))
        .collect()
}

/// The step records of a metrics log, in order, from its last run: a resumed run appends its own `run` line, and
/// the steps before it that a resume redid would otherwise appear twice.
pub fn step_records(lines: &[MetricsLine]) -> Vec<StepRecord> {
    let mut out: Vec<StepRecord> = Vec::new();
    for l in lines {
        if let MetricsLine::Step(s) = l {
            // A resume restarts at the checkpoint's step: drop what it redoes.
            out.retain(|p| p.step < s.step);
            out.push(s.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_lines_parse_typed_and_unknown_kinds_are_errors() {
        let text = concat!(
            "{\"kind\":\"run\",\"identity\":{\"seed\":0}}\n",
            "{\"kind\":\"step\",\"step\":10,\"epoch\":1,\"loss\":2.1,\"lr\":0.05,\"train_acc\":0.2}\n",
            "{\"kind\":\"step\",\"step\":20,\"loss\":1.5,\"lr\":0.05,\"train_acc\":0.4}\n",
            "{\"kind\":\"epoch\",\"seed\":0,\"record\":{\"epoch\":1,\"steps\":20,\"train_loss\":1.8,\"train_acc\":0.3,",
            "\"val_acc\":0.5,\"lr\":0.05,\"seconds\":1.0,\"images_per_s\":100.0}}\n",
            "\n",
            "{\"kind\":\"run\",\"identity\":{\"seed\":0}}\n",
            "{\"kind\":\"step\",\"step\":20,\"loss\":1.4,\"lr\":0.05,\"train_acc\":0.45}\n",
        );
        let lines = parse_metrics(text).unwrap();
        assert_eq!(lines.len(), 6);
        assert!(matches!(&lines[3], MetricsLine::Epoch { record } if record.val_acc == 0.5));
        // The resumed run's step 20 replaces the first run's.
        let steps = step_records(&lines);
        assert_eq!(
            steps.iter().map(|s| (s.step, s.loss)).collect::<Vec<_>>(),
            [(10, 2.1), (20, 1.4)]
        );
        assert_eq!(steps[0].epoch, Some(1));

        let e = parse_metrics("{\"kind\":\"run\",\"identity\":{}}\n{\"kind\":\"batch\",\"step\":1}\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().contains("batch"), "{e}");
        assert!(parse_metrics("{\"kind\":\"step\",\"step\":1,\"loss\":\"x\",\"lr\":0.1,\"train_acc\":0}").is_err());
    }
}

//! `ratio eval` record: accuracy of one or more models on the same samples, with paired comparisons against the
//! first model and the provenance of every number.

use serde::{Deserialize, Serialize};

pub const EVAL_SCHEMA: &str = "ratio.eval/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// Always [`EVAL_SCHEMA`].
    pub schema: String,
    pub provenance: Provenance,
    pub data: DataInfo,
    pub preset: PresetInfo,
    pub run: RunInfo,
    pub models: Vec<ModelResult>,
    /// Each model after the first against the first, on the same samples.
    pub comparisons: Vec<Comparison>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub tool_version: String,
    pub ort_version: String,
    pub device: String,
    pub execution_provider: String,
    pub machine: Machine,
    pub timestamp: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    pub cpu_model: String,
    pub cores: usize,
    pub os: String,
    pub memory_gb: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    pub path: String,
    pub format: String,
    pub split: Option<String>,
    /// Samples in the set.
    pub count: usize,
    /// sha256 of the files (`hashed = "files"`) or of a path+size manifest (`"manifest"`).
    pub sha256: String,
    pub hashed: String,
    pub limit: Option<usize>,
    /// Samples scored (after `--limit` and skipped images).
    pub evaluated: usize,
    /// Corrupt images left out under `--on-corrupt skip`.
    pub skipped_corrupt: usize,
    /// The first skipped images' messages (file and decoder error).
    pub skipped_examples: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetInfo {
    pub name: String,
    /// sha256 of the canonical JSON of `pipeline`.
    pub fingerprint: String,
    pub pipeline: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub batch: usize,
    pub intra_threads: Option<usize>,
    pub seconds: f64,
    /// Samples per second over the whole pass (decoding overlapped with inference, all models).
    pub samples_per_second: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    pub path: String,
    pub sha256: Option<String>,
    pub input: String,
    pub output: String,
    pub samples: u64,
    pub top1: f64,
    pub top5: f64,
    /// k of "top5": min(5, classes).
    pub top_k: usize,
    pub mean_loss: f64,
    /// Seconds spent inside this model's runs.
    pub run_seconds: f64,
    pub per_class: Vec<ClassResult>,
    /// Row = true class, column = predicted class.
    pub confusion: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    pub class: usize,
    pub name: String,
    pub count: u64,
    pub correct: u64,
    pub accuracy: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline: String,
    pub model: String,
    /// Share of samples where both predict the same class.
    pub agreement: f64,
    /// McNemar discordant counts: baseline right and model wrong, and the reverse.
    pub baseline_only_correct: u64,
    pub model_only_correct: u64,
    /// Two-sided exact McNemar p-value.
    pub mcnemar_p: f64,
    /// top1(model) − top1(baseline), with its paired percentile bootstrap interval.
    pub top1_diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub ci_level: f64,
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
}

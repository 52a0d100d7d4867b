//! Records of `ratio sweep`: the manifest that fixes what a run directory holds, one record per executed step,
//! and the summary over seeds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Body, Record};

/// One point of the sweep grid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Variant {
    /// File-name-safe id, e.g. `r2-1_last_s0`.
    pub id: String,
    /// `N:M`.
    pub ratio: String,
    pub policy: String,
    pub seed: u64,
}

/// Written once when a run directory is created; a rerun must present the same `sweep_hash`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepManifest {
    /// sha256 over the canonical JSON of `settings` (what decides the results, not how they are scheduled).
    pub sweep_hash: String,
    pub model: String,
    pub data: String,
    /// `finetune` or `from-scratch`.
    pub mode: String,
    pub ratios: Vec<String>,
    pub policies: Vec<String>,
    pub seeds: u64,
    /// Every setting that enters a step's command line.
    pub settings: Value,
    /// Steps run for each variant, in order.
    pub steps: Vec<String>,
    pub variants: Vec<Variant>,
}

impl Body for SweepManifest {
    const KIND: &'static str = "sweep-manifest";
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Ok,
    Failed,
}

/// One child process of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepStep {
    /// Stable key within the run directory, e.g. `r2-1_last_s0/eval`.
    pub key: String,
    pub step: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<Variant>,
    pub status: StepStatus,
    /// Exit code, when the child exited normally.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Signal number, when the child was killed.
    #[serde(default)]
    pub signal: Option<i32>,
    pub duration_s: f64,
    /// Last lines of the child's stderr, for failed steps.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr_tail: String,
    /// The step's own record (what it printed with `--json`), `None` when it printed none.
    pub output: Option<Record>,
    /// What the step printed when that was not a record (last lines).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout_tail: String,
}

impl Body for SweepStep {
    const KIND: &'static str = "sweep-step";
    // v2: `output` is the child's typed record, no longer any JSON it printed.
    const VERSION: u32 = 2;
}

/// Mean ± sample standard deviation over seeds of one metric of one (ratio, policy) cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
    pub values: Vec<f64>,
}

/// One row of the summary table: a (ratio, policy) cell aggregated over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellSummary {
    pub ratio: String,
    pub policy: String,
    /// Metric name → stats (`accuracy`, `latency_p50_ms`, `params`, `macs`, richness metrics...).
    pub metrics: std::collections::BTreeMap<String, MetricStats>,
    /// Seeds whose pipeline did not finish.
    #[serde(default)]
    pub missing_seeds: Vec<u64>,
}

/// Seed-level paired comparison of a cell against the 1:1 baseline on one metric, pairing runs by seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub ratio: String,
    pub policy: String,
    pub metric: String,
    /// Mean of (variant − baseline) over paired seeds.
    pub mean_diff: f64,
    pub n_pairs: usize,
    /// Name of the test, e.g. `paired t-test (two-sided)`.
    pub test: String,
    /// `None` when there are too few pairs or no variance to test.
    pub p_value: Option<f64>,
    pub significant: bool,
}

/// The best cell for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub metric: String,
    /// `higher` or `lower` is better.
    pub direction: String,
    pub ratio: String,
    pub policy: String,
    pub mean: f64,
}

/// Per-sample test of a cell's accuracy against 1:1: every variant is scored on the same test samples, so the
/// samples pair across models, and the seeds are pooled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleTest {
    pub ratio: String,
    pub policy: String,
    /// Seeds whose variant and 1:1 evaluations both hold per-sample predictions on the same samples.
    pub seeds: Vec<u64>,
    /// Test samples per seed.
    pub samples: usize,
    /// McNemar discordant counts summed over seeds: 1:1 right and the variant wrong, and the reverse.
    pub baseline_only_correct: u64,
    pub model_only_correct: u64,
    /// Exact two-sided McNemar p on the pooled discordant counts.
    pub mcnemar_p: f64,
    /// `mcnemar_p` after Holm's correction over the cells.
    pub p_adjusted: f64,
    /// Accuracy(variant) − accuracy(1:1), averaged over the seeds.
    pub diff: f64,
    /// Paired bootstrap interval of `diff`: test samples are resampled, each one carrying its outcome in every
    /// seed, so the interval reflects the test set's finiteness and keeps the seeds' correlation.
    pub ci_low: f64,
    pub ci_high: f64,
    pub ci_level: f64,
    pub resamples: usize,
    pub bootstrap_seed: u64,
    pub significant: bool,
}

/// Latency of a cell relative to the 1:1 architecture, from `ratio bench` runs that interleaved the two models
/// (A, B, A, B) so that drift cancels: the median of per-iteration ratios pooled over seeds, with a bootstrap CI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyRatio {
    pub ratio: String,
    pub policy: String,
    /// The run group the ratio comes from.
    pub batch: usize,
    pub threads: usize,
    pub seeds: Vec<u64>,
    /// Paired iterations pooled.
    pub pairs: usize,
    /// Median of latency(variant) / latency(1:1 reference) per iteration.
    pub median: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub ci_level: f64,
    pub resamples: usize,
}

/// Where in the pipeline an accuracy was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// The 1:1 model every variant is converted from.
    Source,
    /// Right after graph surgery, before any calibration or training.
    Converted,
    /// After `ratio calibrate`, before training.
    Calibrated,
    /// After fine-tuning (or training from scratch).
    FineTuned,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Source, Stage::Converted, Stage::Calibrated, Stage::FineTuned];

    pub fn label(self) -> &'static str {
        match self {
            Stage::Source => "source",
            Stage::Converted => "converted",
            Stage::Calibrated => "calibrated",
            Stage::FineTuned => "fine-tuned",
        }
    }
}

/// Accuracy of one cell at one stage, over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageAccuracy {
    pub ratio: String,
    pub policy: String,
    pub stage: Stage,
    pub accuracy: MetricStats,
    /// Which record the numbers come from and on which samples (e.g. `ratio finetune before its first step, on
    /// the test split`).
    pub source: String,
}

/// The layers every analysed variant has, over which the summary's per-layer means are taken.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommonLayers {
    /// Node names, in network order.
    pub names: Vec<String>,
    /// `join` or `activation`, per name.
    pub kinds: Vec<String>,
    /// (ratio, policy, layers that cell's models have): what the common set leaves out.
    pub per_cell: Vec<(String, String, usize)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    pub sweep_hash: String,
    pub model: String,
    pub data: String,
    pub alpha: f64,
    pub cells: Vec<CellSummary>,
    /// Seed-level paired tests, every metric.
    pub comparisons: Vec<Comparison>,
    /// Per-sample accuracy tests pooled over seeds.
    #[serde(default)]
    pub sample_tests: Vec<SampleTest>,
    /// Interleaved, paired latency ratios against 1:1.
    #[serde(default)]
    pub latency_ratios: Vec<LatencyRatio>,
    /// Accuracy at each pipeline stage that has records.
    #[serde(default)]
    pub stages: Vec<StageAccuracy>,
    /// The layer set of the richness means (`None` without richness records).
    #[serde(default)]
    pub common_layers: Option<CommonLayers>,
    pub best: Vec<Best>,
    /// Plain sentences of what the data support.
    pub conclusions: Vec<String>,
    pub steps_ok: usize,
    pub steps_failed: usize,
    pub steps_missing: usize,
}

impl Body for SweepSummary {
    const KIND: &'static str = "sweep-summary";
    // v2: per-sample tests, paired latency ratios, stage accuracies and the common richness layers.
    const VERSION: u32 = 2;
}

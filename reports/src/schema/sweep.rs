//! Records of `ratio sweep`: the manifest that fixes what a run directory holds, one record per executed step,
//! and the summary over seeds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Body;

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
    /// The step's own JSON output (its record or plain JSON), `null` when it printed none.
    pub output: Value,
}

impl Body for SweepStep {
    const KIND: &'static str = "sweep-step";
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

/// Paired comparison of a cell against the 1:1 baseline on one metric, pairing runs by seed.
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    pub sweep_hash: String,
    pub model: String,
    pub data: String,
    pub alpha: f64,
    pub cells: Vec<CellSummary>,
    pub comparisons: Vec<Comparison>,
    pub best: Vec<Best>,
    /// Plain sentences of what the data support.
    pub conclusions: Vec<String>,
    pub steps_ok: usize,
    pub steps_failed: usize,
    pub steps_missing: usize,
}

impl Body for SweepSummary {
    const KIND: &'static str = "sweep-summary";
}

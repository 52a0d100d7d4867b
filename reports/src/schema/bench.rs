//! Body of `ratio bench --json` records (kind `bench`): latency of one or more models per batch × thread setting,
//! measured in one interleaved loop, with per-iteration paired ratios against the first model and an optional
//! ONNX Runtime profile. Every sample is kept, so readers can re-pair or pool runs.

use serde::{Deserialize, Serialize};

use super::Body;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchBody {
    pub settings: BenchSettings,
    pub models: Vec<BenchModel>,
    /// One group per (threads, batch) setting, threads outer, batch inner, as given on the command line.
    pub runs: Vec<RunGroup>,
}

impl Body for BenchBody {
    const KIND: &'static str = "bench";
}

impl BenchBody {
    /// The group measured at `batch` × `threads`; readers name the group they report instead of taking the first.
    pub fn group(&self, batch: usize, threads: usize) -> Option<&RunGroup> {
        self.runs.iter().find(|g| g.batch == batch && g.threads == threads)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchSettings {
    pub warmup: usize,
    pub iters: Option<usize>,
    pub duration_s: Option<f64>,
    pub batches: Vec<usize>,
    pub threads: Vec<usize>,
    /// ONNX Runtime graph optimisation level (`all`, `basic`, …).
    pub opt_level: String,
    pub seed: u64,
    /// How the inputs were made (stands in for the preprocessing fingerprint of real data).
    pub inputs: String,
    /// How the models share iterations.
    pub schedule: String,
    /// What a latency sample covers.
    pub timing: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchModel {
    pub path: String,
    pub sha256: Option<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// One batch × thread setting: every model measured in the same interleaved loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunGroup {
    pub batch: usize,
    /// Requested intra-op threads (0 = ONNX Runtime's default).
    pub threads: usize,
    pub iterations: usize,
    pub results: Vec<ModelLatency>,
    /// Each model after the first against the first, paired per iteration.
    pub comparisons: Vec<LatencyComparison>,
    /// Wall time of the timed loop.
    pub loop_s: f64,
    /// Time inside ONNX Runtime's run calls.
    pub run_s: f64,
    /// (loop − run) / loop: the tool's own share of the measured time.
    pub overhead_fraction: f64,
    pub overhead_us_per_run: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<ModelProfile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelLatency {
    pub model: String,
    pub sha256: Option<String>,
    pub latency_ms: LatencySummary,
    pub throughput_per_s: f64,
    /// Every sample, ms, in iteration order (for re-analysis: sample i of every model is one iteration).
    pub samples_ms: Vec<f64>,
}

/// Summary of latencies in the unit they were given in (`ratio bench` uses milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub n: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    /// Sample standard deviation (n−1).
    pub std: f64,
}

impl LatencySummary {
    /// Items per second when each sample (in milliseconds) processed `batch` items: batch / mean latency.
    pub fn throughput_per_s(&self, batch: usize) -> f64 {
        if self.mean > 0.0 {
            batch as f64 * 1000.0 / self.mean
        } else {
            f64::INFINITY
        }
    }
}

/// Median of paired ratios `a[i] / b[i]` and its percentile-bootstrap confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PairedRatio {
    pub n: usize,
    pub median: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// Confidence level of [ci_low, ci_high], e.g. 0.95.
    pub level: f64,
    pub resamples: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyComparison {
    pub model: String,
    pub baseline: String,
    /// Median of per-iteration latency(model) / latency(baseline), with a bootstrap CI.
    pub ratio: PairedRatio,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelProfile {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    pub summary: ProfileSummary,
}

/// ONNX Runtime's profiler trace summarised by op type, execution provider and node (what
/// `toolkit::runtime::summarize_profile` returns).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSummary {
    /// `model_run` events in the trace.
    pub runs: usize,
    /// Sum of `model_run` durations, µs.
    pub run_total_us: f64,
    /// Sum of kernel durations, µs (the rest of run time is scheduling, copies and allocation).
    pub kernel_total_us: f64,
    pub by_op: Vec<OpTime>,
    /// Share of kernel time per execution provider: on a GPU run, anything on `CPUExecutionProvider` is a node
    /// the GPU provider could not take.
    pub by_provider: Vec<ProviderTime>,
    pub top_nodes: Vec<NodeTime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpTime {
    pub op_type: String,
    /// Kernel calls over all runs.
    pub calls: usize,
    pub total_us: f64,
    /// Share of all kernel time.
    pub fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTime {
    pub provider: String,
    pub nodes: usize,
    pub total_us: f64,
    pub fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeTime {
    pub node: String,
    pub op_type: String,
    pub provider: String,
    pub calls: usize,
    pub total_us: f64,
    pub mean_us: f64,
    pub fraction: f64,
}

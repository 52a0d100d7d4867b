//! Body of `ratio convert --json` records (kind `convert`): which activations an N:M policy removed or replaced,
//! the per-scope counts the policy had to meet, and what the ONNX Runtime check saw.

use serde::{Deserialize, Serialize};

use super::Body;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvertBody {
    pub source: String,
    pub source_sha256: String,
    pub output: String,
    pub output_sha256: String,
    /// `N:M`.
    pub ratio: String,
    /// The whole policy in words (ratio, scope, keep, seed, protection, patterns).
    pub policy: String,
    /// Activation slots the source has.
    pub slots: usize,
    /// Activations removed (or made leaky with `--leaky`), by node name, in graph order.
    pub changed: Vec<String>,
    /// `Some(α)` when changed activations became LeakyRelu(α) instead of being removed.
    #[serde(default)]
    pub leaky: Option<f32>,
    pub scopes: Vec<ScopeCount>,
    /// `None` with `--no-check` or when nothing changed.
    pub runtime_check: Option<ConversionCheck>,
}

impl Body for ConvertBody {
    const KIND: &'static str = "convert";
}

/// Slots, eligible slots, kept and changed activations of one scope (block, stage or the whole graph).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeCount {
    pub scope: String,
    pub slots: usize,
    pub eligible: usize,
    pub kept: usize,
    pub changed: usize,
}

/// The converted model loaded and ran in ONNX Runtime on a seeded batch; where every removed activation's
/// input qualified, its outputs matched the source's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversionCheck {
    pub batch: usize,
    pub seed: u64,
    /// Samples on which removing the activations is the identity (where outputs must match).
    pub qualifying_samples: usize,
    /// Largest |converted − source| over the qualifying samples' outputs.
    pub max_abs_diff_qualifying: Option<f32>,
    /// Largest |converted − source| over all samples: how much the conversion changed the function.
    pub max_abs_diff_all: f32,
}

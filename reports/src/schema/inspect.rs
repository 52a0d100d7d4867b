//! Body of `ratio inspect --json` records (kind `inspect`): op histogram, activation slots with their block,
//! stage and role, conv:activation counts per scope, and parameters and MACs per layer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Body;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectBody {
    pub model: String,
    pub sha256: String,
    pub ir_version: i64,
    pub opset: i64,
    pub producer: String,
    pub nodes: usize,
    pub op_histogram: BTreeMap<String, usize>,
    pub slots: Vec<SlotInfo>,
    pub ratios: ScopeRatios,
    pub params_total: u64,
    /// Multiply-accumulates per sample.
    pub macs_total: u64,
    pub layers: Vec<LayerCost>,
}

impl Body for InspectBody {
    const KIND: &'static str = "inspect";
}

impl InspectBody {
    /// Nodes of `op` (e.g. `Relu`) in the graph.
    pub fn op_count(&self, op: &str) -> usize {
        self.op_histogram.get(op).copied().unwrap_or(0)
    }
}

/// One activation slot: the activation and the convolutions feeding it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub name: String,
    /// `relu`, `relu6`, `leakyrelu` or `prelu`.
    pub kind: String,
    pub input: String,
    pub output: String,
    pub feeders: Vec<String>,
    /// Position among all slots in graph order.
    pub depth: usize,
    pub block: usize,
    pub stage: usize,
    /// `stem`, `body` or `head`.
    pub role: String,
}

/// (convolutions, activations) counted at each scope. Convs are counted by the slots they feed (a conv feeding
/// no activation, such as a projection shortcut or the classifier, is counted at the global scope only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRatios {
    pub global: (usize, usize),
    pub per_block: Vec<(usize, usize)>,
    pub per_stage: Vec<(usize, usize)>,
}

/// Parameters and multiply-accumulates of one layer, per sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerCost {
    pub name: String,
    pub op: String,
    pub params: u64,
    pub macs: u64,
    pub output_shape: Vec<i64>,
}

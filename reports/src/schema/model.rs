//! Body of `ratio model --json` records (kind `model`): what was built, with its configuration and seed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Body;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelBody {
    /// Registry name (`resnet20`) or `pattern:<fixture>`.
    pub model: String,
    pub path: String,
    pub sha256: String,
    pub bytes: usize,
    /// `None` for pattern fixtures, which have fixed shapes and seeds.
    pub config: Option<ModelConfig>,
    pub folded_bn_pairs: usize,
    pub params: usize,
    pub nodes: usize,
    pub op_histogram: BTreeMap<String, usize>,
    pub build_ms: f64,
}

impl Body for ModelBody {
    const KIND: &'static str = "model";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub in_channels: i64,
    pub input_size: i64,
    pub num_classes: i64,
    pub width: f32,
    pub seed: u64,
    pub random_bn_stats: bool,
}

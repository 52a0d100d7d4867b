//! Which nodes are activations the converter may remove, and of what kind. ReLU is always considered;
//! ReLU6 (Clip 0..6), LeakyRelu and PRelu only when the user opts in with `--act`.

use serde::{Deserialize, Serialize};

use crate::ir::attr::NodeExt;
use crate::ir::index::GraphIndex;
use crate::ir::tensor;
use crate::proto::{GraphProto, NodeProto};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ActKind {
    Relu,
    Relu6,
    LeakyRelu,
    PRelu,
}

impl ActKind {
    pub const ALL: [ActKind; 4] = [ActKind::Relu, ActKind::Relu6, ActKind::LeakyRelu, ActKind::PRelu];

    pub fn as_str(self) -> &'static str {
        match self {
            ActKind::Relu => "relu",
            ActKind::Relu6 => "relu6",
            ActKind::LeakyRelu => "leakyrelu",
            ActKind::PRelu => "prelu",
        }
    }

    pub fn parse(s: &str) -> Option<ActKind> {
        ActKind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s))
    }
}

/// The activation kind of `n`, if it is one. Clip counts as ReLU6 only with constant bounds 0 and 6.
pub fn classify(g: &GraphProto, ix: &GraphIndex, n: &NodeProto) -> Option<ActKind> {
    if !n.domain_str().is_empty() {
        return None;
    }
    match n.op() {
        "Relu" => Some(ActKind::Relu),
        "LeakyRelu" => Some(ActKind::LeakyRelu),
        "PRelu" => Some(ActKind::PRelu),
        "Clip" => clip_bounds(g, ix, n)
            .filter(|&(lo, hi)| lo == 0.0 && hi == 6.0)
            .map(|_| ActKind::Relu6),
        _ => None,
    }
}

/// Clip's (min, max): attributes before opset 11, optional constant inputs after.
fn clip_bounds(g: &GraphProto, ix: &GraphIndex, n: &NodeProto) -> Option<(f32, f32)> {
    let scalar = |idx: usize| -> Option<Option<f32>> {
        match n.input.get(idx).filter(|s| !s.is_empty()) {
            None => Some(None),
            Some(v) => {
                let t = ix.constant(g, v)?;
                let vals = tensor::to_f32(t, None).ok()?;
                (vals.len() == 1).then(|| Some(vals[0]))
            }
        }
    };
    let lo = match n.get_f("min").ok()? {
        Some(v) => Some(v),
        None => scalar(1)?,
    };
    let hi = match n.get_f("max").ok()? {
        Some(v) => Some(v),
        None => scalar(2)?,
    };
    Some((lo.unwrap_or(f32::MIN), hi.unwrap_or(f32::MAX)))
}

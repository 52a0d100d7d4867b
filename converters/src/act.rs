//! Which nodes are activations the converter may remove, and of what kind. ReLU is always considered;
//! ReLU6 (Clip 0..6), LeakyRelu and PRelu only when the user opts in with `--act`.

use serde::{Deserialize, Serialize};

use crate::ir::index::GraphIndex;
use crate::ops::Act;
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

/// The activation kind of `n`, if it is one, by its op's [`crate::ops::Act`] (Clip is ReLU6 only with constant
/// bounds 0 and 6).
pub fn classify(g: &GraphProto, ix: &GraphIndex, n: &NodeProto) -> Option<ActKind> {
    match crate::ops::spec_of(n)?.act {
        Act::Never => None,
        Act::Always(k) => Some(k),
        Act::When(k, test) => test(g, ix, n).then_some(k),
    }
}

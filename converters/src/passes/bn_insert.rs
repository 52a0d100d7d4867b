//! BatchNormalization reinserted after convolutions, for training a BN-folded model with batch statistics.
//!
//! After conv output y with per-channel mean μ and variance σ² (measured on data), the inserted node has running
//! mean μ, running variance σ², γ = √(σ² + ε) and β = μ: in inference mode it is exactly the identity, so the
//! model computes what it did; in training mode it normalizes with batch statistics and rescales to the same
//! statistics. [`fold_bn`](super::fold_bn::fold_bn) folds the nodes back into the convolutions on export.

use std::collections::HashMap;

use super::PassError;
use crate::ir::Patch;
use crate::ir::attr::NodeExt;
use crate::ir::build::{self, Attr};
use crate::ir::names::NameSet;
use crate::ir::tensor;
use crate::proto::GraphProto;

/// Per-channel mean and (biased or unbiased) variance of a value.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelStats {
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
}

/// One inserted node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertedBn {
    pub conv: String,
    pub bn: String,
    /// The conv output the node normalizes (its name is unchanged for every reader).
    pub value: String,
}

/// ONNX `momentum` of the inserted nodes (PyTorch's default 0.1 as 1 − 0.1).
pub const MOMENTUM: f32 = 0.9;
pub const EPSILON: f32 = 1e-5;

/// Insert a BatchNormalization after every Conv of `g` whose output has an entry in `stats`.
pub fn insert_bn_after_convs(
    g: &mut GraphProto,
    stats: &HashMap<String, ChannelStats>,
) -> Result<Vec<InsertedBn>, PassError> {
    let mut names = NameSet::of(g);
    let mut p = Patch::new();
    let mut inserted = Vec::new();
    for n in g.node.iter().filter(|n| n.op() == "Conv" && n.domain_str().is_empty()) {
        let Some(y) = n.output.first() else { continue };
        let Some(s) = stats.get(y) else { continue };
        if s.mean.len() != s.var.len() || s.mean.is_empty() {
            return Err(PassError::Node {
                pass: "insert_bn",
                node: n.name_or_output().into(),
                reason: format!("{} means for {} variances", s.mean.len(), s.var.len()),
            });
        }
        let c = s.mean.len() as i64;
        let conv = n.name_or_output().to_string();
        let mut init = |what: &str, values: Vec<f32>| {
            let name = names.fresh(&format!("{conv}.bn_reinsert.{what}"));
            p.set_initializer(tensor::from_f32(&name, &[c], &values));
            name
        };
        let gamma = init("weight", s.var.iter().map(|v| (v.max(0.0) + EPSILON).sqrt()).collect());
        let beta = init("bias", s.mean.clone());
        let mean = init("running_mean", s.mean.clone());
        let var = init("running_var", s.var.iter().map(|v| v.max(0.0)).collect());
        let bn = names.fresh(&format!("{conv}/bn_reinsert"));
        let node = build::node(
            "BatchNormalization",
            &bn,
            &[y, &gamma, &beta, &mean, &var],
            &[y],
            vec![("epsilon", Attr::Float(EPSILON)), ("momentum", Attr::Float(MOMENTUM))],
        );
        p.insert_after(y, node);
        inserted.push(InsertedBn {
            conv,
            bn,
            value: y.clone(),
        });
    }
    p.note(format!("reinsert {} BatchNormalization node(s)", inserted.len()));
    p.apply(g)?;
    Ok(inserted)
}

//! Folding inference-mode BatchNormalization into the convolution that feeds it, for deployment.
//!
//! With s = γ / √(var + ε), `BN(Conv(x, W, b)) = Conv(x, W·s, (b − mean)·s + β)`, per output channel. A pair is
//! folded when the Conv's output is read by that BN only (not by another node, a subgraph or a graph output),
//! the BN is not in training mode, and W, b and the four BN tensors are initializers held inline. Anything else
//! is left as it is: the pass never changes what the model computes, only how. Each pair becomes one
//! [`Patch::fuse`] (the Conv takes the BN's output name), its new weights are set as initializers, and what only
//! the pair read is dropped.

use std::collections::HashMap;

use super::PassError;
use crate::ir::GraphIndex;
use crate::ir::Patch;
use crate::ir::attr::NodeExt;
use crate::ir::index::outer_refs;
use crate::ir::names::NameSet;
use crate::ir::tensor;
use crate::proto::tensor_proto::DataLocation;
use crate::proto::{GraphProto, NodeProto, TensorProto};

const PASS: &str = "fold_bn";

/// One Conv→BN pair that was folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedPair {
    pub conv: String,
    pub bn: String,
}

/// What folding one pair writes back.
struct Fold {
    conv: usize,
    bn: usize,
    weight: TensorProto,
    bias: TensorProto,
}

/// Fold every foldable Conv→BatchNormalization pair of `g` (see the module doc); returns the pairs folded.
pub fn fold_bn(g: &mut GraphProto) -> Result<Vec<FoldedPair>, PassError> {
    let ix = GraphIndex::new(g);
    let mut uses: HashMap<String, usize> = HashMap::new();
    for n in &g.node {
        for i in n.input.iter().cloned().chain(outer_refs(n)) {
            *uses.entry(i).or_default() += 1;
        }
    }
    let mut names = NameSet::of(g);
    let mut folds = Vec::new();
    for (bi, bn) in g.node.iter().enumerate() {
        if let Some(f) = plan_fold(g, &ix, &uses, &mut names, bi, bn)? {
            folds.push(f);
        }
    }
    let report = folds
        .iter()
        .map(|f| FoldedPair {
            conv: g.node[f.conv].name_or_output().to_string(),
            bn: g.node[f.bn].name_or_output().to_string(),
        })
        .collect();
    patch(g, folds).apply(g)?;
    Ok(report)
}

fn plan_fold(
    g: &GraphProto,
    ix: &GraphIndex,
    uses: &HashMap<String, usize>,
    names: &mut NameSet,
    bi: usize,
    bn: &NodeProto,
) -> Result<Option<Fold>, PassError> {
    if bn.op() != "BatchNormalization" || !bn.domain_str().is_empty() || bn.input.len() != 5 {
        return Ok(None);
    }
    let training = bn.get_i("training_mode").map_err(|e| fold_err(bn, e.to_string()))?;
    if training == Some(1) || bn.output.iter().skip(1).any(|o| !o.is_empty()) {
        return Ok(None);
    }
    let x = bn.input[0].as_str();
    let Some(&(ci, 0)) = ix.producer.get(x) else {
        return Ok(None);
    };
    let conv = &g.node[ci];
    if conv.op() != "Conv" || !conv.domain_str().is_empty() || conv.input.len() < 2 {
        return Ok(None);
    }
    if uses.get(x).copied().unwrap_or(0) != 1 || ix.graph_outputs.contains(x) {
        return Ok(None);
    }
    let init = |name: &str| ix.initializer(g, name).filter(|_| !ix.graph_inputs.contains(name));
    let Some(w) = init(&conv.input[1]) else {
        return Ok(None);
    };
    let b = match conv.input.get(2).filter(|s| !s.is_empty()) {
        Some(name) => match init(name) {
            Some(t) => Some(t),
            None => return Ok(None),
        },
        None => None,
    };
    let mut bn_params = Vec::with_capacity(4);
    for name in &bn.input[1..5] {
        match init(name) {
            Some(t) => bn_params.push(read(bn, t)?),
            None => return Ok(None),
        }
    }
    let [gamma, beta, mean, var]: [Vec<f32>; 4] = bn_params.try_into().expect("four BN parameters were read");
    let eps = bn
        .get_f("epsilon")
        .map_err(|e| fold_err(bn, e.to_string()))?
        .unwrap_or(1e-5) as f64;
    let wv = read(bn, w)?;
    let cout = w.dims.first().copied().unwrap_or(0) as usize;
    let per = wv.len().checked_div(cout).unwrap_or(0);
    if cout == 0 || per * cout != wv.len() || [&gamma, &beta, &mean, &var].iter().any(|v| v.len() != cout) {
        return Err(fold_err(
            bn,
            format!(
                "conv '{}' weight dims {:?} do not match {} BN channels",
                conv.name_or_output(),
                w.dims,
                gamma.len()
            ),
        ));
    }
    let bv = match b {
        Some(t) => read(bn, t)?,
        None => vec![0.0; cout],
    };
    if bv.len() != cout {
        return Err(fold_err(
            bn,
            format!(
                "conv '{}' bias has {} values for {cout} channels",
                conv.name_or_output(),
                bv.len()
            ),
        ));
    }
    let mut new_w = Vec::with_capacity(wv.len());
    let mut new_b = Vec::with_capacity(cout);
    for c in 0..cout {
        let s = gamma[c] as f64 / (var[c] as f64 + eps).sqrt();
        new_w.extend(wv[c * per..(c + 1) * per].iter().map(|&v| (v as f64 * s) as f32));
        new_b.push(((bv[c] as f64 - mean[c] as f64) * s + beta[c] as f64) as f32);
    }
    // Keep the weight's name when nothing else reads it, so the folded model reads like a fresh export.
    let conv_name = conv.name_or_output();
    let owned = |name: &str| uses.get(name).copied().unwrap_or(0) == 1;
    let w_name = if owned(&conv.input[1]) {
        conv.input[1].clone()
    } else {
        names.fresh(&format!("{conv_name}.weight_folded"))
    };
    let b_name = match conv.input.get(2).filter(|s| !s.is_empty()) {
        Some(n) if owned(n) => n.clone(),
        Some(_) => names.fresh(&format!("{conv_name}.bias_folded")),
        None => names.fresh(&format!("{conv_name}.bias")),
    };
    Ok(Some(Fold {
        conv: ci,
        bn: bi,
        weight: tensor::from_f32(&w_name, &w.dims, &new_w),
        bias: tensor::from_f32(&b_name, &[cout as i64], &new_b),
    }))
}

/// The folds as one patch: each pair fused into its Conv (which takes the BN's output), new weights set (in place
/// when the name is kept, appended by name otherwise), and what only the pairs read dropped.
fn patch(g: &GraphProto, folds: Vec<Fold>) -> Patch {
    let mut p = Patch::new();
    let existing: std::collections::HashSet<&str> = g.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    let mut appended = Vec::new();
    for f in folds {
        let bn = &g.node[f.bn];
        let mut conv = g.node[f.conv].clone();
        for name in bn.input[1..]
            .iter()
            .chain(conv.input[1..].iter())
            .filter(|s| !s.is_empty())
        {
            p.drop_if_unused(name);
        }
        conv.output[0] = bn.output[0].clone();
        conv.input.truncate(2);
        conv.input[1] = f.weight.name.clone().unwrap_or_default();
        conv.input.push(f.bias.name.clone().unwrap_or_default());
        p.note(format!("fold {} into {}", bn.name_or_output(), conv.name_or_output()));
        p.fuse(&[f.conv, f.bn], conv);
        for t in [f.weight, f.bias] {
            if existing.contains(t.name.as_deref().unwrap_or("")) {
                p.set_initializer(t);
            } else {
                appended.push(t);
            }
        }
    }
    appended.sort_by(|a, b| a.name.cmp(&b.name));
    for t in appended {
        p.set_initializer(t);
    }
    p
}

fn read(bn: &NodeProto, t: &TensorProto) -> Result<Vec<f32>, PassError> {
    let name = t.name.as_deref().unwrap_or("");
    if t.data_location == Some(DataLocation::External as i32) {
        return Err(fold_err(
            bn,
            format!("tensor '{name}' keeps its data in an external file; load the model with its data inlined"),
        ));
    }
    tensor::to_f32(t, None).map_err(|e| fold_err(bn, e.to_string()))
}

fn fold_err(n: &NodeProto, reason: impl Into<String>) -> PassError {
    PassError::Node {
        pass: PASS,
        node: n.name_or_output().into(),
        reason: reason.into(),
    }
}

//! Folding inference-mode BatchNormalization into the convolution that feeds it, for deployment.
//!
//! With s = γ / √(var + ε), `BN(Conv(x, W, b)) = Conv(x, W·s, (b − mean)·s + β)`, per output channel. A pair is
//! folded when the Conv's output is read by that BN only (not by another node, a subgraph or a graph output),
//! the BN is not in training mode, and W, b and the four BN tensors are initializers held inline. Anything else
//! is left as it is: the pass never changes what the model computes, only how.

use std::collections::{HashMap, HashSet};

use converters::ir::GraphIndex;
use converters::ir::attr::NodeExt;
use converters::ir::index::outer_refs;
use converters::ir::tensor;
use converters::proto::tensor_proto::DataLocation;
use converters::proto::{GraphProto, ModelProto, StringStringEntryProto, TensorProto};

use crate::error::{ModelsError, Result};
use crate::net::f32_tensor;

/// One Conv→BN pair that was folded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldedPair {
    pub conv: String,
    pub bn: String,
}

/// `model` with every foldable Conv→BatchNormalization pair of its main graph folded (see the module doc).
pub fn fold_bn(model: &ModelProto) -> Result<ModelProto> {
    Ok(fold_bn_report(model)?.0)
}

/// [`fold_bn`], also listing the pairs it folded. Records `ratio.fold_bn = <count>` in `metadata_props`.
pub fn fold_bn_report(model: &ModelProto) -> Result<(ModelProto, Vec<FoldedPair>)> {
    let mut out = model.clone();
    let Some(g) = out.graph.as_mut() else {
        return Err(ModelsError::Fold {
            node: String::new(),
            reason: "the model has no graph".into(),
        });
    };
    let folded = fold_graph(g)?;
    out.metadata_props.retain(|e| e.key.as_deref() != Some("ratio.fold_bn"));
    out.metadata_props.push(StringStringEntryProto {
        key: Some("ratio.fold_bn".into()),
        value: Some(folded.len().to_string()),
    });
    Ok((out, folded))
}

/// What folding one pair writes back.
struct Fold {
    conv: usize,
    bn: usize,
    weight: TensorProto,
    bias: TensorProto,
}

fn fold_graph(g: &mut GraphProto) -> Result<Vec<FoldedPair>> {
    let ix = GraphIndex::new(g);
    let mut uses: HashMap<String, usize> = HashMap::new();
    for n in &g.node {
        for i in n.input.iter().cloned().chain(outer_refs(n)) {
            *uses.entry(i).or_default() += 1;
        }
    }
    // Names defined but never read still count as taken when `unique` picks a new name.
    let defined = g.node.iter().flat_map(|n| n.output.iter().map(String::as_str));
    let defined = defined.chain(g.initializer.iter().filter_map(|t| t.name.as_deref()));
    for name in defined.chain(g.input.iter().filter_map(|v| v.name.as_deref())) {
        uses.entry(name.to_string()).or_default();
    }
    let mut folds = Vec::new();
    for (bi, bn) in g.node.iter().enumerate() {
        if let Some(f) = plan_fold(g, &ix, &uses, bi, bn)? {
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
    apply(g, folds);
    Ok(report)
}

fn plan_fold(
    g: &GraphProto,
    ix: &GraphIndex,
    uses: &HashMap<String, usize>,
    bi: usize,
    bn: &converters::proto::NodeProto,
) -> Result<Option<Fold>> {
    if bn.op() != "BatchNormalization" || !bn.domain_str().is_empty() || bn.input.len() != 5 {
        return Ok(None);
    }
    let training = bn
        .get_i("training_mode")
        .map_err(|e| fold_err(bn.name_or_output(), e.to_string()))?;
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
        .map_err(|e| fold_err(bn.name_or_output(), e.to_string()))?
        .unwrap_or(1e-5) as f64;
    let wv = read(bn, w)?;
    let cout = w.dims.first().copied().unwrap_or(0) as usize;
    let per = wv.len().checked_div(cout).unwrap_or(0);
    if cout == 0 || per * cout != wv.len() || [&gamma, &beta, &mean, &var].iter().any(|v| v.len() != cout) {
        return Err(fold_err(
            bn.name_or_output(),
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
            bn.name_or_output(),
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
    let w_name = owned_name(&conv.input[1], uses, || {
        unique(&format!("{conv_name}.weight_folded"), uses)
    });
    let b_name = match conv.input.get(2).filter(|s| !s.is_empty()) {
        Some(n) => owned_name(n, uses, || unique(&format!("{conv_name}.bias_folded"), uses)),
        None => unique(&format!("{conv_name}.bias"), uses),
    };
    Ok(Some(Fold {
        conv: ci,
        bn: bi,
        weight: f32_tensor(&w_name, &w.dims, &new_w),
        bias: f32_tensor(&b_name, &[cout as i64], &new_b),
    }))
}

fn owned_name(name: &str, uses: &HashMap<String, usize>, other: impl FnOnce() -> String) -> String {
    if uses.get(name).copied().unwrap_or(0) == 1 {
        name.to_string()
    } else {
        other()
    }
}

/// `base`, or `base_<k>` when the graph already has a value of that name.
fn unique(base: &str, uses: &HashMap<String, usize>) -> String {
    let mut name = base.to_string();
    let mut k = 1;
    while uses.contains_key(name.as_str()) {
        name = format!("{base}_{k}");
        k += 1;
    }
    name
}

fn read(bn: &converters::proto::NodeProto, t: &TensorProto) -> Result<Vec<f32>> {
    let name = t.name.as_deref().unwrap_or("");
    if t.data_location == Some(DataLocation::External as i32) {
        return Err(fold_err(
            bn.name_or_output(),
            format!("tensor '{name}' keeps its data in an external file; load the model with its data inlined"),
        ));
    }
    tensor::to_f32(t, None).map_err(|e| fold_err(bn.name_or_output(), e.to_string()))
}

fn fold_err(node: &str, reason: impl Into<String>) -> ModelsError {
    ModelsError::Fold {
        node: node.into(),
        reason: reason.into(),
    }
}

fn apply(g: &mut GraphProto, folds: Vec<Fold>) {
    if folds.is_empty() {
        return;
    }
    let mut candidates: HashSet<String> = HashSet::new();
    let mut dropped_nodes = HashSet::new();
    let mut dead_values = HashSet::new();
    let mut new_inits: HashMap<String, TensorProto> = HashMap::new();
    for f in folds {
        let bn_node = &g.node[f.bn];
        candidates.extend(bn_node.input[1..].iter().cloned());
        let bn_out = bn_node.output[0].clone();
        let conv = &mut g.node[f.conv];
        candidates.extend(conv.input[1..].iter().filter(|s| !s.is_empty()).cloned());
        dead_values.insert(std::mem::replace(&mut conv.output[0], bn_out));
        let w = f.weight.name.clone().unwrap_or_default();
        let b = f.bias.name.clone().unwrap_or_default();
        conv.input.truncate(2);
        conv.input[1] = w.clone();
        conv.input.push(b.clone());
        new_inits.insert(w, f.weight);
        new_inits.insert(b, f.bias);
        dropped_nodes.insert(f.bn);
    }
    let mut i = 0;
    g.node.retain(|_| {
        i += 1;
        !dropped_nodes.contains(&(i - 1))
    });
    g.value_info
        .retain(|v| !dead_values.contains(v.name.as_deref().unwrap_or("")));
    // Replace in place (keeps initializer order stable), append the new ones, then drop what nothing reads.
    for t in g.initializer.iter_mut() {
        if let Some(new) = t.name.as_deref().and_then(|n| new_inits.remove(n)) {
            *t = new;
        }
    }
    let mut rest: Vec<TensorProto> = new_inits.into_values().collect();
    rest.sort_by(|a, b| a.name.cmp(&b.name));
    g.initializer.extend(rest);
    let mut read: HashSet<String> = g.output.iter().filter_map(|v| v.name.clone()).collect();
    for n in &g.node {
        read.extend(n.input.iter().cloned());
        read.extend(outer_refs(n));
    }
    let inputs: HashSet<String> = g.input.iter().filter_map(|v| v.name.clone()).collect();
    g.initializer.retain(|t| {
        let name = t.name.as_deref().unwrap_or("");
        !candidates.contains(name) || read.contains(name) || inputs.contains(name)
    });
}

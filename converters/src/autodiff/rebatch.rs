//! Train a static-batch export at another batch size. `torch.onnx.export(dynamo=True)` without `dynamic_shapes`
//! fixes the batch in the graph: input `[2, 3, 224, 224]` and a flatten as `Reshape` to the constant `[2, C]`.
//! Constants that carry the exported batch are rewritten to the training batch; which entries carry it is decided
//! by dataflow, not by value: shape inference runs at both batches side by side, a dim carries the batch when it
//! differs between the two, and a constant target's entry is rewritten only where it stands for such a dim (a
//! Reshape's output dims regroup its input dims in order; a broadcast target aligns with them from the right).
//! A leading 2 that is a channel or group count stays. Where no rewrite can make the graph work, the error names
//! the node, the exported batch and the `--batch` that trains it.

use std::collections::HashMap;
use std::fmt;

use crate::autodiff::error::{GradError, Result};
use crate::ir::Model;
use crate::ir::attr::NodeExt;
use crate::ir::build::value_info_dims;
use crate::ir::tensor;
use crate::ops::{Registry, Target};
use crate::proto::ValueInfoProto;
use crate::proto::tensor_shape_proto::dimension;
use crate::proto::type_proto;
use crate::shapes::{Inference, ValInfo, infer_node, infer_with, input_infos, record, seed};

/// One constant target rewritten to the training batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRewrite {
    pub node: String,
    pub op_type: String,
    pub from: Vec<i64>,
    pub to: Vec<i64>,
}

impl fmt::Display for BatchRewrite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "node '{}' ({}): target {:?} rewritten to {:?} for the training batch",
            self.node, self.op_type, self.from, self.to
        )
    }
}

fn fixed(n: &crate::proto::NodeProto, exported: i64, requested: i64, reason: impl Into<String>) -> GradError {
    GradError::StaticBatch {
        node: n.name_or_output().to_string(),
        op_type: n.op().to_string(),
        exported,
        requested,
        reason: reason.into(),
    }
}

/// The model at batch `batch` for graph input `input`, and the constants rewritten on the way. A model whose
/// input batch is symbolic, or already `batch`, comes back unchanged.
pub fn rebatch(model: &Model, reg: &Registry, input: &str, batch: i64) -> Result<(Model, Vec<BatchRewrite>)> {
    let g = model.graph();
    let Some(dims) = g
        .input
        .iter()
        .find(|v| v.name.as_deref() == Some(input))
        .and_then(value_info_dims)
        .and_then(|d| d.into_iter().collect::<Option<Vec<i64>>>())
    else {
        return Ok((model.clone(), Vec::new()));
    };
    let exported = dims[0];
    if exported == batch || dims.is_empty() {
        return Ok((model.clone(), Vec::new()));
    }
    let at_export = infer_with(reg, model, &HashMap::from([(input.to_string(), dims.clone())]), None);
    if !at_export.failures.is_empty() || !at_export.unresolved_inputs.is_empty() {
        // The export does not infer at its own batch; the train step's inference reports why.
        return Ok((model.clone(), Vec::new()));
    }
    let mut wanted = dims.clone();
    wanted[0] = batch;
    // Seed initializers and inputs the same way, then walk the nodes here to rewrite targets on the way.
    let mut now = seed(model, &HashMap::from([(input.to_string(), wanted)]), None);
    let mut rewrites: Vec<(usize, usize, BatchRewrite)> = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let spec = reg.of(n).ok_or_else(|| GradError::UnsupportedOps {
            ops: vec![n.op().to_string()],
        })?;
        let mut ins: Vec<Option<ValInfo>> = input_infos(n, &now.info).into_iter().map(|v| v.cloned()).collect();
        if let Some((slot, new)) = retarget(n, spec.target, &at_export, &now, exported, batch)? {
            let from = at_export.info[&n.input[slot]].ints.clone().unwrap_or_default();
            if let Some(Some(t)) = ins.get_mut(slot) {
                t.ints = Some(new.clone());
            }
            rewrites.push((
                i,
                slot,
                BatchRewrite {
                    node: n.name_or_output().to_string(),
                    op_type: n.op().to_string(),
                    from,
                    to: new,
                },
            ));
        }
        let refs: Vec<Option<&ValInfo>> = ins.iter().map(Option::as_ref).collect();
        let outs = infer_node(spec, n, &refs).map_err(|e| fixed(n, exported, batch, e.to_string()))?;
        record(n, outs, &mut now.info);
    }
    Ok((
        apply(model, &rewrites, &at_export, &now, input, batch),
        rewrites.into_iter().map(|r| r.2).collect(),
    ))
}

/// The new target of `n` at the training batch, when its target is a constant that carries the batch.
fn retarget(
    n: &crate::proto::NodeProto,
    target: Target,
    at_export: &Inference,
    now: &Inference,
    exported: i64,
    batch: i64,
) -> Result<Option<(usize, Vec<i64>)>> {
    let slot = match target {
        Target::None => return Ok(None),
        Target::Reshape(s) | Target::Broadcast(s) => s,
    };
    let (Some(x0), Some(x1)) = (at_export.get(&n.input[0]), now.get(&n.input[0])) else {
        return Ok(None);
    };
    let Some(t_name) = n.input.get(slot) else {
        return Ok(None);
    };
    let (Some(t0), Some(t1)) = (
        at_export.get(t_name).and_then(|v| v.ints.as_ref()),
        now.get(t_name).and_then(|v| v.ints.as_ref()),
    ) else {
        return Ok(None);
    };
    // A target computed from Shape chains follows the batch by itself; only constants need rewriting.
    if t0 != t1 || x0.shape == x1.shape {
        return Ok(None);
    }
    let new = match target {
        Target::Reshape(_) => {
            let o0 = at_export.get(&n.output[0]).map(|v| v.shape.clone()).unwrap_or_default();
            reshape_target(&x0.shape, &x1.shape, t0, &o0).map_err(|why| fixed(n, exported, batch, why))?
        }
        _ => broadcast_target(&x0.shape, &x1.shape, t0).map_err(|why| fixed(n, exported, batch, why))?,
    };
    Ok((new != *t0).then_some((slot, new)))
}

/// Group `x` and `o` dims into consecutive runs with equal products (the dims a Reshape regroups).
fn align(x: &[i64], o: &[i64]) -> Option<Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>> {
    if x.iter().chain(o).any(|&d| d <= 0) {
        return None;
    }
    let (mut i, mut j) = (0, 0);
    let mut groups = Vec::new();
    while i < x.len() || j < o.len() {
        let (si, sj) = (i, j);
        let (mut px, mut po) = (1, 1);
        if i < x.len() {
            px *= x[i];
            i += 1;
        }
        if j < o.len() {
            po *= o[j];
            j += 1;
        }
        while px != po {
            if px < po && i < x.len() {
                px *= x[i];
                i += 1;
            } else if po < px && j < o.len() {
                po *= o[j];
                j += 1;
            } else {
                return None;
            }
        }
        groups.push((si..i, sj..j));
    }
    Some(groups)
}

/// A Reshape target at the training batch: each run of output dims that regroups input dims carrying the batch
/// takes their new size. `x0`/`x1`: input at the exported/training batch; `t0`: the target; `o0`: its output.
fn reshape_target(x0: &[i64], x1: &[i64], t0: &[i64], o0: &[i64]) -> std::result::Result<Vec<i64>, String> {
    let groups = align(x0, o0).ok_or_else(|| format!("cannot match the dims of {x0:?} to {o0:?}"))?;
    let mut new = t0.to_vec();
    for (ins, outs) in groups {
        let before: i64 = x0[ins.clone()].iter().product();
        let after: i64 = x1[ins.clone()].iter().product();
        if before == after {
            continue;
        }
        let targets = &t0[outs.clone()];
        if targets.contains(&-1) {
            continue;
        }
        match outs.len() {
            1 if t0[outs.start] == 0 && ins == (outs.start..outs.start + 1) => {}
            1 => new[outs.start] = after,
            _ => {
                return Err(format!(
                    "its target {t0:?} splits the batch-carrying dims {:?} of {x0:?} into {:?}, and which part is the batch cannot be told",
                    &x0[ins], &o0[outs]
                ));
            }
        }
    }
    Ok(new)
}

/// A broadcast (Expand) target at the training batch: entries standing for a batch-carrying input dim follow it.
fn broadcast_target(x0: &[i64], x1: &[i64], t0: &[i64]) -> std::result::Result<Vec<i64>, String> {
    let mut new = t0.to_vec();
    let offset = t0.len() as i64 - x0.len() as i64;
    for (i, (&d0, &d1)) in x0.iter().zip(x1).enumerate() {
        let k = i as i64 + offset;
        if d0 == d1 || k < 0 {
            continue;
        }
        let k = k as usize;
        if t0[k] == d0 || t0[k] == 1 {
            new[k] = if t0[k] == 1 { 1 } else { d1 };
        } else {
            return Err(format!("its target {t0:?} does not follow the input's batch dim {d0}"));
        }
    }
    Ok(new)
}

/// The rewritten model: new int64 initializers for rewritten targets, and the graph input, outputs and
/// value_info dims that carry the batch set to their new sizes.
fn apply(
    model: &Model,
    rewrites: &[(usize, usize, BatchRewrite)],
    at_export: &Inference,
    now: &Inference,
    input: &str,
    batch: i64,
) -> Model {
    let mut out = model.clone();
    let g = out.graph_mut();
    let mut taken: std::collections::HashSet<String> = g
        .initializer
        .iter()
        .filter_map(|t| t.name.clone())
        .chain(g.node.iter().flat_map(|n| n.output.iter().cloned()))
        .chain(g.input.iter().filter_map(|v| v.name.clone()))
        .collect();
    for (node, slot, r) in rewrites {
        let base = format!("{}.batch{batch}", g.node[*node].input[*slot]);
        let mut name = base.clone();
        let mut k = 1;
        while taken.contains(&name) {
            name = format!("{base}.{k}");
            k += 1;
        }
        taken.insert(name.clone());
        g.initializer.push(tensor::from_i64(&name, &[r.to.len() as i64], &r.to));
        g.node[*node].input[*slot] = name;
    }
    for vi in g.input.iter_mut().filter(|v| v.name.as_deref() == Some(input)) {
        set_dim(vi, 0, batch);
    }
    for vi in g.output.iter_mut().chain(g.value_info.iter_mut()) {
        let name = vi.name.clone().unwrap_or_default();
        let (Some(before), Some(after)) = (at_export.shape(&name), now.shape(&name)) else {
            continue;
        };
        let Some(declared) = value_info_dims(vi) else { continue };
        if declared.len() != after.len() || before.len() != after.len() {
            continue;
        }
        for (k, d) in declared.iter().enumerate() {
            if *d == Some(before[k]) && before[k] != after[k] {
                set_dim(vi, k, after[k]);
            }
        }
    }
    out
}

fn set_dim(vi: &mut ValueInfoProto, k: usize, value: i64) {
    if let Some(type_proto::Value::TensorType(t)) = vi.r#type.as_mut().and_then(|t| t.value.as_mut())
        && let Some(d) = t.shape.as_mut().and_then(|s| s.dim.get_mut(k))
    {
        d.value = Some(dimension::Value::DimValue(value));
    }
}

//! New values for the constant inputs of nodes (weights, biases, BN statistics) — what calibration writes.
//!
//! An input held by an initializer that only this node reads is set in place under its name. A shared or
//! missing one (a tied weight, deduplicated BN statistics behind Identity, a Conv without bias) gets a fresh
//! initializer named from the update's hint, and the node is rewired to it; the old one is dropped if nothing
//! reads it any more. Attributes can be set on the same nodes (Gemm's `beta` when a bias appears).

use std::collections::{BTreeMap, HashMap};

use super::PassError;
use crate::ir::GraphIndex;
use crate::ir::Patch;
use crate::ir::attr::NodeExt;
use crate::ir::index::outer_refs;
use crate::ir::names::NameSet;
use crate::proto::{AttributeProto, GraphProto, TensorProto};

/// `tensor` becomes input `input` of node `node` (an index into the graph's nodes). `tensor.name` is the name
/// used when a new initializer is needed. `input` may be one past the node's last input (an optional input
/// that was absent).
#[derive(Debug, Clone)]
pub struct InputUpdate {
    pub node: usize,
    pub input: usize,
    pub tensor: TensorProto,
}

/// Apply `updates` and `attrs` (node index, attribute replacing the one of the same name) as one patch.
/// Returns the initializer names written.
pub fn set_inputs(
    g: &mut GraphProto,
    updates: Vec<InputUpdate>,
    attrs: Vec<(usize, AttributeProto)>,
) -> Result<Vec<String>, PassError> {
    let ix = GraphIndex::new(g);
    let mut uses: HashMap<String, usize> = HashMap::new();
    for n in &g.node {
        for i in n.input.iter().cloned().chain(outer_refs(n)) {
            *uses.entry(i).or_default() += 1;
        }
    }
    let private = |name: &str| {
        ix.initializers.contains_key(name)
            && !ix.graph_inputs.contains(name)
            && !ix.graph_outputs.contains(name)
            && uses.get(name).copied() == Some(1)
    };
    let mut names = NameSet::of(g);
    let mut nodes: BTreeMap<usize, crate::proto::NodeProto> = BTreeMap::new();
    let mut p = Patch::new();
    let mut written = Vec::new();
    for u in updates {
        let n = g
            .node
            .get(u.node)
            .ok_or_else(|| PassError::Ir(crate::IrError::Edit(format!("node index {} out of range", u.node))))?;
        let node = nodes.entry(u.node).or_insert_with(|| n.clone());
        if u.input > node.input.len() {
            return Err(PassError::Node {
                pass: "set_inputs",
                node: n.name_or_output().into(),
                reason: format!("input {} skips past its {} inputs", u.input, node.input.len()),
            });
        }
        let old = node.input.get(u.input).filter(|s| !s.is_empty()).cloned();
        let mut t = u.tensor;
        let name = match &old {
            Some(o) if private(o) => o.clone(),
            _ => names.fresh(t.name.as_deref().unwrap_or("calibrated")),
        };
        if let Some(o) = old.filter(|o| *o != name) {
            p.drop_if_unused(&o);
        }
        if u.input == node.input.len() {
            node.input.push(name.clone());
        } else {
            node.input[u.input] = name.clone();
        }
        t.name = Some(name.clone());
        written.push(name);
        p.set_initializer(t);
    }
    for (i, a) in attrs {
        let n = g
            .node
            .get(i)
            .ok_or_else(|| PassError::Ir(crate::IrError::Edit(format!("node index {i} out of range"))))?;
        let node = nodes.entry(i).or_insert_with(|| n.clone());
        node.attribute.retain(|x| x.name != a.name);
        node.attribute.push(a);
    }
    for (i, node) in nodes {
        if node != g.node[i] {
            p.replace(i, node);
        }
    }
    p.note(format!("set {} tensor(s)", written.len()));
    p.apply(g)?;
    Ok(written)
}

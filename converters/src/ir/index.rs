//! Producer/consumer maps over a `GraphProto`, built once per analysis. Values are identified by name, as in ONNX.

use std::collections::{HashMap, HashSet};

use crate::ir::attr::NodeExt;
use crate::proto::{GraphProto, NodeProto, TensorProto};

#[derive(Debug, Default)]
pub struct GraphIndex {
    /// value name → (node index, output slot)
    pub producer: HashMap<String, (usize, usize)>,
    /// value name → indices of nodes that read it (directly, or from inside one of their subgraphs)
    pub consumers: HashMap<String, Vec<usize>>,
    pub initializers: HashMap<String, usize>,
    pub graph_inputs: HashSet<String>,
    pub graph_outputs: HashSet<String>,
}

impl GraphIndex {
    pub fn new(g: &GraphProto) -> Self {
        let mut ix = GraphIndex::default();
        for (i, t) in g.initializer.iter().enumerate() {
            if let Some(n) = &t.name {
                ix.initializers.insert(n.clone(), i);
            }
        }
        ix.graph_inputs = g.input.iter().filter_map(|v| v.name.clone()).collect();
        ix.graph_outputs = g.output.iter().filter_map(|v| v.name.clone()).collect();
        for (i, n) in g.node.iter().enumerate() {
            for (slot, o) in n.output.iter().enumerate() {
                if !o.is_empty() {
                    ix.producer.insert(o.clone(), (i, slot));
                }
            }
            let mut seen = HashSet::new();
            for inp in n.input.iter().filter(|s| !s.is_empty()).cloned().chain(outer_refs(n)) {
                if seen.insert(inp.clone()) {
                    ix.consumers.entry(inp).or_default().push(i);
                }
            }
        }
        ix
    }

    pub fn producer_node<'g>(&self, g: &'g GraphProto, value: &str) -> Option<&'g NodeProto> {
        self.producer.get(value).map(|&(i, _)| &g.node[i])
    }

    pub fn consumers_of(&self, value: &str) -> &[usize] {
        self.consumers.get(value).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn initializer<'g>(&self, g: &'g GraphProto, value: &str) -> Option<&'g TensorProto> {
        self.initializers.get(value).map(|&i| &g.initializer[i])
    }

    /// A constant tensor behind `value`: an initializer (not overridable by a graph input), a Constant node's
    /// `value`, or either seen through Identity.
    pub fn constant<'g>(&self, g: &'g GraphProto, value: &str) -> Option<&'g TensorProto> {
        let mut v = value;
        for _ in 0..16 {
            if let Some(t) = self.initializer(g, v) {
                return (!self.graph_inputs.contains(v)).then_some(t);
            }
            let n = self.producer_node(g, v)?;
            match n.op() {
                "Constant" => return n.get_t("value").ok().flatten(),
                "Identity" => v = n.input.first()?,
                _ => return None,
            }
        }
        None
    }
}

/// Names a node's subgraphs read from the enclosing scope (If/Loop/Scan bodies), recursively.
pub fn outer_refs(n: &NodeProto) -> Vec<String> {
    let mut out = Vec::new();
    for sg in n.subgraphs() {
        collect_outer(sg, &mut out);
    }
    out
}

fn collect_outer(g: &GraphProto, out: &mut Vec<String>) {
    let mut local: HashSet<&str> = g.input.iter().filter_map(|v| v.name.as_deref()).collect();
    local.extend(g.initializer.iter().filter_map(|t| t.name.as_deref()));
    for n in &g.node {
        for i in n.input.iter().filter(|s| !s.is_empty()) {
            if !local.contains(i.as_str()) {
                out.push(i.clone());
            }
        }
        let mut inner = Vec::new();
        for sg in n.subgraphs() {
            collect_outer(sg, &mut inner);
        }
        out.extend(inner.into_iter().filter(|i| !local.contains(i.as_str())));
        local.extend(n.output.iter().map(String::as_str));
    }
}

//! Atomic graph edits. A [`Patch`] lists what should change; `apply` checks all of it first, then mutates:
//! consumers (including subgraph references) are rewired, graph output names survive, stale value_info is dropped.

use std::collections::{HashMap, HashSet};

use crate::error::{IrError, Result};
use crate::ir::attr::NodeExt;
use crate::ir::build;
use crate::ir::index::GraphIndex;
use crate::proto::{GraphProto, NodeProto};

#[derive(Debug, Clone, Default)]
pub struct Patch {
    /// Single-input pass-through nodes to remove: their output is replaced by their first input everywhere.
    pub shunt: Vec<usize>,
    /// Nodes replaced in place by another node with the same outputs.
    pub replace: Vec<(usize, NodeProto)>,
    /// Why, for audit trails (`--plan`, provenance).
    pub context: Vec<String>,
}

impl Patch {
    pub fn is_empty(&self) -> bool {
        self.shunt.is_empty() && self.replace.is_empty()
    }

    pub fn apply(self, g: &mut GraphProto) -> Result<()> {
        let ix = GraphIndex::new(g);
        let mut touched = HashSet::new();
        for &i in self.shunt.iter().chain(self.replace.iter().map(|(i, _)| i)) {
            let n = g
                .node
                .get(i)
                .ok_or_else(|| IrError::Edit(format!("node index {i} out of range")))?;
            if !touched.insert(i) {
                return Err(IrError::Edit(format!(
                    "node '{}' edited twice in one patch",
                    n.name_or_output()
                )));
            }
        }
        for &i in &self.shunt {
            let n = &g.node[i];
            if n.output.len() != 1 || n.input.first().is_none_or(String::is_empty) {
                return Err(IrError::Edit(format!(
                    "node '{}' ({}) is not a single-output pass-through and cannot be shunted",
                    n.name_or_output(),
                    n.op()
                )));
            }
        }
        for (i, new) in &self.replace {
            if new.output != g.node[*i].output {
                return Err(IrError::Edit(format!(
                    "replacement for '{}' changes its outputs",
                    g.node[*i].name_or_output()
                )));
            }
        }

        // Resolve chains: removing Relu(Relu(x)) maps both outputs to x.
        let mut rename: HashMap<String, String> = HashMap::new();
        for &i in &self.shunt {
            rename.insert(g.node[i].output[0].clone(), g.node[i].input[0].clone());
        }
        let resolve = |v: &str| {
            let mut v = v.to_string();
            for _ in 0..rename.len() + 1 {
                match rename.get(&v) {
                    Some(next) => v = next.clone(),
                    None => break,
                }
            }
            v
        };

        // Graph outputs keep their names: the removed node becomes Identity(input) -> output instead.
        let mut identities = HashMap::new();
        for &i in &self.shunt {
            let out = &g.node[i].output[0];
            if ix.graph_outputs.contains(out) {
                let name = format!("{}/kept_output", g.node[i].name_or_output());
                identities.insert(
                    i,
                    build::node("Identity", &name, &[&resolve(&g.node[i].input[0])], &[out], vec![]),
                );
            }
        }
        for (i, new) in self.replace {
            g.node[i] = new;
        }
        let removed: HashSet<usize> = self.shunt.iter().copied().collect();
        let mut dropped_values = HashSet::new();
        let old = std::mem::take(&mut g.node);
        for (i, mut n) in old.into_iter().enumerate() {
            if removed.contains(&i) {
                match identities.remove(&i) {
                    Some(id) => g.node.push(id),
                    None => {
                        dropped_values.insert(n.output[0].clone());
                    }
                }
                continue;
            }
            for inp in n.input.iter_mut() {
                if rename.contains_key(inp.as_str()) {
                    *inp = resolve(inp);
                }
            }
            for a in n.attribute.iter_mut() {
                for sg in a.g.iter_mut().chain(a.graphs.iter_mut()) {
                    rename_in_subgraph(sg, &rename, &resolve);
                }
            }
            g.node.push(n);
        }
        g.value_info
            .retain(|vi| !vi.name.as_ref().is_some_and(|n| dropped_values.contains(n)));
        Ok(())
    }
}

fn rename_in_subgraph(g: &mut GraphProto, rename: &HashMap<String, String>, resolve: &dyn Fn(&str) -> String) {
    // A subgraph may shadow an outer name with its own input or output; leave those alone.
    let mut local: HashSet<String> = g.input.iter().filter_map(|v| v.name.clone()).collect();
    local.extend(g.initializer.iter().filter_map(|t| t.name.clone()));
    for n in g.node.iter_mut() {
        for inp in n.input.iter_mut() {
            if !local.contains(inp.as_str()) && rename.contains_key(inp.as_str()) {
                *inp = resolve(inp);
            }
        }
        for a in n.attribute.iter_mut() {
            for sg in a.g.iter_mut().chain(a.graphs.iter_mut()) {
                rename_in_subgraph(sg, rename, resolve);
            }
        }
        local.extend(n.output.iter().cloned());
    }
    for o in g.output.iter_mut() {
        if let Some(name) = o.name.as_mut()
            && !local.contains(name.as_str())
            && rename.contains_key(name.as_str())
        {
            *name = resolve(name);
        }
    }
}

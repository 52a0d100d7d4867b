//! [`Patch::apply`] in three phases: check every edit against the graph, stage the new node list off to the side
//! (renames, placement, stable sort) and validate it, then commit. Only the commit mutates.

use std::collections::{HashMap, HashSet};

use super::order::stable_topological;
use super::{Anchor, Patch};
use crate::error::{IrError, Result};
use crate::ir::attr::NodeExt;
use crate::ir::build::{self, Attr};
use crate::ir::index::{GraphIndex, outer_refs};
use crate::ir::names::NameSet;
use crate::proto::{GraphProto, NodeProto, TensorProto, ValueInfoProto};
use crate::validate::validate;

fn reject(msg: impl Into<String>) -> IrError {
    IrError::Edit(msg.into())
}

/// Everything `commit` writes; built without touching the graph.
struct Staged {
    nodes: Vec<NodeProto>,
    output_renames: HashMap<String, String>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    /// `outputs` replaces the graph outputs instead of extending them.
    replace_outputs: bool,
    drop_if_unused: HashSet<String>,
    /// Values whose value_info no longer describes them.
    stale: HashSet<String>,
    clear_value_info: bool,
}

/// Value renames for node inputs, resolved through chains (removing Relu(Relu(x)) maps both outputs to x).
#[derive(Default)]
struct Renames(HashMap<String, String>);

impl Renames {
    fn insert(&mut self, from: &str, to: &str) -> Result<()> {
        if self.0.insert(from.to_string(), to.to_string()).is_some() {
            return Err(reject(format!("value '{from}' is redirected twice in one patch")));
        }
        Ok(())
    }

    fn resolve(&self, v: &str) -> String {
        let mut v = v.to_string();
        for _ in 0..=self.0.len() {
            match self.0.get(&v) {
                Some(next) => v = next.clone(),
                None => break,
            }
        }
        v
    }

    fn apply(&self, n: &mut NodeProto, keep: Option<&str>) {
        if self.0.is_empty() {
            return;
        }
        for inp in n.input.iter_mut() {
            if keep != Some(inp.as_str()) && self.0.contains_key(inp.as_str()) {
                *inp = self.resolve(inp);
            }
        }
        for a in n.attribute.iter_mut() {
            for sg in a.g.iter_mut().chain(a.graphs.iter_mut()) {
                rename_in_subgraph(sg, self);
            }
        }
    }
}

impl Patch {
    /// Check every edit, then apply all of them; on error the graph is unchanged.
    pub fn apply(self, g: &mut GraphProto) -> Result<()> {
        let staged = self.stage(g)?;
        staged.commit(g);
        Ok(())
    }

    fn check_indices(&self, g: &GraphProto) -> Result<()> {
        let mut touched = HashSet::new();
        let indexed = self.shunt.iter().chain(self.remove.iter());
        let indexed = indexed.chain(self.replace.iter().map(|(i, _)| i));
        for &i in indexed.chain(self.constants.iter().map(|(i, _)| i)) {
            let n = g
                .node
                .get(i)
                .ok_or_else(|| reject(format!("node index {i} out of range")))?;
            if !touched.insert(i) {
                return Err(reject(format!(
                    "node '{}' edited twice in one patch",
                    n.name_or_output()
                )));
            }
        }
        for (a, n) in &self.add {
            if let Anchor::At(i) = a
                && *i >= g.node.len()
            {
                return Err(reject(format!(
                    "node '{}' is placed at index {i}, out of range",
                    n.name_or_output()
                )));
            }
        }
        for &i in &self.shunt {
            let n = &g.node[i];
            if n.output.len() != 1 || n.input.first().is_none_or(String::is_empty) {
                return Err(reject(format!(
                    "node '{}' ({}) is not a single-output pass-through and cannot be shunted",
                    n.name_or_output(),
                    n.op()
                )));
            }
        }
        for (i, new) in &self.replace {
            let old = &g.node[*i];
            let kept = old
                .output
                .iter()
                .enumerate()
                .all(|(slot, o)| o.is_empty() || new.output.get(slot) == Some(o));
            if !kept {
                return Err(reject(format!(
                    "replacement for '{}' changes its outputs",
                    old.name_or_output()
                )));
            }
        }
        for (i, _) in &self.constants {
            let n = &g.node[*i];
            if n.op() != "Constant" {
                return Err(reject(format!(
                    "node '{}' is a {}, not a Constant; its value cannot be set",
                    n.name_or_output(),
                    n.op()
                )));
            }
        }
        Ok(())
    }

    fn stage(self, g: &GraphProto) -> Result<Staged> {
        self.check_indices(g)?;
        let ix = GraphIndex::new(g);
        let mut names = NameSet::of(g);
        let added = self.add.iter().map(|(_, n)| n);
        for n in added.chain(self.insert_after.iter().map(|(_, n)| n)) {
            n.output.iter().filter(|o| !o.is_empty()).for_each(|o| names.reserve(o));
            if let Some(name) = &n.name {
                names.reserve(name);
            }
        }
        let removed: HashSet<usize> = self.shunt.iter().chain(self.remove.iter()).copied().collect();
        let mut wiring = Wiring::new(g, &ix, &self.shunt, &self.retarget)?;
        let mut place = Placement::default();
        for (v, node) in self.insert_after {
            place.insert_after(v, node, &ix, &removed, &mut names, &mut wiring)?;
        }
        place.keep_shunted_outputs(g, &ix, &self.shunt, &wiring.shunted);
        for (anchor, mut node) in self.add {
            wiring.shunted.apply(&mut node, None);
            match anchor {
                Anchor::At(i) => place.at.entry(i).or_default().push(node),
                Anchor::End => place.end.push(node),
            }
        }
        let edits = NodeEdits {
            removed,
            replaced: self.replace.into_iter().collect(),
            constants: self.constants.into_iter().collect(),
        };
        let stale = std::mem::take(&mut place.stale);
        let nodes = stable_topological(place.assemble(g, edits, &wiring.original))
            .map_err(|node| reject(format!("the patch makes a cycle through node '{node}'")))?;
        let replace_outputs = self.set_outputs.is_some();
        let staged = Staged {
            replace_outputs,
            outputs: chosen_outputs(g, self.set_outputs, self.outputs),
            nodes,
            output_renames: wiring.output_renames,
            initializers: self.initializers,
            inputs: self.inputs,
            drop_if_unused: self.drop_if_unused.into_iter().collect(),
            stale,
            clear_value_info: self.clear_value_info,
        };
        staged.check(g)
    }
}

/// The value renames a patch makes.
struct Wiring {
    /// Readers of shunted values read their inputs; applies to every node, added ones too.
    shunted: Renames,
    /// Shunts, retargets and inserts after graph inputs; applies to the graph's own nodes.
    original: Renames,
    /// Graph outputs renamed by `retarget_outputs`.
    output_renames: HashMap<String, String>,
}

impl Wiring {
    fn new(g: &GraphProto, ix: &GraphIndex, shunt: &[usize], retarget: &[(String, String, bool)]) -> Result<Self> {
        let mut shunted = Renames::default();
        for &i in shunt {
            shunted.insert(&g.node[i].output[0], &g.node[i].input[0])?;
        }
        let mut original = Renames::default();
        for (from, to) in &shunted.0 {
            original.insert(from, to)?;
        }
        let mut output_renames = HashMap::new();
        for (from, to, outputs) in retarget {
            original.insert(from, to)?;
            if *outputs && ix.graph_outputs.contains(from) {
                output_renames.insert(from.clone(), to.clone());
            }
        }
        Ok(Wiring {
            shunted,
            original,
            output_renames,
        })
    }
}

/// Edits addressed to original nodes by index.
struct NodeEdits {
    removed: HashSet<usize>,
    replaced: HashMap<usize, NodeProto>,
    constants: HashMap<usize, TensorProto>,
}

/// Where new nodes go before the sort: first, right after original node i (in its place when it is removed),
/// or last; plus the producer outputs renamed by inserts and the values whose value_info went stale.
#[derive(Default)]
struct Placement {
    front: Vec<NodeProto>,
    at: HashMap<usize, Vec<NodeProto>>,
    end: Vec<NodeProto>,
    producer_renames: HashMap<(usize, usize), String>,
    stale: HashSet<String>,
}

impl Placement {
    fn insert_after(
        &mut self,
        v: String,
        mut node: NodeProto,
        ix: &GraphIndex,
        removed: &HashSet<usize>,
        names: &mut NameSet,
        wiring: &mut Wiring,
    ) -> Result<()> {
        if self.stale.contains(&v) {
            return Err(reject(format!("two nodes are inserted after '{v}'")));
        }
        if node.output.len() != 1 || node.output[0] != v || !node.input.contains(&v) {
            return Err(reject(format!(
                "node '{}' inserted after '{v}' must read '{v}' and have the single output '{v}'",
                node.name_or_output()
            )));
        }
        match ix.producer.get(&v) {
            Some(&(p, slot)) => {
                if removed.contains(&p) {
                    return Err(reject(format!(
                        "'{v}' is inserted after, but its producer is removed by the same patch"
                    )));
                }
                let pre = names.fresh(&format!("{v}__pre"));
                self.producer_renames.insert((p, slot), pre.clone());
                node.input
                    .iter_mut()
                    .filter(|i| **i == v)
                    .for_each(|i| *i = pre.clone());
                wiring.shunted.apply(&mut node, None);
                self.at.entry(p).or_default().push(node);
            }
            None if ix.graph_inputs.contains(&v) || ix.initializers.contains_key(&v) => {
                if ix.graph_outputs.contains(&v) {
                    return Err(reject(format!(
                        "'{v}' is both a graph input and a graph output; nothing can be inserted after it"
                    )));
                }
                let out = names.fresh(&format!("{v}__{}", node.op()));
                wiring.original.insert(&v, &out)?;
                node.output[0] = out;
                wiring.shunted.apply(&mut node, Some(&v));
                self.front.push(node);
            }
            None => return Err(reject(format!("no value '{v}' to insert after"))),
        }
        self.stale.insert(v);
        Ok(())
    }

    /// Graph outputs keep their names: a shunted node becomes Identity(input) -> output instead.
    fn keep_shunted_outputs(&mut self, g: &GraphProto, ix: &GraphIndex, shunt: &[usize], shunted: &Renames) {
        for &i in shunt {
            let n = &g.node[i];
            let out = &n.output[0];
            if ix.graph_outputs.contains(out) {
                let name = format!("{}/kept_output", n.name_or_output());
                let id = build::node("Identity", &name, &[&shunted.resolve(&n.input[0])], &[out], vec![]);
                self.at.entry(i).or_default().insert(0, id);
            }
        }
    }

    /// The new node list: the graph's own nodes edited and rewired, the new ones where they were placed.
    fn assemble(mut self, g: &GraphProto, mut edits: NodeEdits, original: &Renames) -> Vec<NodeProto> {
        let mut nodes = Vec::with_capacity(g.node.len() + self.end.len() + self.front.len());
        nodes.append(&mut self.front);
        for (i, old) in g.node.iter().enumerate() {
            if !edits.removed.contains(&i) {
                let mut n = edits.replaced.remove(&i).unwrap_or_else(|| old.clone());
                if let Some(mut t) = edits.constants.remove(&i) {
                    t.name = None;
                    n.attribute.retain(|a| a.name.as_deref() != Some("value"));
                    n.attribute.push(build::attr("value", Attr::Tensor(t)));
                }
                for (slot, o) in n.output.iter_mut().enumerate() {
                    if let Some(pre) = self.producer_renames.get(&(i, slot)) {
                        *o = pre.clone();
                    }
                }
                original.apply(&mut n, None);
                nodes.push(n);
            }
            nodes.extend(self.at.remove(&i).unwrap_or_default());
        }
        nodes.append(&mut self.end);
        nodes
    }
}

/// The graph outputs after the patch: the added ones, or exactly `set` (typed where a type is known).
fn chosen_outputs(g: &GraphProto, set: Option<Vec<String>>, added: Vec<ValueInfoProto>) -> Vec<ValueInfoProto> {
    let Some(names) = set else {
        return added;
    };
    names
        .iter()
        .map(|name| {
            let mut known = g.output.iter().chain(&g.value_info).chain(&added);
            let vi = known.find(|v| v.name.as_deref() == Some(name.as_str()));
            vi.cloned().unwrap_or_else(|| ValueInfoProto {
                name: Some(name.clone()),
                ..Default::default()
            })
        })
        .collect()
}

impl Staged {
    /// The staged graph must not have a structural problem the original did not have.
    fn check(mut self, g: &GraphProto) -> Result<Self> {
        let before: HashSet<String> = validate(g).into_iter().collect();
        let mut inits: Vec<TensorProto> = g
            .initializer
            .iter()
            .map(|t| TensorProto {
                name: t.name.clone(),
                ..Default::default()
            })
            .collect();
        let existing: HashSet<&str> = g.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
        for t in &self.initializers {
            if t.name.as_deref().is_none_or(str::is_empty) {
                return Err(reject("an initializer set by the patch has no name"));
            }
            if !existing.contains(t.name.as_deref().unwrap_or("")) {
                inits.push(TensorProto {
                    name: t.name.clone(),
                    ..Default::default()
                });
            }
        }
        let mut outputs = if self.replace_outputs {
            Vec::new()
        } else {
            g.output.clone()
        };
        for o in outputs.iter_mut() {
            if let Some(to) = o.name.as_ref().and_then(|n| self.output_renames.get(n)) {
                o.name = Some(to.clone());
            }
        }
        outputs.extend(self.outputs.iter().cloned());
        let mut candidate = GraphProto {
            node: std::mem::take(&mut self.nodes),
            input: g.input.iter().chain(&self.inputs).cloned().collect(),
            output: outputs,
            initializer: inits,
            ..Default::default()
        };
        let new: Vec<String> = validate(&candidate)
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if !new.is_empty() {
            return Err(reject(new.join("; ")));
        }
        self.nodes = std::mem::take(&mut candidate.node);
        Ok(self)
    }

    fn commit(self, g: &mut GraphProto) {
        let defined_before: HashSet<String> = g
            .node
            .iter()
            .flat_map(|n| n.output.iter().cloned())
            .chain(g.input.iter().filter_map(|v| v.name.clone()))
            .collect();
        g.node = self.nodes;
        for t in self.initializers {
            match g.initializer.iter_mut().find(|i| i.name == t.name) {
                Some(slot) => *slot = t,
                None => g.initializer.push(t),
            }
        }
        g.input.extend(self.inputs);
        if self.replace_outputs {
            g.output.clear();
        }
        for o in g.output.iter_mut() {
            if let Some(to) = o.name.as_ref().and_then(|n| self.output_renames.get(n)) {
                o.name = Some(to.clone());
            }
        }
        g.output.extend(self.outputs);
        if !self.drop_if_unused.is_empty() {
            let mut read: HashSet<String> = g.output.iter().filter_map(|v| v.name.clone()).collect();
            read.extend(g.input.iter().filter_map(|v| v.name.clone()));
            for n in &g.node {
                read.extend(n.input.iter().cloned());
                read.extend(outer_refs(n));
            }
            g.initializer.retain(|t| {
                let name = t.name.as_deref().unwrap_or("");
                !self.drop_if_unused.contains(name) || read.contains(name)
            });
        }
        if self.clear_value_info {
            g.value_info.clear();
            return;
        }
        let defined_after: HashSet<&str> = g
            .node
            .iter()
            .flat_map(|n| n.output.iter().map(String::as_str))
            .chain(g.input.iter().filter_map(|v| v.name.as_deref()))
            .collect();
        g.value_info.retain(|vi| {
            let name = vi.name.as_deref().unwrap_or("");
            let gone = defined_before.contains(name) && !defined_after.contains(name);
            !gone && !self.stale.contains(name)
        });
    }
}

fn rename_in_subgraph(g: &mut GraphProto, rename: &Renames) {
    // A subgraph may shadow an outer name with its own input or output; leave those alone.
    let mut local: HashSet<String> = g.input.iter().filter_map(|v| v.name.clone()).collect();
    local.extend(g.initializer.iter().filter_map(|t| t.name.clone()));
    for n in g.node.iter_mut() {
        for inp in n.input.iter_mut() {
            if !local.contains(inp.as_str()) && rename.0.contains_key(inp.as_str()) {
                *inp = rename.resolve(inp);
            }
        }
        for a in n.attribute.iter_mut() {
            for sg in a.g.iter_mut().chain(a.graphs.iter_mut()) {
                rename_in_subgraph(sg, rename);
            }
        }
        local.extend(n.output.iter().cloned());
    }
    for o in g.output.iter_mut() {
        if let Some(name) = o.name.as_mut()
            && !local.contains(name.as_str())
            && rename.0.contains_key(name.as_str())
        {
            *name = rename.resolve(name);
        }
    }
}

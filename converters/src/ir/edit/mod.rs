//! Atomic graph edits: the one way `ratio` changes a graph's structure or weights.
//!
//! A [`Patch`] lists what should change; [`Patch::apply`] checks all of it first and then mutates, so a rejected
//! patch leaves the graph as it was. The edits:
//! - [`shunt`](Patch::shunt) a single-input pass-through (its consumers read its input),
//! - [`replace`](Patch::replace) a node in place (same outputs, optionally more),
//! - [`add`](Patch::add) / [`add_at`](Patch::add_at) nodes, [`remove`](Patch::remove) nodes,
//!   [`fuse`](Patch::fuse) several nodes into one,
//! - [`insert_after`](Patch::insert_after) a value (a node that everyone else then reads instead of the value),
//! - [`retarget`](Patch::retarget) the readers of one value to another,
//! - [`set_initializer`](Patch::set_initializer), [`set_constant`](Patch::set_constant),
//!   [`drop_if_unused`](Patch::drop_if_unused) initializers,
//! - [`add_input`](Patch::add_input) / [`add_output`](Patch::add_output) graph inputs and outputs, or
//!   [`set_outputs`](Patch::set_outputs) to choose them.
//!
//! `apply` rewires consumers (subgraph references too), keeps graph output names (a shunted or retargeted graph
//! output is kept by name unless [`retarget_outputs`](Patch::retarget_outputs) opts in), places new nodes in a
//! stable topological order, drops stale value_info, and refuses a patch after which the graph has a problem it
//! did not have before (a dangling read, a value produced twice, a cycle, a lost graph output).

mod apply;
mod order;
#[cfg(test)]
mod tests;

use crate::proto::{NodeProto, TensorProto, ValueInfoProto};

/// Where an added node goes before the topological sort settles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// Where original node `i` stood (in its place when it is removed).
    At(usize),
    End,
}

#[derive(Debug, Clone, Default)]
pub struct Patch {
    shunt: Vec<usize>,
    replace: Vec<(usize, NodeProto)>,
    remove: Vec<usize>,
    add: Vec<(Anchor, NodeProto)>,
    insert_after: Vec<(String, NodeProto)>,
    /// (from, to, graph outputs too)
    retarget: Vec<(String, String, bool)>,
    initializers: Vec<TensorProto>,
    constants: Vec<(usize, TensorProto)>,
    drop_if_unused: Vec<String>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    set_outputs: Option<Vec<String>>,
    clear_value_info: bool,
    /// Why, for audit trails (`--plan`, provenance).
    pub context: Vec<String>,
}

impl Patch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.shunt.is_empty()
            && self.replace.is_empty()
            && self.remove.is_empty()
            && self.add.is_empty()
            && self.insert_after.is_empty()
            && self.retarget.is_empty()
            && self.initializers.is_empty()
            && self.constants.is_empty()
            && self.drop_if_unused.is_empty()
            && self.inputs.is_empty()
            && self.outputs.is_empty()
            && self.set_outputs.is_none()
            && !self.clear_value_info
    }

    /// Remove single-input node `i`; its output is replaced by its first input everywhere (a graph output keeps
    /// its name through an Identity).
    pub fn shunt(&mut self, i: usize) -> &mut Self {
        self.shunt.push(i);
        self
    }

    /// Replace node `i` by `node`, which must produce the same outputs at the same slots (it may add outputs).
    pub fn replace(&mut self, i: usize, node: NodeProto) -> &mut Self {
        self.replace.push((i, node));
        self
    }

    /// Remove node `i`. Whatever read its outputs must read something else after the patch.
    pub fn remove(&mut self, i: usize) -> &mut Self {
        self.remove.push(i);
        self
    }

    /// Add a node; it is placed after everything it reads.
    pub fn add(&mut self, node: NodeProto) -> &mut Self {
        self.add.push((Anchor::End, node));
        self
    }

    /// Add everything `part` holds — nodes, initializers, inputs and outputs — as a graph built with
    /// [`GraphBuilder::reserving`](crate::ir::build::GraphBuilder::reserving) holds the new part of an edit.
    pub fn add_part(&mut self, part: crate::proto::GraphProto) -> &mut Self {
        for n in part.node {
            self.add(n);
        }
        self.initializers.extend(part.initializer);
        self.inputs.extend(part.input);
        self.outputs.extend(part.output);
        self
    }

    /// Add a node where original node `i` stands (in its place when `i` is removed), then sorted as needed.
    pub fn add_at(&mut self, i: usize, node: NodeProto) -> &mut Self {
        self.add.push((Anchor::At(i), node));
        self
    }

    /// Replace the nodes `group` by `node`, placed where the first of them stood. Every output of the group that
    /// is read outside it must be an output of `node`.
    pub fn fuse(&mut self, group: &[usize], node: NodeProto) -> &mut Self {
        let at = group.iter().copied().min().map_or(Anchor::End, Anchor::At);
        self.remove.extend_from_slice(group);
        self.add.push((at, node));
        self
    }

    /// Insert `node` after `value`: `node` reads `value` and has the single output `value`; after the patch every
    /// other reader of `value` (graph outputs included) reads `node`'s output. The producer's output gets a fresh
    /// name; with a graph input or initializer, `node`'s output gets it and the readers are rewired.
    pub fn insert_after(&mut self, value: &str, node: NodeProto) -> &mut Self {
        self.insert_after.push((value.to_string(), node));
        self
    }

    /// Every node (and subgraph) that reads `from` reads `to` instead. Graph outputs keep reading `from`.
    pub fn retarget(&mut self, from: &str, to: &str) -> &mut Self {
        self.retarget.push((from.to_string(), to.to_string(), false));
        self
    }

    /// [`retarget`](Patch::retarget), and a graph output named `from` is renamed `to` (an explicit opt-in: ONNX
    /// Runtime binds outputs by name).
    pub fn retarget_outputs(&mut self, from: &str, to: &str) -> &mut Self {
        self.retarget.push((from.to_string(), to.to_string(), true));
        self
    }

    /// Set the initializer named like `t` (replaced in place, keeping the order) or append it.
    pub fn set_initializer(&mut self, t: TensorProto) -> &mut Self {
        self.initializers.push(t);
        self
    }

    /// Set the `value` of Constant node `i`.
    pub fn set_constant(&mut self, i: usize, t: TensorProto) -> &mut Self {
        self.constants.push((i, t));
        self
    }

    /// Remove initializer `name` when nothing reads it after the patch.
    pub fn drop_if_unused(&mut self, name: &str) -> &mut Self {
        self.drop_if_unused.push(name.to_string());
        self
    }

    pub fn add_input(&mut self, vi: ValueInfoProto) -> &mut Self {
        self.inputs.push(vi);
        self
    }

    pub fn add_output(&mut self, vi: ValueInfoProto) -> &mut Self {
        self.outputs.push(vi);
        self
    }

    /// The graph outputs become exactly `names`, in order (an explicit opt-in: the old outputs are no longer
    /// outputs). A name that was an output keeps its type; others are typed from value_info or left untyped.
    pub fn set_outputs(&mut self, names: &[String]) -> &mut Self {
        self.set_outputs = Some(names.to_vec());
        self
    }

    /// Drop all value_info (after edits that change many shapes; ONNX Runtime infers them again).
    pub fn clear_value_info(&mut self) -> &mut Self {
        self.clear_value_info = true;
        self
    }

    pub fn note(&mut self, why: impl Into<String>) -> &mut Self {
        self.context.push(why.into());
        self
    }
}

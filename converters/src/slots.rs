//! Slot detection and block/stage structure.
//!
//! A *slot* is an activation node plus the convolution(s) that feed it, found by walking producers back through
//! ops that do not change which conv feeds the activation (BN, residual Add, Concat, Identity, scaling by
//! constants, pooling, channel shuffles). *Stages* are regions between spatial down-sampling (resolution level);
//! *blocks* end at joins — a residual Add or a Concat of two or more computed tensors.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::act::{self, ActKind};
use crate::ir::attr::NodeExt;
use crate::ir::index::GraphIndex;
use crate::ops::{DataInputs, Walk};
use crate::proto::{GraphProto, NodeProto};

/// Why a slot is not eligible for removal by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The first activation after the input: protected by default (it shapes every later feature).
    Stem,
    /// Between the first activation and the classifier.
    Body,
    /// After global pooling / flatten, or fed by a fully connected layer: protected by default.
    Head,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Slot {
    /// Activation node name (or its output name when the exporter left names empty).
    pub name: String,
    /// Index of the activation node in `graph.node`.
    #[serde(skip)]
    pub node: usize,
    pub kind: ActKind,
    pub input: String,
    pub output: String,
    /// Conv / Gemm / MatMul nodes whose output reaches the activation through pass-through ops.
    pub feeders: Vec<String>,
    /// Position among all slots in topological order (0-based): the depth used in plots.
    pub depth: usize,
    pub block: usize,
    pub stage: usize,
    pub role: Role,
}

/// Everything the converter and `inspect` need to know about a graph's activations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Structure {
    pub slots: Vec<Slot>,
    pub num_blocks: usize,
    pub num_stages: usize,
    /// Whether any join (residual Add, multi-input Concat) exists: decides what `--scope auto` means.
    pub has_joins: bool,
}

fn is_downsampling(n: &NodeProto) -> bool {
    crate::ops::spec_of(n).is_some_and(|s| s.downsamples)
        && n.get_ints("strides")
            .ok()
            .flatten()
            .is_some_and(|s| s.iter().any(|&x| x > 1))
}

fn is_global(n: &NodeProto) -> bool {
    crate::ops::spec_of(n).is_some_and(|s| s.global)
}

/// A join ends a block: a joining op (residual Add/Sum, Concat) of two or more computed tensors, unless it
/// computes integers (the shape arithmetic exporters write around Reshape). The one rule slot detection and
/// richness layer selection share.
pub fn is_join(g: &GraphProto, ix: &GraphIndex, n: &NodeProto) -> bool {
    if !crate::ops::spec_of(n).is_some_and(|s| s.join) {
        return false;
    }
    let computed = n
        .input
        .iter()
        .filter(|i| !i.is_empty() && ix.constant(g, i).is_none() && ix.producer.contains_key(*i))
        .count();
    computed >= 2 && !n.input.iter().all(|i| i.is_empty() || is_shape_value(g, ix, i, 0))
}

/// Whether `value` is integer bookkeeping: an integer constant, the output of a shape query, or computed from
/// such values only. Float data never is, so Concat(Slice(x), branch(x)) in a ShuffleNet unit is a join while
/// Concat(Unsqueeze(Gather(Shape(x))), [-1]) is not.
fn is_shape_value(g: &GraphProto, ix: &GraphIndex, value: &str, depth: usize) -> bool {
    if let Some(t) = ix.constant(g, value) {
        return t.data_type.is_some_and(|d| !crate::shapes::is_float(d));
    }
    let Some(n) = ix.producer_node(g, value) else {
        return false;
    };
    if crate::ops::spec_of(n).is_some_and(|s| s.shape_only) {
        return true;
    }
    depth < 32
        && !n.input.is_empty()
        && n.input
            .iter()
            .all(|i| i.is_empty() || is_shape_value(g, ix, i, depth + 1))
}

/// Detect slots for the activation kinds in `kinds` (ReLU alone by default).
pub fn detect(g: &GraphProto, kinds: &[ActKind]) -> Structure {
    let ix = GraphIndex::new(g);
    let levels = resolution_levels(g, &ix);
    let after_global = after_global(g, &ix);
    let joins: Vec<usize> = (0..g.node.len()).filter(|&i| is_join(g, &ix, &g.node[i])).collect();
    let join_rank: HashMap<usize, usize> = joins.iter().enumerate().map(|(r, &i)| (i, r)).collect();
    let num_joins = joins.len();
    let downstream_join = nearest_downstream_join(g, &ix, &join_rank);

    let mut slots = Vec::new();
    for (i, n) in g.node.iter().enumerate() {
        let Some(kind) = act::classify(g, &ix, n) else { continue };
        if !kinds.contains(&kind) || n.input.first().is_none_or(String::is_empty) || n.output.len() != 1 {
            continue;
        }
        let input = n.input[0].clone();
        let (feeders, fc_fed) = walk_back(g, &ix, &input);
        // A post-activation block (…→Add→Relu) owns the Relu right after its join; otherwise an activation belongs
        // to the block whose join comes next.
        let block = match sole_join_before(g, &ix, &input) {
            Some(j) => join_rank[&j],
            None => downstream_join.get(&i).copied().unwrap_or(num_joins),
        };
        let role = if fc_fed || after_global.contains(&i) {
            Role::Head
        } else {
            Role::Body
        };
        slots.push(Slot {
            name: n.name_or_output().to_string(),
            node: i,
            kind,
            input,
            output: n.output[0].clone(),
            feeders,
            depth: slots.len(),
            block,
            stage: levels.get(&n.output[0]).copied().unwrap_or(0),
            role,
        });
    }
    if let Some(first) = slots.iter_mut().find(|s| s.role == Role::Body)
        && first.depth == 0
    {
        first.role = Role::Stem;
    }

    // Renumber blocks and stages densely so that indices run 0.. over the ones that hold slots.
    let dense = |vals: Vec<usize>| -> HashMap<usize, usize> {
        let mut v = vals;
        v.sort_unstable();
        v.dedup();
        v.into_iter().enumerate().map(|(d, x)| (x, d)).collect()
    };
    let bmap = dense(slots.iter().map(|s| s.block).collect());
    let smap = dense(slots.iter().map(|s| s.stage).collect());
    for s in &mut slots {
        s.block = bmap[&s.block];
        s.stage = smap[&s.stage];
    }
    Structure {
        slots,
        num_blocks: bmap.len(),
        num_stages: smap.len(),
        has_joins: num_joins > 0,
    }
}

/// Conv/FC nodes reachable backwards from `value` through pass-through ops; and whether an FC feeds it.
fn walk_back(g: &GraphProto, ix: &GraphIndex, value: &str) -> (Vec<String>, bool) {
    let mut feeders = Vec::new();
    let mut fc = false;
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([value.to_string()]);
    while let Some(v) = queue.pop_front() {
        if !seen.insert(v.clone()) || seen.len() > 256 {
            continue;
        }
        let Some(n) = ix.producer_node(g, &v) else { continue };
        let Some(spec) = crate::ops::spec_of(n) else { continue };
        match spec.walk {
            Walk::Conv => feeders.push(n.name_or_output().to_string()),
            Walk::Fc => {
                feeders.push(n.name_or_output().to_string());
                fc = true;
            }
            Walk::Through(data) => {
                // Only data inputs: BN statistics, Reshape shapes and constant scales are not paths to a conv.
                let data_inputs: &[String] = match data {
                    DataInputs::First => &n.input[..1.min(n.input.len())],
                    DataInputs::All => &n.input,
                };
                for i in data_inputs
                    .iter()
                    .filter(|i| !i.is_empty() && ix.constant(g, i).is_none())
                {
                    queue.push_back(i.clone());
                }
            }
            Walk::Stop => {}
        }
    }
    feeders.sort();
    feeders.dedup();
    (feeders, fc)
}

/// The join an activation closes: `join → act` (post-activation order, through Identity/Dropout only) with nothing
/// else reading the join. After `join → BN → act` (pre-activation order) the activation opens the next block.
fn sole_join_before(g: &GraphProto, ix: &GraphIndex, input: &str) -> Option<usize> {
    let mut v = input.to_string();
    for _ in 0..8 {
        let &(p, _) = ix.producer.get(&v)?;
        let n = &g.node[p];
        if ix.consumers_of(&v).len() > 1 {
            return None;
        }
        if is_join(g, ix, n) {
            return Some(p);
        }
        if !crate::ops::spec_of(n).is_some_and(|s| s.identity) {
            return None;
        }
        v = n.input.first()?.clone();
    }
    None
}

/// For every node, the rank of the nearest join reachable downstream (by BFS distance in nodes).
fn nearest_downstream_join(
    g: &GraphProto,
    ix: &GraphIndex,
    join_rank: &HashMap<usize, usize>,
) -> HashMap<usize, usize> {
    // Walk nodes in reverse topological order; a node's nearest join is the minimum-rank join among its
    // consumers' (topological rank = execution order, so the first join reached in execution order).
    let mut best: HashMap<usize, usize> = HashMap::new();
    for i in (0..g.node.len()).rev() {
        let mut b: Option<usize> = None;
        for o in &g.node[i].output {
            for &c in ix.consumers_of(o) {
                let cand = join_rank.get(&c).copied().or_else(|| best.get(&c).copied());
                if let Some(cand) = cand {
                    b = Some(b.map_or(cand, |x: usize| x.min(cand)));
                }
            }
        }
        if let Some(b) = b {
            best.insert(i, b);
        }
    }
    best
}

/// Resolution level of every value: how many spatial down-samplings lie on the longest path from the inputs.
fn resolution_levels(g: &GraphProto, ix: &GraphIndex) -> HashMap<String, usize> {
    let mut level: HashMap<String, usize> = HashMap::new();
    for n in &g.node {
        let base = n.input.iter().filter_map(|i| level.get(i)).copied().max().unwrap_or(0);
        let l = base + usize::from(is_downsampling(n));
        for o in &n.output {
            level.insert(o.clone(), l);
        }
    }
    let _ = ix;
    level
}

/// Nodes downstream of a global pool or flatten: the classifier head. A node is in the head only when every
/// computed input is, so a squeeze-excite gate (`x * sigmoid(fc(pool(x)))`) returns to the body at its Mul.
fn after_global(g: &GraphProto, ix: &GraphIndex) -> HashSet<usize> {
    let mut marked = HashSet::new();
    let mut tainted: HashSet<&str> = HashSet::new();
    for (i, n) in g.node.iter().enumerate() {
        let mut computed = n
            .input
            .iter()
            .filter(|v| !v.is_empty() && ix.constant(g, v).is_none())
            .peekable();
        let from_head = computed.peek().is_some() && computed.all(|v| tainted.contains(v.as_str()));
        if from_head || is_global(n) {
            marked.insert(i);
            tainted.extend(n.output.iter().map(String::as_str));
        }
    }
    marked
}

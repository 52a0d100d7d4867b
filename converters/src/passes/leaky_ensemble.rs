//! The Leaky-ReLU ensemble decomposition graph (DESIGN.md §6): with LReLU_a(z) = a·z + (1−a)·D(z)·z and the gate
//! masks D_i frozen at the values the leaky network itself produces, the network is affine in each activation,
//! so its output splits exactly into a binomial mixture over subnetworks f_S that gate only the layers in S.
//!
//! The pass keeps the original network (which computes the masks) and adds a gated copy whose LeakyRelu nodes
//! become `z' · (s_i·D_i + 1 − s_i)` with a scalar selector input `s_i ∈ {0,1}` per layer. Other non-affine
//! choices are frozen the same way so the identity stays exact: plain Relu uses its own recorded mask (always
//! applied), MaxPool reuses the indices of the original's maxima. It runs in three phases: check the network
//! ([`leaky_layers`]), write the gated copy node by node ([`gate_node`]), and apply it as one [`Patch`].

use std::collections::{HashMap, HashSet};

use crate::ir::Model;
use crate::ir::Patch;
use crate::ir::attr::NodeExt;
use crate::ir::build::{self, Attr, GraphBuilder};
use crate::ops::Affine;
use crate::proto::tensor_proto::DataType;
use crate::proto::{GraphProto, NodeProto, ValueInfoProto};

#[derive(Debug, thiserror::Error)]
pub enum LeakyError {
    #[error(
        "{model}: no LeakyRelu node; `ratio leaky` decomposes networks whose activations are LeakyRelu (make one with `ratio-convert --leaky A`)"
    )]
    NoLeakyRelu { model: String },
    #[error("{model}: LeakyRelu nodes use different alphas ({found}); the binomial mixture needs one alpha")]
    MixedAlpha { model: String, found: String },
    #[error("{model}: --alpha {given} but the model's LeakyRelu nodes use alpha {found}")]
    AlphaMismatch { model: String, given: f32, found: f32 },
    #[error("alpha must lie strictly between 0 and 1, got {0}")]
    BadAlpha(f32),
    #[error(
        "{model}: node '{node}' ({op}) is not affine in its data input, so the ensemble identity would not hold: {why}"
    )]
    NotAffine {
        model: String,
        node: String,
        op: String,
        why: String,
    },
    #[error("{model}: {count} LeakyRelu layers; at most 64 are supported")]
    TooManyLayers { model: String, count: usize },
    #[error("{model}: {reason}")]
    Graph { model: String, reason: String },
}

/// The decomposition graph and the names needed to run it.
#[derive(Debug, Clone)]
pub struct Decomposition {
    pub model: Model,
    pub source: String,
    /// LeakyRelu node names in graph order: bit i of a subset mask is layer i.
    pub layers: Vec<String>,
    pub alpha: f32,
    pub input: String,
    /// The leaky network's own output.
    pub output: String,
    /// The gated copy's output f_S.
    pub gated_output: String,
    pub selectors: Vec<String>,
}

fn alpha_of(n: &NodeProto) -> f32 {
    // ONNX default for LeakyRelu.
    n.get_f("alpha").ok().flatten().unwrap_or(0.01)
}

/// The single graph input that is not an initializer.
fn data_input(model: &Model) -> Result<String, LeakyError> {
    let g = model.graph();
    let inits: HashSet<&str> = g.initializer.iter().filter_map(|t| t.name.as_deref()).collect();
    let inputs: Vec<&str> = g
        .input
        .iter()
        .filter_map(|v| v.name.as_deref())
        .filter(|n| !inits.contains(n))
        .collect();
    match inputs.as_slice() {
        [one] => Ok(one.to_string()),
        _ => Err(LeakyError::Graph {
            model: model.display_name(),
            reason: format!("expected one data input, found {}: {}", inputs.len(), inputs.join(", ")),
        }),
    }
}

/// Phase 1: the LeakyRelu layers and their single alpha (equal to `alpha` when given).
fn leaky_layers(model: &Model, alpha: Option<f32>) -> Result<f32, LeakyError> {
    let name = model.display_name();
    let leaky: Vec<&NodeProto> = model.graph().node.iter().filter(|n| n.op() == "LeakyRelu").collect();
    if leaky.is_empty() {
        return Err(LeakyError::NoLeakyRelu { model: name });
    }
    if leaky.len() > 64 {
        return Err(LeakyError::TooManyLayers {
            model: name,
            count: leaky.len(),
        });
    }
    let mut alphas: Vec<f32> = leaky.iter().map(|n| alpha_of(n)).collect();
    alphas.dedup_by(|a, b| (*a - *b).abs() <= 1e-7);
    if alphas.len() > 1 {
        return Err(LeakyError::MixedAlpha {
            model: name,
            found: alphas.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", "),
        });
    }
    let a = alphas[0];
    if let Some(given) = alpha
        && (given - a).abs() > 1e-6
    {
        return Err(LeakyError::AlphaMismatch {
            model: name,
            given,
            found: a,
        });
    }
    if !(a > 0.0 && a < 1.0) {
        return Err(LeakyError::BadAlpha(a));
    }
    Ok(a)
}

/// Shared constants of the gated copy.
struct Consts {
    one: String,
    zero: String,
    flat: String,
}

/// Phase 2 state: the new part of the graph, and the names of the gated copy of each original value.
struct Gated<'a> {
    b: GraphBuilder,
    consts: Consts,
    rename: HashMap<String, String>,
    dep: HashSet<String>,
    layers: Vec<String>,
    selectors: Vec<String>,
    /// MaxPool nodes that must also output their indices: (node index, replacement).
    with_indices: Vec<(usize, NodeProto)>,
    not_affine: &'a dyn Fn(&NodeProto, &str) -> LeakyError,
}

impl Gated<'_> {
    fn mask(&mut self, x: &str) -> String {
        let gt = self.b.op("Greater", "leaky_decomp_gt", &[x, &self.consts.zero], vec![]);
        let to_float = ("to", Attr::Int(DataType::Float as i64));
        self.b.op("Cast", "leaky_decomp_mask", &[&gt], vec![to_float])
    }

    fn push(&mut self, op: &str, n: &NodeProto, inputs: &[&str], out: &str, attrs: Vec<(&str, Attr)>) {
        let name = self.b.fresh(&format!("{}__gated", n.name_or_output()));
        self.b.graph.node.push(build::node(op, &name, inputs, &[out], attrs));
    }
}

/// Phase 2, one node: its gated copy when it depends on the data.
fn gate_node(st: &mut Gated, idx: usize, n: &NodeProto) -> Result<(), LeakyError> {
    if !n.subgraphs().is_empty() {
        return Err((st.not_affine)(n, "control flow (subgraphs) is not supported"));
    }
    let dep_inputs = n.input.iter().filter(|i| st.dep.contains(*i)).count();
    if dep_inputs == 0 {
        // Constant with respect to the data: both halves share it.
        return Ok(());
    }
    // Ops the op table does not know are copied as they are.
    match crate::ops::spec_of(n).map(|s| s.affine) {
        Some(Affine::No) => return Err((st.not_affine)(n, "remove it or end the analysed graph before it")),
        Some(Affine::PerOperand) if dep_inputs > 1 => {
            return Err((st.not_affine)(n, "it multiplies two data-dependent tensors"));
        }
        _ => {}
    }
    let op = n.op();
    for o in n.output.iter().filter(|o| !o.is_empty()) {
        st.dep.insert(o.clone());
        let fresh = st.b.fresh(&format!("{o}__gated"));
        st.rename.insert(o.clone(), fresh);
    }
    let ins: Vec<String> = n
        .input
        .iter()
        .map(|i| st.rename.get(i).cloned().unwrap_or_else(|| i.clone()))
        .collect();
    let out0 = st.rename[&n.output[0]].clone();
    match op {
        "LeakyRelu" => {
            let sel = format!("leaky_select_{}", st.layers.len());
            st.b.input(&sel, DataType::Float, &[]);
            let d = st.mask(&n.input[0]);
            let sd = st.b.op("Mul", "leaky_decomp_sd", &[&sel, &d], vec![]);
            let off = st.b.op("Sub", "leaky_decomp_off", &[&st.consts.one, &sel], vec![]);
            let gate = st.b.op("Add", "leaky_decomp_gate", &[&sd, &off], vec![]);
            st.push("Mul", n, &[&ins[0], &gate], &out0, vec![]);
            st.layers.push(n.name_or_output().to_string());
            st.selectors.push(sel);
        }
        "Relu" => {
            let d = st.mask(&n.input[0]);
            st.push("Mul", n, &[&ins[0], &d], &out0, vec![]);
        }
        "MaxPool" => {
            if n.get_i("storage_order").ok().flatten().unwrap_or(0) != 0 {
                return Err((st.not_affine)(n, "MaxPool with storage_order=1 is not supported"));
            }
            let indices = match n.output.get(1).filter(|s| !s.is_empty()) {
                Some(i) => i.clone(),
                None => {
                    let i = st.b.fresh(&format!("{}_indices", n.output[0]));
                    let mut node = n.clone();
                    node.output.resize(1, String::new());
                    node.output.push(i.clone());
                    st.with_indices.push((idx, node));
                    i
                }
            };
            // ONNX Runtime's MaxPool indices are offsets into the whole flattened input (batch included).
            let flat =
                st.b.op("Reshape", "leaky_decomp_flat", &[&ins[0], &st.consts.flat], vec![]);
            st.push("Gather", n, &[&flat, &indices], &out0, vec![("axis", Attr::Int(0))]);
        }
        _ => {
            let mut c = n.clone();
            c.name = Some(st.b.fresh(&format!("{}__gated", n.name_or_output())));
            c.input = ins;
            c.output = n
                .output
                .iter()
                .map(|o| st.rename.get(o).cloned().unwrap_or_default())
                .collect();
            st.b.graph.node.push(c);
        }
    }
    Ok(())
}

/// Build the decomposition graph of `model`. `alpha`, when given, must equal the model's (single) alpha.
pub fn build_decomposition(model: &Model, alpha: Option<f32>) -> Result<Decomposition, LeakyError> {
    let name = model.display_name();
    let input = data_input(model)?;
    let a = leaky_layers(model, alpha)?;
    let g: &GraphProto = model.graph();
    let output = g
        .output
        .first()
        .and_then(|o| o.name.clone())
        .ok_or_else(|| LeakyError::Graph {
            model: name.clone(),
            reason: "graph has no output".into(),
        })?;
    let not_affine = |n: &NodeProto, why: &str| LeakyError::NotAffine {
        model: name.clone(),
        node: n.name_or_output().to_string(),
        op: n.op().to_string(),
        why: why.to_string(),
    };
    let mut b = GraphBuilder::reserving(g);
    let consts = Consts {
        one: b.init_f32("leaky_decomp_one", &[], &[1.0]),
        zero: b.init_f32("leaky_decomp_zero", &[], &[0.0]),
        flat: b.init_i64("leaky_decomp_flat", &[1], &[-1]),
    };
    let mut st = Gated {
        b,
        consts,
        rename: HashMap::new(),
        dep: HashSet::from([input.clone()]),
        layers: Vec::new(),
        selectors: Vec::new(),
        with_indices: Vec::new(),
        not_affine: &not_affine,
    };
    for (idx, n) in g.node.iter().enumerate() {
        gate_node(&mut st, idx, n)?;
    }
    let gated_output = st.rename.get(&output).cloned().ok_or_else(|| LeakyError::Graph {
        model: name.clone(),
        reason: format!("output '{output}' does not depend on the input '{input}'"),
    })?;

    // Phase 3: the gated copy as one patch; the outputs become the leaky network's and the gated copy's.
    let mut p = Patch::new();
    for (i, node) in st.with_indices {
        p.replace(i, node);
    }
    p.add_part(st.b.finish());
    let mut gated_vi: ValueInfoProto = g.output[0].clone();
    gated_vi.name = Some(gated_output.clone());
    p.add_output(gated_vi);
    p.set_outputs(&[output.clone(), gated_output.clone()]);
    // Shapes recorded for the original values may not hold for renamed ones; ORT re-infers them.
    p.clear_value_info();
    p.note(format!("gated copy of {} LeakyRelu layers", st.layers.len()));
    let mut out = Model::new(model.proto.clone());
    p.apply(out.graph_mut()).map_err(|e| LeakyError::Graph {
        model: name.clone(),
        reason: e.to_string(),
    })?;
    Ok(Decomposition {
        model: out,
        source: model.display_name(),
        layers: st.layers,
        alpha: a,
        input,
        output,
        gated_output,
        selectors: st.selectors,
    })
}

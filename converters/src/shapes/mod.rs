//! The one static shape inference, at a fixed batch size, over every op in the table ([`crate::ops`]): shapes,
//! element types, and the values of small integer tensors, so shape-building chains (Shape → Gather → Unsqueeze
//! → Concat → Reshape, as the torch legacy exporter writes a flatten; Shape → Gather → Div → Concat in a
//! channel shuffle) fold to constants. The converter reads it leniently (an op it cannot infer leaves its
//! outputs unknown); autodiff needs every value and turns the first failure into an error.

pub mod cost;
pub mod info;

use std::collections::HashMap;

pub use cost::{LayerCost, layer_costs};
pub use info::{BOOL, FLOAT, INT64, ValInfo, broadcast, is_float, norm_axis};

use crate::ir::Model;
use crate::ir::attr::NodeExt;
use crate::ir::build::{value_info_dims, value_info_elem};
use crate::ir::tensor;
use crate::ops::common::MAX_FOLD;
use crate::ops::error::{OpError, unsupported};
use crate::ops::{OpSpec, Registry};
use crate::proto::NodeProto;
use crate::proto::tensor_proto::DataType;

/// What a run of shape inference found.
#[derive(Debug, Default)]
pub struct Inference {
    pub info: HashMap<String, ValInfo>,
    /// Nodes whose outputs stayed unknown, in graph order, with the reason (the first is the root cause).
    pub failures: Vec<(usize, OpError)>,
    /// Graph inputs with a symbolic dim that was neither given nor filled.
    pub unresolved_inputs: Vec<String>,
}

impl Inference {
    pub fn get(&self, value: &str) -> Option<&ValInfo> {
        self.info.get(value)
    }

    pub fn shape(&self, value: &str) -> Option<&[i64]> {
        self.info.get(value).map(|v| v.shape.as_slice())
    }
}

/// Infer every value of the main graph. `given` fixes the shapes of named graph inputs; other inputs' symbolic
/// dims become `fill` (or stay unresolved without it).
pub fn infer(model: &Model, given: &HashMap<String, Vec<i64>>, fill: Option<i64>) -> Inference {
    match crate::ops::registry() {
        Ok(reg) => infer_with(reg, model, given, fill),
        Err(e) => Inference {
            failures: vec![(0, e)],
            ..Default::default()
        },
    }
}

/// [`infer`] with an explicit op table.
pub fn infer_with(reg: &Registry, model: &Model, given: &HashMap<String, Vec<i64>>, fill: Option<i64>) -> Inference {
    let mut out = seed(model, given, fill);
    for (i, n) in model.graph().node.iter().enumerate() {
        let result = match reg.of(n) {
            Some(spec) => infer_node(spec, n, &input_infos(n, &out.info)),
            None => Err(unknown_op(n)),
        };
        match result {
            Ok(outs) => record(n, outs, &mut out.info),
            Err(e) => out.failures.push((i, e)),
        }
    }
    out
}

/// What is known before any node runs: initializers (small integer ones with their values) and graph inputs.
pub fn seed(model: &Model, given: &HashMap<String, Vec<i64>>, fill: Option<i64>) -> Inference {
    let mut out = Inference::default();
    seed_initializers(model, &mut out.info);
    seed_inputs(model, given, fill, &mut out);
    out
}

/// The infos of `n`'s inputs (`None` for absent or unknown ones).
pub fn input_infos<'a>(n: &NodeProto, info: &'a HashMap<String, ValInfo>) -> Vec<Option<&'a ValInfo>> {
    n.input
        .iter()
        .map(|i| if i.is_empty() { None } else { info.get(i) })
        .collect()
}

/// One node's outputs by its spec's rule.
pub fn infer_node(spec: &OpSpec, n: &NodeProto, ins: &[Option<&ValInfo>]) -> Result<Vec<ValInfo>, OpError> {
    (spec.infer)(n, ins)
}

/// Store a node's output infos under its output names.
pub fn record(n: &NodeProto, outs: Vec<ValInfo>, info: &mut HashMap<String, ValInfo>) {
    for (o, v) in n.output.iter().zip(outs) {
        if !o.is_empty() {
            info.insert(o.clone(), v);
        }
    }
}

fn unknown_op(n: &NodeProto) -> OpError {
    if n.domain_str().is_empty() {
        unsupported(n, "no shape rule for this op")
    } else {
        unsupported(n, format!("op in domain '{}'", n.domain_str()))
    }
}

fn is_integer(elem: i32) -> bool {
    !is_float(elem) && elem != DataType::Undefined as i32
}

fn seed_initializers(model: &Model, info: &mut HashMap<String, ValInfo>) {
    for t in &model.graph().initializer {
        let Some(name) = t.name.clone() else { continue };
        let elem = t.data_type.unwrap_or(FLOAT);
        let ints = if is_integer(elem) && tensor::numel(&t.dims) <= MAX_FOLD {
            model
                .tensor_bytes(t)
                .ok()
                .and_then(|raw| tensor::to_i64(t, raw.as_ref()).ok())
        } else {
            None
        };
        info.insert(
            name,
            ValInfo {
                shape: t.dims.clone(),
                elem,
                ints,
            },
        );
    }
}

fn seed_inputs(model: &Model, given: &HashMap<String, Vec<i64>>, fill: Option<i64>, out: &mut Inference) {
    for vi in &model.graph().input {
        let Some(name) = vi.name.clone() else { continue };
        let elem = value_info_elem(vi).unwrap_or(FLOAT);
        if let Some(shape) = given.get(&name) {
            out.info.insert(
                name,
                ValInfo {
                    shape: shape.clone(),
                    elem,
                    ints: None,
                },
            );
            continue;
        }
        if out.info.contains_key(&name) {
            continue;
        }
        let dims = value_info_dims(vi).unwrap_or_default();
        match dims.into_iter().map(|d| d.or(fill)).collect::<Option<Vec<i64>>>() {
            Some(shape) => {
                out.info.insert(
                    name,
                    ValInfo {
                        shape,
                        elem,
                        ints: None,
                    },
                );
            }
            None => out.unresolved_inputs.push(name),
        }
    }
}

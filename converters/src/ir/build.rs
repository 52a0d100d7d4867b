//! Constructors for nodes, attributes, value infos and models, and a [`GraphBuilder`] that hands out unique
//! names. Used by `models/` to emit reference networks and by autodiff to emit train-step graphs.

use bytes::Bytes;

use crate::ir::names::NameSet;
use crate::ir::tensor;
use crate::proto::attribute_proto::AttributeType;
use crate::proto::tensor_proto::DataType;
use crate::proto::tensor_shape_proto::{Dimension, dimension};
use crate::proto::type_proto::{self, Tensor};
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// IR and opset we write: ORT 1.31 rejects IR 14 / opset 28; 10 / 17 load everywhere that matters.
pub const IR_VERSION: i64 = 8;
pub const OPSET: i64 = 17;

/// An attribute value, for the `node` constructor.
// Values live only until `attr` turns them into protos, so the size gap to `Tensor` costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Floats(Vec<f32>),
    Str(String),
    Tensor(TensorProto),
}

pub fn attr(name: &str, value: Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: Some(name.into()),
        ..Default::default()
    };
    let ty = match value {
        Attr::Int(i) => {
            a.i = Some(i);
            AttributeType::Int
        }
        Attr::Ints(v) => {
            a.ints = v;
            AttributeType::Ints
        }
        Attr::Float(f) => {
            a.f = Some(f);
            AttributeType::Float
        }
        Attr::Floats(v) => {
            a.floats = v;
            AttributeType::Floats
        }
        Attr::Str(s) => {
            a.s = Some(Bytes::from(s.into_bytes()));
            AttributeType::String
        }
        Attr::Tensor(t) => {
            a.t = Some(t);
            AttributeType::Tensor
        }
    };
    a.r#type = Some(ty as i32);
    a
}

pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<(&str, Attr)>) -> NodeProto {
    NodeProto {
        op_type: Some(op.into()),
        name: Some(name.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs.into_iter().map(|(n, v)| attr(n, v)).collect(),
        ..Default::default()
    }
}

/// A tensor value info; `None` dims are symbolic (named `N` for the batch).
pub fn value_info(name: &str, elem: DataType, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => dimension::Value::DimValue(*v),
                None => dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Static dims of a value info (`None` for symbolic or unknown), when it is a tensor with a shape.
pub fn value_info_dims(vi: &ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let Some(type_proto::Value::TensorType(t)) = vi.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(dimension::Value::DimValue(v)) => Some(v),
                _ => None,
            })
            .collect(),
    )
}

pub fn value_info_elem(vi: &ValueInfoProto) -> Option<i32> {
    let Some(type_proto::Value::TensorType(t)) = vi.r#type.as_ref()?.value.as_ref() else {
        return None;
    };
    t.elem_type
}

pub fn model(graph: GraphProto, producer: &str) -> ModelProto {
    ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(OPSET),
        }],
        producer_name: Some(producer.into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        ..Default::default()
    }
}

/// Builds a graph node by node with unique names. Outputs are named `<prefix>_<n>`.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    pub graph: GraphProto,
    names: NameSet,
}

impl GraphBuilder {
    pub fn new(name: &str) -> Self {
        GraphBuilder {
            graph: GraphProto {
                name: Some(name.into()),
                ..Default::default()
            },
            names: NameSet::default(),
        }
    }

    /// Start from an existing graph; its names are reserved.
    pub fn from_graph(graph: GraphProto) -> Self {
        let names = NameSet::of(&graph);
        GraphBuilder { graph, names }
    }

    /// An empty graph whose names avoid every name of `g`: the new part of a [`Patch`](crate::ir::Patch), built
    /// with the helpers here and handed to the patch node by node.
    pub fn reserving(g: &GraphProto) -> Self {
        GraphBuilder {
            graph: GraphProto::default(),
            names: NameSet::of(g),
        }
    }

    /// A name not used yet, derived from `base`.
    pub fn fresh(&mut self, base: &str) -> String {
        self.names.fresh(base)
    }

    /// Add a single-output node; returns its output name.
    pub fn op(&mut self, op: &str, base: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.fresh(base);
        let name = self.fresh(&format!("{out}/{op}"));
        self.graph.node.push(node(op, &name, inputs, &[&out], attrs));
        out
    }

    /// Add a node with several outputs (use "" for absent optional outputs).
    pub fn op_multi(
        &mut self,
        op: &str,
        base: &str,
        inputs: &[&str],
        n_out: usize,
        attrs: Vec<(&str, Attr)>,
    ) -> Vec<String> {
        let outs: Vec<String> = (0..n_out).map(|i| self.fresh(&format!("{base}_o{i}"))).collect();
        let name = self.fresh(&format!("{base}/{op}"));
        let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
        self.graph.node.push(node(op, &name, inputs, &refs, attrs));
        outs
    }

    pub fn init_f32(&mut self, base: &str, dims: &[i64], values: &[f32]) -> String {
        let name = self.fresh(base);
        self.graph.initializer.push(tensor::from_f32(&name, dims, values));
        name
    }

    pub fn init_i64(&mut self, base: &str, dims: &[i64], values: &[i64]) -> String {
        let name = self.fresh(base);
        self.graph.initializer.push(tensor::from_i64(&name, dims, values));
        name
    }

    pub fn input(&mut self, name: &str, elem: DataType, dims: &[Option<i64>]) -> String {
        self.names.reserve(name);
        self.graph.input.push(value_info(name, elem, dims));
        name.to_string()
    }

    pub fn output(&mut self, name: &str, elem: DataType, dims: &[Option<i64>]) {
        self.graph.output.push(value_info(name, elem, dims));
    }

    pub fn finish(self) -> GraphProto {
        self.graph
    }
}

//! Counting what a model holds: trainable parameters and nodes per op type. Used by tests and by `ratio` to
//! describe a built model.

use std::collections::{BTreeMap, HashSet};

use converters::ir::tensor::numel;
use converters::proto::ModelProto;
use converters::proto::tensor_proto::DataType;

/// Elements of float initializers, not counting BatchNormalization running mean/var (buffers in torch, not
/// parameters) nor Clip bounds — the number `sum(p.numel() for p in model.parameters())` prints for the same
/// architecture. Weights held by Constant nodes rather than initializers are not counted.
pub fn param_count(model: &ModelProto) -> usize {
    let Some(g) = &model.graph else { return 0 };
    let buffers: HashSet<&str> = g
        .node
        .iter()
        .filter(|n| n.op_type.as_deref() == Some("BatchNormalization"))
        .flat_map(|n| n.input.iter().skip(3).map(String::as_str))
        .chain(
            g.node
                .iter()
                .filter(|n| n.op_type.as_deref() == Some("Clip"))
                .flat_map(|n| n.input.iter().skip(1).map(String::as_str)),
        )
        .collect();
    g.initializer
        .iter()
        .filter(|t| t.data_type == Some(DataType::Float as i32))
        .filter(|t| !buffers.contains(t.name.as_deref().unwrap_or("")))
        .map(|t| numel(&t.dims))
        .sum()
}

/// Node count per op type of the main graph.
pub fn op_counts(model: &ModelProto) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    if let Some(g) = &model.graph {
        for n in &g.node {
            *counts.entry(n.op_type.clone().unwrap_or_default()).or_default() += 1;
        }
    }
    counts
}

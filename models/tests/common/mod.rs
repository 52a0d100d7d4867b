//! Helpers shared by the `models` integration tests.

#![allow(dead_code)]

pub mod reference;

use std::collections::HashSet;

use converters::ir::GraphIndex;
use converters::ir::attr::NodeExt;
use converters::proto::ModelProto;
use models::init::WeightRng;

pub use reference::T;

/// A seeded standard-normal batch [n, c, s, s].
pub fn batch(n: usize, c: usize, s: usize, seed: u64) -> T {
    T::new(&[n, c, s, s], WeightRng::new(seed).normal(n * c * s * s, 1.0))
}

pub fn count(m: &ModelProto, op: &str) -> usize {
    m.graph.as_ref().unwrap().node.iter().filter(|n| n.op() == op).count()
}

pub fn node_names(m: &ModelProto) -> HashSet<String> {
    m.graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.name_or_output().to_string())
        .collect()
}

pub fn assert_valid(what: &str, m: &ModelProto) {
    let problems = converters::validate::validate(m.graph.as_ref().unwrap());
    assert!(problems.is_empty(), "{what}: {problems:#?}");
}

/// Names of the convolutions (and Gemms) that feed activation node `act`, walking producers back through BN,
/// Add, Concat, Identity and the If-free elementwise glue — the rule DESIGN.md §4 states for slot detection,
/// written independently here to check the fixtures' doc comments.
pub fn feeding_layers(m: &ModelProto, act: &str) -> Vec<String> {
    let g = m.graph.as_ref().unwrap();
    let ix = GraphIndex::new(g);
    let node = g
        .node
        .iter()
        .find(|n| n.name_or_output() == act)
        .unwrap_or_else(|| panic!("no node {act}"));
    let mut found = Vec::new();
    let mut stack = vec![node.input[0].clone()];
    let mut seen = HashSet::new();
    while let Some(v) = stack.pop() {
        if !seen.insert(v.clone()) {
            continue;
        }
        let Some(p) = ix.producer_node(g, &v) else { continue };
        match p.op() {
            "Conv" | "Gemm" => found.push(p.name_or_output().to_string()),
            "BatchNormalization" | "Identity" => stack.push(p.input[0].clone()),
            "Add" | "Concat" => stack.extend(p.input.iter().cloned()),
            _ => {}
        }
    }
    found.sort();
    found
}

pub fn max_abs_diff(a: &T, b: &T) -> f32 {
    assert_eq!(a.dims, b.dims);
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

pub fn max_abs(a: &T) -> f32 {
    a.data.iter().map(|x| x.abs()).fold(0.0, f32::max)
}
